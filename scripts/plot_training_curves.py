"""Rule plot_training_curves: validation Recall@K per epoch of every trained method."""

import polars as pl

from mp2v4rec.io import run_rule
from mp2v4rec.plots import plot_training_curves


def main(smk):
    curves = {
        m: pl.read_csv(f, separator="\t")
        for m, f in zip(smk.params.methods, smk.input, strict=True)
    }
    plot_training_curves(
        curves, smk.output[0], k=smk.params.k, method_order=list(smk.params.method_order)
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
