"""Rule plot_metrics_by_k: Recall@K and NDCG@K curves of every method."""

import polars as pl

from mp2v4rec.io import run_rule
from mp2v4rec.plots import plot_metrics_by_k


def main(smk):
    table = pl.read_csv(smk.input[0], separator="\t")
    plot_metrics_by_k(
        table, smk.output[0], method_order=list(smk.params.method_order), split=smk.params.split
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
