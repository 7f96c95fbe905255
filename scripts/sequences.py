"""Rule sequences: each user's time-ordered train items, the W2V (item2vec) corpus."""

import polars as pl

from mp2v4rec.embed import write_sequences
from mp2v4rec.io import script_logger


def main(smk):
    log = script_logger(smk.log[0], "sequences")
    log.info("%s", write_sequences(pl.read_parquet(smk.input[0]), smk.output[0]))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
