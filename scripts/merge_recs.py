"""Rule merge_recs: the top-K lists of every user block as one table."""

import logging

import polars as pl

from mp2v4rec.io import run_rule, write_parquet
from mp2v4rec.recommend import merge_recs

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    recs = merge_recs(
        [pl.read_parquet(path) for path in smk.input.blocks],
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
    )
    log.info(
        "%d blocks, %d users, %d rows", len(smk.input.blocks), recs["user"].n_unique(), recs.height
    )
    write_parquet(recs, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
