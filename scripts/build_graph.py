"""Rule build_graph: CSR adjacency per relation from the train interactions and friendships."""

import logging

import polars as pl

from mp2v4rec.graph import build_graph, save_graph
from mp2v4rec.io import count_rows, run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    graph = build_graph(
        pl.read_parquet(smk.input.train),
        pl.read_parquet(smk.input.social),
        count_rows(smk.input.user_table),
        count_rows(smk.input.item_table),
        symmetric_social=smk.params.symmetric_social,
    )
    for key, value in graph.items():
        if key.endswith("_indices"):
            log.info("%s: %d edges", key.removesuffix("_indices"), value.size)
    save_graph(graph, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
