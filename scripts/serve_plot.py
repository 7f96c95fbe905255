"""Rule plot_seeded: Recall@K of the seeded continuation by K, one colour per method."""

import polars as pl

from mp2v4rec.io import run_rule
from mp2v4rec.plots import plot_seeded


def main(smk):
    tables = {
        method: pl.read_csv(path, separator="\t")
        for method, path in zip(smk.params.methods, smk.input, strict=True)
    }
    plot_seeded(
        tables,
        smk.output[0],
        seed_items=smk.params.seed_items,
        method_order=smk.params.method_order,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
