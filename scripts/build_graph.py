"""Rule build_graph: CSR adjacency per relation from the train interactions and friendships."""

import polars as pl

from mp2v4rec.graph import build_graph, save_graph
from mp2v4rec.io import count_rows, script_logger


def main(smk):
    log = script_logger(smk.log[0], "build_graph")
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
    main(snakemake)  # noqa: F821
