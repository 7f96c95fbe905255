"""Checkpoint search_select: pick the grid cell with the best validation metric."""

import logging

import polars as pl

from mp2v4rec.ablation import cell_metrics, select_best
from mp2v4rec.config import parse_variant
from mp2v4rec.io import run_rule, write_json, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    axes = list(parse_variant(p.variants[0]))
    tables = [pl.read_csv(path, separator="\t") for path in smk.input]
    cells = cell_metrics(tables, p.variants, axes)
    valid = cells.filter(
        (pl.col("split") == "valid") & (pl.col("metric") == p.metric) & (pl.col("k") == p.k)
    ).sort("value", descending=True, maintain_order=True)
    write_tsv(valid.select("variant", *axes, "metric", "k", "value"), smk.output.table)
    variant, value = select_best(cells, metric=p.metric, k=p.k)
    log.info(
        "best of %d cells: %s (valid %s@%d = %.4f)", len(p.variants), variant, p.metric, p.k, value
    )
    write_json(
        {
            "method": p.method,
            "variant": variant,
            "settings": parse_variant(variant),
            "selected_on": {"split": "valid", "metric": p.metric, "k": p.k, "value": value},
        },
        smk.output.best,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
