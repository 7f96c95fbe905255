"""Rule sequences: each user's time-ordered train items, the W2V (item2vec) corpus."""

import logging

import polars as pl

from mp2v4rec.embed import write_sequences
from mp2v4rec.io import run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    log.info("%s", write_sequences(pl.read_parquet(smk.input[0]), smk.output[0]))


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
