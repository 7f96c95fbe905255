"""Summaries over grids of variants: the ablation table (mean over seeds) and search selection."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from mp2v4rec.config import parse_variant


def cell_metrics(tables: list[pl.DataFrame], variants: list[str], axes: list[str]) -> pl.DataFrame:
    """Stack per-variant metric tables (all users), one column per grid axis from the name."""
    frames = []
    for table, variant in zip(tables, variants, strict=True):
        pairs = parse_variant(variant)
        if "cohort" in table.columns:
            table = table.filter(pl.col("cohort") == "all")
        frames.append(
            table.with_columns(
                pl.lit(variant).alias("variant"),
                *[pl.lit(pairs[a]).alias(a) for a in axes],
            )
        )
    return pl.concat(frames)


def ablation_summary(
    cells: pl.DataFrame, axes: list[str], *, metrics: list[str], ks: list[int]
) -> pl.DataFrame:
    """Mean, std and a 95 % t-interval over seeds for every cell of the other axes."""
    group = [a for a in axes if a != "seed"] + ["split", "metric", "k"]
    summary = (
        cells.filter(pl.col("metric").is_in(metrics) & pl.col("k").is_in(ks))
        .group_by(group, maintain_order=True)
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").std(ddof=1).fill_null(0.0).alias("std"),
            pl.len().alias("n_seeds"),
        )
    )
    n = summary["n_seeds"].to_numpy()
    t = np.where(n > 1, sps.t.ppf(0.975, np.maximum(n - 1, 1)), 0.0)
    half = t * summary["std"].to_numpy() / np.sqrt(n)
    return summary.with_columns(
        (pl.col("mean") - pl.Series(half)).alias("ci_low"),
        (pl.col("mean") + pl.Series(half)).alias("ci_high"),
    )


def select_best(
    cells: pl.DataFrame, *, metric: str, k: int, split: str = "valid"
) -> tuple[str, float]:
    """The variant with the highest ``metric@k`` on ``split``; ties go to the earlier cell."""
    scores = cells.filter(
        (pl.col("split") == split) & (pl.col("metric") == metric) & (pl.col("k") == k)
    )
    if scores.is_empty():
        raise ValueError(f"no {metric}@{k} on the {split} split to select a cell with")
    best = int(np.argmax(scores["value"].to_numpy()))
    return scores["variant"][best], float(scores["value"][best])
