"""The study's figures: metrics by K and a PCA of item embeddings."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

from mp2v4rec.io import atomic_path  # noqa: E402

METRIC_LABELS = {"recall": "Recall@K", "ndcg": "NDCG@K", "precision": "Precision@K"}


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def run_label(method: str, variant: str) -> str:
    return method if variant == "default" else f"{method} [{variant}]"


def plot_metrics_by_k(
    table: pl.DataFrame,
    path: str | os.PathLike,
    *,
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
) -> None:
    """One panel per metric, one line per method/variant, value against K."""
    data = table.filter(pl.col("split") == split).sort("k")
    runs = data.select("method", "variant").unique(maintain_order=True).rows()
    palette = sns.color_palette("tab10", n_colors=max(len(runs), 1))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for color, (method, variant) in zip(palette, runs, strict=False):
            run = data.filter(
                (pl.col("metric") == metric)
                & (pl.col("method") == method)
                & (pl.col("variant") == variant)
            )
            ax.plot(
                run["k"],
                run["value"],
                marker="o",
                ms=3,
                color=color,
                label=run_label(method, variant),
            )
        ax.set_xlabel("K")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)} ({split} split)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _save(fig, path)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def plot_pca(
    item_vectors: dict[str, np.ndarray],
    categories: np.ndarray,
    path: str | os.PathLike,
    *,
    max_items: int = 5000,
    seed: int = 0,
    top_categories: int = 8,
) -> None:
    """Item embeddings of each method in 2-D PCA, side by side, coloured by category.

    Items with a zero vector (never seen in training) are left out; the same items are drawn in
    every panel, a seeded sample of at most ``max_items``.
    """
    present = np.logical_and.reduce([np.abs(v).sum(axis=1) > 0 for v in item_vectors.values()])
    items = np.flatnonzero(present)
    if items.size > max_items:
        items = np.sort(np.random.default_rng(seed).choice(items, max_items, replace=False))
    cats = categories[items]
    values, counts = np.unique(cats[cats >= 0], return_counts=True)
    shown = values[np.argsort(-counts, kind="stable")[:top_categories]]
    palette = sns.color_palette("tab10", n_colors=max(len(shown), 1))
    fig, axes = plt.subplots(
        1, len(item_vectors), figsize=(5.5 * len(item_vectors), 5), squeeze=False
    )
    for ax, (name, vectors) in zip(axes[0], item_vectors.items(), strict=True):
        xy = pca_2d(vectors[items].astype(np.float64))
        other = ~np.isin(cats, shown)
        ax.scatter(xy[other, 0], xy[other, 1], s=4, c="lightgrey", label="other")
        for color, cat in zip(palette, shown, strict=False):
            sel = cats == cat
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=color, label=f"category {cat}")
        ax.set_title(f"{name}: item embeddings (PCA, {items.size} items)")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0][-1].legend(fontsize=7, markerscale=3, loc="best")
    _save(fig, path)


def plot_ablation(
    summary: pl.DataFrame,
    path: str | os.PathLike,
    *,
    axes: list[str],
    method: str,
    split: str = "test",
) -> None:
    """One bar per grid cell (mean over seeds, std as error bar), one panel per metric@K."""
    data = summary.filter(pl.col("split") == split)
    panels = data.select("metric", "k").unique(maintain_order=True).rows()
    fig, ax_row = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
    for i, (ax, (metric, k)) in enumerate(zip(ax_row[0], panels, strict=True)):
        rows = data.filter((pl.col("metric") == metric) & (pl.col("k") == k))
        labels = [" ".join(f"{a}={r[a]}" for a in axes) for r in rows.iter_rows(named=True)]
        ax.barh(range(rows.height), rows["mean"], xerr=rows["std"], color="tab:blue", alpha=0.8)
        ax.set_yticks(range(rows.height), labels if i == 0 else [], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric).replace('K', str(k))} ({split})")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{method} ablation: mean ± std over seeds")
    _save(fig, path)
