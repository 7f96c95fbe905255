"""Rule plot_beyond_accuracy: diversity and category histograms, Lorenz curves, cohorts."""

import polars as pl

from mp2v4rec.beyond import lorenz_curve
from mp2v4rec.evaluation import split_lists
from mp2v4rec.io import count_rows, run_rule
from mp2v4rec.plots import plot_cohorts, plot_distributions, plot_lorenz


def main(smk):
    p, out = smk.params, smk.output
    method_order = list(p.method_order)
    per_user = {r: pl.read_parquet(f) for r, f in zip(p.runs, smk.input.per_user, strict=True)}
    plot_distributions(
        per_user,
        out.diversity,
        metric="ild_reference",
        k=p.k,
        method_order=method_order,
        split=p.split,
        xlabel="intra-list diversity (reference space)",
        share_y=False,  # popularity lists are near-identical: one bin holds all their users
    )
    plot_distributions(
        per_user,
        out.categories,
        metric="category_diversity",
        k=p.k,
        method_order=method_order,
        split=p.split,
        xlabel="distinct categories",
        discrete=True,
    )
    n_items = count_rows(smk.input.item_table)
    curves = {
        r: lorenz_curve(split_lists(pl.read_parquet(f), p.split), n_items, p.k)
        for r, f in zip(p.runs, smk.input.recs, strict=True)
    }
    plot_lorenz(curves, out.lorenz, k=p.k, method_order=method_order)
    plot_cohorts(
        pl.read_csv(smk.input.table, separator="\t"),
        out.cohorts,
        ks=p.cohort_ks,
        method_order=method_order,
        split=p.split,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
