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

METRIC_LABELS = {
    "recall": "Recall@K",
    "ndcg": "NDCG@K",
    "precision": "Precision@K",
    "hitrate": "HitRate@K",
}


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def run_label(method: str, variant: str) -> str:
    return method if variant == "default" else f"{method} [{variant}]"


def _default_protocol(table: pl.DataFrame) -> pl.DataFrame:
    """Rows of the main protocol: all unseen items, each model's own score, all users."""
    keep = pl.col("cohort") == "all"
    if "candidates" in table.columns:
        keep &= (pl.col("candidates") == "all") & pl.col("native")
    return table.filter(keep)


def _run_colors(data: pl.DataFrame) -> dict[tuple[str, str], tuple]:
    """One colour per method/variant, the same in every panel of a figure."""
    runs = data.select("method", "variant").unique(maintain_order=True).rows()
    return dict(zip(runs, sns.color_palette("tab10", n_colors=max(len(runs), 1)), strict=False))


def _draw_by_k(ax, data: pl.DataFrame, metric: str, title: str, colors: dict) -> None:
    """One line per method/variant: ``metric`` against K."""
    for (method, variant), color in colors.items():
        run = data.filter(
            (pl.col("metric") == metric)
            & (pl.col("method") == method)
            & (pl.col("variant") == variant)
        ).sort("k")
        if run.height:
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
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_metrics_by_k(
    table: pl.DataFrame,
    path: str | os.PathLike,
    *,
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
) -> None:
    """One panel per metric, one line per method/variant, value against K (main protocol)."""
    data = _default_protocol(table).filter(pl.col("split") == split)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    colors = _run_colors(data)
    for ax, metric in zip(axes[0], metrics, strict=True):
        _draw_by_k(ax, data, metric, f"{METRIC_LABELS.get(metric, metric)} ({split} split)", colors)
    axes[0][0].legend(fontsize=8)
    _save(fig, path)


def plot_metrics_by_protocol(
    table: pl.DataFrame,
    path: str | os.PathLike,
    *,
    split: str = "test",
    candidate_sets: tuple[str, ...] = ("all", "block", "sampled"),
) -> None:
    """Metrics by K under each candidate set (rows), each model with its own score."""
    data = table.filter(
        (pl.col("split") == split)
        & (pl.col("cohort") == "all")
        & pl.col("native")
        & (pl.col("variant") == "default")
    )
    panels = {
        "all": ("recall", "ndcg"),
        "block": ("recall", "ndcg"),
        "sampled": ("hitrate", "ndcg"),
    }
    rows = [c for c in candidate_sets if c in set(data["candidates"])]
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 4 * len(rows)), squeeze=False)
    colors = _run_colors(data)
    for r, candidates in enumerate(rows):
        subset = data.filter(pl.col("candidates") == candidates)
        for ax, metric in zip(axes[r], panels[candidates], strict=True):
            title = f"{METRIC_LABELS.get(metric, metric)}, candidates: {candidates} ({split})"
            _draw_by_k(ax, subset, metric, title, colors)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
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


