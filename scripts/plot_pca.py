"""Rule plot_pca: item embeddings of the chosen methods in 2-D PCA, coloured by category."""

import polars as pl

from mp2v4rec.io import run_rule
from mp2v4rec.models import load_embeddings
from mp2v4rec.plots import plot_pca


def main(smk):
    vectors = {m: load_embeddings(smk.input[m])[1] for m in smk.params.methods}
    categories = pl.read_parquet(smk.input.item_table)["category"].to_numpy()
    plot_pca(
        vectors,
        categories,
        smk.output[0],
        method_order=list(smk.params.method_order),
        max_items=smk.params.max_items,
        seed=smk.params.seed,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
