"""Rule evaluated_users: the users every method is evaluated on (all, or a seeded sample)."""

import polars as pl

from mp2v4rec.evaluation import evaluated_users
from mp2v4rec.io import script_logger, write_parquet


def main(smk):
    log = script_logger(smk.log[0], "evaluated_users")
    users = evaluated_users(pl.read_parquet(smk.input[0]), smk.params.sample, smk.params.seed)
    write_parquet(pl.DataFrame({"user": users}), smk.output[0])
    log.info("%d evaluated users (sample: %s)", users.size, smk.params.sample)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
