"""Rule ablation_table: the grid's cells, mean +- std over seeds, as a table and a figure."""

import logging

import polars as pl

from mp2v4rec.ablation import ablation_summary, cell_metrics
from mp2v4rec.io import run_rule, write_tsv
from mp2v4rec.plots import plot_ablation

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    tables = [pl.read_csv(path, separator="\t") for path in smk.input]
    cells = cell_metrics(tables, p.variants, p.axes)
    summary = ablation_summary(cells, p.axes, metrics=p.metrics, ks=p.ks)
    write_tsv(summary, smk.output.table)
    plot_ablation(
        summary,
        smk.output.figure,
        axes=[a for a in p.axes if a != "seed"],
        method=p.method,
        method_order=list(p.method_order),
    )
    log.info("%d cells, %d summary rows", len(p.variants), summary.height)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
