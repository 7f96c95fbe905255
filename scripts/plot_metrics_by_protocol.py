"""Rule plot_metrics_by_protocol: metrics by K under each candidate set."""

import polars as pl

from mp2v4rec.io import run_rule
from mp2v4rec.plots import plot_metrics_by_protocol


def main(smk):
    table = pl.read_csv(smk.input[0], separator="\t")
    plot_metrics_by_protocol(
        table,
        smk.output[0],
        method_order=list(smk.params.method_order),
        split=smk.params.split,
        candidate_sets=tuple(smk.params.candidates),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