def plot_distributions(
    per_user: dict[str, pl.DataFrame],
    path: str | os.PathLike,
    *,
    metric: str,
    k: int,
    xlabel: str,
    split: str = "test",
    discrete: bool = False,
) -> None:
    """Per-user distribution of one measure, one histogram outline per run."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = sns.color_palette("tab10", n_colors=max(len(per_user), 1))
    drawn = False
    for color, (run, frame) in zip(palette, per_user.items(), strict=False):
        values = (
            frame.filter(
                (pl.col("split") == split) & (pl.col("metric") == metric) & (pl.col("k") == k)
            )["value"]
            .drop_nans()
            .to_numpy()
        )
        if values.size == 0:
            continue
        if discrete:
            bins = np.arange(values.min() - 0.5, values.max() + 1.5)
        else:
            bins = 30
        ax.hist(
            values,
            bins=bins,
            histtype="step",
            lw=1.6,
            color=color,
            density=True,
            label=f"{run} (mean {values.mean():.3g})",
        )
        drawn = True
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of users")
    ax.set_title(f"{xlabel}, top-{k}, {split} users")
    if drawn:
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_lorenz(curves: dict[str, pl.DataFrame], path: str | os.PathLike, *, k: int) -> None:
    """Lorenz curves of recommendation counts over the catalogue, with each run's Gini."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    palette = sns.color_palette("tab10", n_colors=max(len(curves), 1))
    for color, (run, curve) in zip(palette, curves.items(), strict=False):
        x, y = curve["item_share"].to_numpy(), curve["rec_share"].to_numpy()
        step = max(1, x.size // 2000)  # thin a large catalogue's curve
        gini = 1 - 2 * np.trapezoid(y, x)
        ax.plot(x[::step], y[::step], color=color, label=f"{run} (Gini {gini:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="equal exposure")
    ax.set_xlabel("cumulative share of items (least recommended first)")
    ax.set_ylabel("cumulative share of recommendations")
    ax.set_title(f"Popularity concentration of top-{k} lists")
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_cohorts(
    table: pl.DataFrame,
    path: str | os.PathLike,
    *,
    ks: list[int],
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
) -> None:
    """Metric@K per train-activity cohort (low/medium/high) and on the cold held-out pairs,
    grouped bars per run, 95 % CI; the default protocol (all candidates, the model's score)."""
    data = table.filter(
        (pl.col("split") == split)
        & (pl.col("cohort") != "all")
        & (pl.col("variant") == "default")
        & (pl.col("candidates") == "all")
        & pl.col("native")
    )
    cohorts = ["low", "medium", "high", "cold"]
    runs = data["method"].unique(maintain_order=True).to_list()
    panels = [(m, k) for m in metrics for k in ks]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4.2), squeeze=False)
    width = 0.8 / max(len(runs), 1)
    palette = sns.color_palette("tab10", n_colors=max(len(runs), 1))
    for ax, (metric, k) in zip(axes[0], panels, strict=True):
        for j, (run, color) in enumerate(zip(runs, palette, strict=False)):
            rows = data.filter(
                (pl.col("method") == run) & (pl.col("metric") == metric) & (pl.col("k") == k)
            )
            by = {r["cohort"]: r for r in rows.iter_rows(named=True)}
            mean = np.array([by[c]["value"] if c in by else np.nan for c in cohorts])
            low = np.array([by[c]["ci_low"] if c in by else np.nan for c in cohorts])
            high = np.array([by[c]["ci_high"] if c in by else np.nan for c in cohorts])
            ax.bar(
                np.arange(len(cohorts)) + j * width,
                mean,
                width,
                color=color,
                label=run,
                yerr=[mean - low, high - mean],
                capsize=2,
            )
        ax.set_xticks(np.arange(len(cohorts)) + width * (len(runs) - 1) / 2, cohorts)
        ax.set_xlabel("train activity cohort; cold: pairs without train history")
        ax.set_title(f"{METRIC_LABELS.get(metric, metric).replace('K', str(k))} ({split})")
    axes[0][0].legend(fontsize=7)
    _save(fig, path)


def plot_training_curves(curves: dict[str, pl.DataFrame], path: str | os.PathLike, *, k: int):
    """Validation Recall@K after every epoch (iteration) of each trained method."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = sns.color_palette("tab10", n_colors=max(len(curves), 1))
    for color, (run, curve) in zip(palette, curves.items(), strict=False):
        if "valid_recall" not in curve.columns or curve.is_empty():
            continue
        y = curve["valid_recall"].to_numpy()
        best = int(np.nanargmax(y)) if np.isfinite(y).any() else None
        ax.plot(curve["epoch"], y, marker="o", ms=2.5, color=color, label=run)
        if best is not None:
            ax.scatter([curve["epoch"][best]], [y[best]], s=60, facecolor="none", edgecolor=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation Recall@{k}")
    ax.set_title("Training curves (circle: the kept epoch)")
    ax.legend(fontsize=7)
    _save(fig, path)
