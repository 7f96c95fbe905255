"""Rule evaluated_users: the users every method is evaluated on (all, or a seeded sample)."""

import logging

import polars as pl

from mp2v4rec.evaluation import evaluated_users
from mp2v4rec.io import run_rule, write_parquet

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    users = evaluated_users(pl.read_parquet(smk.input[0]), smk.params.sample, smk.params.seed)
    write_parquet(pl.DataFrame({"user": users}), smk.output[0])
    log.info("%d evaluated users (sample: %s)", users.size, smk.params.sample)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
