"""The study's figures, drawn at the size they are printed in a paper.

Each figure has a builder (``figure_*``) that returns the matplotlib figure, and a ``plot_*`` that
builds and saves it. A method has one colour in every figure: :func:`method_colors` maps the
configured method order onto a fixed palette, and every figure that draws methods takes that
order (``method_order``, the rules' ``params.method_order``) and calls it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
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


# seaborn's "colorblind" palette with its two palest colours (pink, yellow) moved last, so that
# the first eight stay visible as thin lines: methods in their configured order take these in turn
METHOD_PALETTE = (
    "#0173B2",  # blue
    "#DE8F05",  # orange
    "#029E73",  # green
    "#D55E00",  # vermillion
    "#CC78BC",  # purple
    "#CA9161",  # brown
    "#56B4E9",  # sky blue
    "#949494",  # grey
    "#FBAFE4",  # pink
    "#ECE133",  # yellow
)


def method_colors(
    method_order: Sequence[str], present: Iterable[str] = ()
) -> dict[str, tuple[float, float, float]]:
    """The colour of each method: its position in the configured order picks a palette entry.

    ``method_order`` is the configured order (the same list in every figure, so a method keeps its
    colour whichever subset a figure draws); methods in ``present`` but not configured follow it.
    More methods than the palette holds take evenly spaced hues instead.
    """
    names = list(dict.fromkeys([*method_order, *present]))
    if len(names) <= len(METHOD_PALETTE):
        palette = [mcolors.to_rgb(c) for c in METHOD_PALETTE]
    else:
        palette = sns.color_palette("husl", n_colors=len(names))
    return {name: tuple(color) for name, color in zip(names, palette, strict=False)}


# Sized for a paper: figures 3.3 in (one column) or 7 in (two columns) wide, drawn at that size,
# so that the fonts below are their printed size.
ONE_COLUMN = 3.3
TWO_COLUMNS = 7.0
DPI = 300
PAPER_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "figure.titlesize": 8,
    "figure.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "grid.linewidth": 0.4,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "patch.linewidth": 0.5,
    "errorbar.capsize": 1.5,
    "legend.frameon": False,
    "figure.constrained_layout.h_pad": 0.02,
    "figure.constrained_layout.w_pad": 0.02,
}


def _paper_style(build):
    """Build the figure under :data:`PAPER_STYLE` (fonts and lines are fixed when drawn)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with plt.rc_context(PAPER_STYLE):
            return build(*args, **kwargs)

    return wrapper


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", pad_inches=0.02)
    plt.close(fig)


def _shared_legend(fig, *, loc: str = "outside upper center", ncols: int | None = None, **kw):
    """One legend for all panels, outside them (the figure must use the constrained layout):
    each label once, in the order the panels drew them."""
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return None
    ncols = min(ncols or len(entries), len(entries))
    return fig.legend(entries.values(), entries.keys(), loc=loc, ncols=ncols, **kw)


def _default_protocol(table: pl.DataFrame) -> pl.DataFrame:
    """Rows of the main protocol: all unseen items, each model's own score, all users."""
    keep = pl.col("cohort") == "all"
    if "candidates" in table.columns:
        keep &= (pl.col("candidates") == "all") & pl.col("native")
    return table.filter(keep)


def _default_runs(data: pl.DataFrame, method_order: Sequence[str]) -> pl.DataFrame:
    """Rows of each method's default run: the configured methods only, if ``method_order``
    names them (the ablation's variants have their own figure)."""
    data = data.filter(pl.col("variant") == "default")
    if method_order:
        data = data.filter(pl.col("method").is_in(list(method_order)))
    return data


def _method_subset(data: pl.DataFrame, method_order: Sequence[str]) -> dict[str, tuple]:
    """The colour of each method in ``data``, in the configured order (unconfigured ones after)."""
    colors = method_colors(method_order, data["method"].unique(maintain_order=True))
    present = set(data["method"])
    return {m: c for m, c in colors.items() if m in present}


def _draw_by_k(ax, data: pl.DataFrame, metric: str, title: str, colors: dict) -> None:
    """One line per method: ``metric`` against K."""
    for method, color in colors.items():
        run = data.filter((pl.col("metric") == metric) & (pl.col("method") == method)).sort("k")
        if run.height:
            ax.plot(run["k"], run["value"], marker="o", ms=2, color=color, label=method)
    ax.set_xlabel("K")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title)
    ax.grid(alpha=0.3)


@_paper_style
def figure_metrics_by_k(
    table: pl.DataFrame,
    *,
    method_order: Sequence[str] = (),
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
):
    """One panel per metric, one line per configured method (its default run), value against K
    (main protocol)."""
    data = _default_runs(_default_protocol(table).filter(pl.col("split") == split), method_order)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(TWO_COLUMNS, 2.6), squeeze=False, layout="constrained"
    )
    colors = _method_subset(data, method_order)
    for ax, metric in zip(axes[0], metrics, strict=True):
        _draw_by_k(ax, data, metric, f"{METRIC_LABELS.get(metric, metric)} ({split} split)", colors)
    _shared_legend(fig)
    return fig


def plot_metrics_by_k(table: pl.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    _save(figure_metrics_by_k(table, **kwargs), path)


@_paper_style
def figure_metrics_by_protocol(
    table: pl.DataFrame,
    *,
    method_order: Sequence[str] = (),
    split: str = "test",
    candidate_sets: tuple[str, ...] = ("all", "block", "sampled"),
):
    """Metrics by K under each candidate set (rows), each model with its own score."""
    data = _default_runs(
        table.filter((pl.col("split") == split) & (pl.col("cohort") == "all") & pl.col("native")),
        method_order,
    )
    panels = {
        "all": ("recall", "ndcg"),
        "block": ("recall", "ndcg"),
        "sampled": ("hitrate", "ndcg"),
    }
    rows = [c for c in candidate_sets if c in set(data["candidates"])]
    fig, axes = plt.subplots(
        len(rows),
        2,
        figsize=(TWO_COLUMNS, 0.4 + 2.0 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    colors = _method_subset(data, method_order)
    for r, candidates in enumerate(rows):
        subset = data.filter(pl.col("candidates") == candidates)
        for ax, metric in zip(axes[r], panels[candidates], strict=True):
            title = f"{METRIC_LABELS.get(metric, metric)}, candidates: {candidates} ({split})"
            _draw_by_k(ax, subset, metric, title, colors)
    _shared_legend(fig)
    return fig


def plot_metrics_by_protocol(table: pl.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    _save(figure_metrics_by_protocol(table, **kwargs), path)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


@_paper_style
def figure_pca(
    item_vectors: dict[str, np.ndarray],
    categories: np.ndarray,
    *,
    method_order: Sequence[str] = (),
    max_items: int = 5000,
    seed: int = 0,
    top_categories: int = 8,
):
    """Item embeddings of each method in 2-D PCA, side by side, coloured by category.

    Items with a zero vector (never seen in training) are left out; the same items are drawn in
    every panel, a seeded sample of at most ``max_items``. Each panel's title is in its method's
    colour; the categories take a palette without grey (grey is "other").
    """
    present = np.logical_and.reduce([np.abs(v).sum(axis=1) > 0 for v in item_vectors.values()])
    items = np.flatnonzero(present)
    if items.size > max_items:
        items = np.sort(np.random.default_rng(seed).choice(items, max_items, replace=False))
    cats = categories[items]
    values, counts = np.unique(cats[cats >= 0], return_counts=True)
    shown = values[np.argsort(-counts, kind="stable")[:top_categories]]
    palette = [c for i, c in enumerate(sns.color_palette("tab10")) if i != 7]  # 7: grey
    colors = method_colors(method_order, item_vectors)
    fig, axes = plt.subplots(
        1, len(item_vectors), figsize=(TWO_COLUMNS, 3.0), squeeze=False, layout="constrained"
    )
    for ax, (name, vectors) in zip(axes[0], item_vectors.items(), strict=True):
        xy = pca_2d(vectors[items].astype(np.float64))
        other = ~np.isin(cats, shown)
        if other.any():
            ax.scatter(xy[other, 0], xy[other, 1], s=1.5, c="lightgrey", lw=0, label="other")
        for color, cat in zip(palette, shown, strict=False):
            sel = cats == cat
            ax.scatter(xy[sel, 0], xy[sel, 1], s=1.5, color=color, lw=0, label=f"category {cat}")
        ax.set_title(f"{name}: item embeddings (PCA, {items.size} items)", color=colors[name])
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    _shared_legend(fig, loc="outside right upper", ncols=1, markerscale=3, handletextpad=0.1)
    return fig


def plot_pca(
    item_vectors: dict[str, np.ndarray],
    categories: np.ndarray,
    path: str | os.PathLike,
    **kwargs,
) -> None:
    _save(figure_pca(item_vectors, categories, **kwargs), path)


@_paper_style
def figure_ablation(
    summary: pl.DataFrame,
    *,
    axes: list[str],
    method: str,
    method_order: Sequence[str] = (),
    split: str = "test",
):
    """One bar per grid cell (mean over seeds, std as error bar), one panel per metric@K, two
    panels a row; the cells are named at the left of each row.

    The bars are in the colour of the ablated method."""
    data = summary.filter(pl.col("split") == split)
    panels = data.select("metric", "k").unique(maintain_order=True).rows()
    color = method_colors(method_order, [method])[method]
    columns = max(1, min(2, len(panels)))
    n_rows = max(1, -(-len(panels) // columns))
    n_cells = max(
        [data.filter((pl.col("metric") == m) & (pl.col("k") == k)).height for m, k in panels] or [1]
    )
    fig, grid = plt.subplots(
        n_rows,
        columns,
        figsize=(TWO_COLUMNS, 0.3 + n_rows * (0.45 + 0.15 * n_cells)),
        squeeze=False,
        layout="constrained",
    )
    for i, (ax, (metric, k)) in enumerate(zip(grid.flat, panels, strict=False)):
        rows = data.filter((pl.col("metric") == metric) & (pl.col("k") == k))
        labels = [" ".join(f"{a}={r[a]}" for a in axes) for r in rows.iter_rows(named=True)]
        ax.barh(
            range(rows.height),
            rows["mean"],
            xerr=rows["std"],
            color=color,
            alpha=0.8,
            error_kw={"elinewidth": 0.8},
        )
        ax.set_yticks(range(rows.height), labels if i % columns == 0 else [])
        ax.invert_yaxis()
        ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric).replace('K', str(k))} ({split})")
        ax.grid(axis="x", alpha=0.3)
    for ax in grid.flat[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(f"{method} ablation: mean ± std over seeds")
    return fig


def plot_ablation(summary: pl.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    _save(figure_ablation(summary, **kwargs), path)


@_paper_style
def figure_distributions(
    per_user: dict[str, pl.DataFrame],
    *,
    metric: str,
    k: int,
    xlabel: str,
    method_order: Sequence[str] = (),
    split: str = "test",
    discrete: bool = False,
    share_y: bool = True,
    columns: int = 4,
):
    """Per-user distribution of one measure: one panel per run, a histogram of the share of users
    in each bin (a run's bars sum to 1), the same bins in every panel, the mean dashed.

    ``discrete`` measures get one bin per integer value, others 30 equal bins over all runs'
    range. ``share_y=False`` gives each panel its own y scale, for runs whose users all fall in
    one bin (popularity lists) and would flatten everyone else's histogram.
    """
    colors = method_colors(method_order, per_user)
    values = {}
    for run, frame in per_user.items():
        v = (
            frame.filter(
                (pl.col("split") == split) & (pl.col("metric") == metric) & (pl.col("k") == k)
            )["value"]
            .drop_nans()
            .to_numpy()
        )
        if v.size:
            values[run] = v
    runs = [m for m in colors if m in values]
    columns = max(1, min(columns, len(runs)))
    rows = max(1, -(-len(runs) // columns))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(TWO_COLUMNS, 0.4 + 1.35 * rows),
        sharex=True,
        sharey=share_y,
        squeeze=False,
        layout="constrained",
    )
    fig.suptitle(f"{xlabel}, top-{k}, {split} users")
    if not runs:
        axes[0][0].text(0.5, 0.5, "no values", ha="center", va="center")
        return fig
    pooled = np.concatenate([values[r] for r in runs])
    if discrete:
        bins = np.arange(pooled.min() - 0.5, pooled.max() + 1.5)
    else:
        bins = np.histogram_bin_edges(pooled, bins=30)
    for ax, run in zip(axes.flat, runs, strict=False):
        v = values[run]
        counts, _ = np.histogram(v, bins)
        ax.bar(
            bins[:-1],
            counts / v.size,
            width=np.diff(bins),
            align="edge",
            color=colors[run],
            edgecolor="white",
            linewidth=0.3,
            label=run,
        )
        ax.axvline(v.mean(), color="black", lw=0.8, ls="--")
        ax.set_title(f"{run} (mean {v.mean():.3g})", color=colors[run])
    for ax in axes.flat[len(runs) :]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel("share of users")
    fig.supxlabel(xlabel)
    return fig


def plot_distributions(
    per_user: dict[str, pl.DataFrame], path: str | os.PathLike, **kwargs
) -> None:
    _save(figure_distributions(per_user, **kwargs), path)


@_paper_style
def figure_lorenz(curves: dict[str, pl.DataFrame], *, k: int, method_order: Sequence[str] = ()):
    """Lorenz curves of recommendation counts over the catalogue, with each run's Gini."""
    fig, ax = plt.subplots(figsize=(ONE_COLUMN, 4.4), layout="constrained")
    colors = method_colors(method_order, curves)
    for run, curve in curves.items():
        x, y = curve["item_share"].to_numpy(), curve["rec_share"].to_numpy()
        step = max(1, x.size // 2000)  # thin a large catalogue's curve
        gini = 1 - 2 * np.trapezoid(y, x)
        ax.plot(x[::step], y[::step], color=colors[run], label=f"{run} (Gini {gini:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="equal exposure")
    ax.set_xlabel("cumulative share of items (least recommended first)")
    ax.set_ylabel("cumulative share of recommendations")
    ax.set_title(f"Popularity concentration of top-{k} lists")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    _shared_legend(fig, loc="outside lower center", ncols=2)
    return fig


def plot_lorenz(curves: dict[str, pl.DataFrame], path: str | os.PathLike, **kwargs) -> None:
    _save(figure_lorenz(curves, **kwargs), path)


@_paper_style
def figure_cohorts(
    table: pl.DataFrame,
    *,
    ks: list[int],
    method_order: Sequence[str] = (),
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
):
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
    colors = method_colors(method_order, runs)
    runs = [m for m in colors if m in runs]  # the configured order
    panels = [(m, k) for m in metrics for k in ks]
    fig, axes = plt.subplots(
        len(metrics),
        len(ks),
        figsize=(TWO_COLUMNS, 0.6 + 1.9 * len(metrics)),
        squeeze=False,
        layout="constrained",
    )
    width = 0.8 / max(len(runs), 1)
    for ax, (metric, k) in zip(axes.flat, panels, strict=True):
        for j, run in enumerate(runs):
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
                color=colors[run],
                label=run,
                yerr=[mean - low, high - mean],
                error_kw={"elinewidth": 0.6, "capthick": 0.6},
            )
        ax.set_xticks(np.arange(len(cohorts)) + width * (len(runs) - 1) / 2, cohorts)
        ax.set_title(f"{METRIC_LABELS.get(metric, metric).replace('K', str(k))} ({split})")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.supxlabel("train activity cohort; cold: pairs without train history")
    _shared_legend(fig)
    return fig


def plot_cohorts(table: pl.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    _save(figure_cohorts(table, **kwargs), path)


@_paper_style
def figure_training_curves(
    curves: dict[str, pl.DataFrame], *, k: int, method_order: Sequence[str] = ()
):
    """Validation Recall@K after every epoch (iteration) of each trained method."""
    fig, ax = plt.subplots(figsize=(ONE_COLUMN, 2.9), layout="constrained")
    colors = method_colors(method_order, curves)
    for run, curve in curves.items():
        if "valid_recall" not in curve.columns or curve.is_empty():
            continue
        color = colors[run]
        y = curve["valid_recall"].to_numpy()
        best = int(np.nanargmax(y)) if np.isfinite(y).any() else None
        ax.plot(curve["epoch"], y, marker="o", ms=1.5, color=color, label=run)
        if best is not None:
            ax.scatter(
                [curve["epoch"][best]], [y[best]], s=30, facecolor="none", edgecolor=color, lw=0.8
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation Recall@{k}")
    ax.set_title("Training curves (circle: the kept epoch)")
    ax.grid(alpha=0.3)
    _shared_legend(fig, loc="outside lower center", ncols=3)
    return fig


def plot_training_curves(
    curves: dict[str, pl.DataFrame], path: str | os.PathLike, **kwargs
) -> None:
    _save(figure_training_curves(curves, **kwargs), path)


@_paper_style
def figure_seeded(
    tables: dict[str, pl.DataFrame],
    *,
    seed_items: int | None = None,
    method_order: Sequence[str] = (),
):
    """Recall@K of the seeded (playlist) continuation by K, one colour per method, 95 % CI."""
    fig, ax = plt.subplots(figsize=(ONE_COLUMN, 3.2), layout="constrained")
    colors = method_colors(method_order, tables)
    for method, table in tables.items():
        rows = table.filter(pl.col("metric") == "recall").sort("k")
        k, v = rows["k"].to_numpy(), rows["value"].to_numpy()
        ax.plot(k, v, marker="o", ms=2, color=colors[method], label=method)
        low, high = rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
        ax.fill_between(k, low, high, alpha=0.15, color=colors[method], lw=0)
    ax.set_xlabel("K (continuation length)")
    ax.set_ylabel("Recall@K of the held-out test items")
    last = "last" if seed_items is None else f"last {seed_items}"
    ax.set_title(f"Continuing each user's {last} train items")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _shared_legend(fig, loc="outside lower center", ncols=3)
    return fig


def plot_seeded(tables: dict[str, pl.DataFrame], path: str | os.PathLike, **kwargs) -> None:
    _save(figure_seeded(tables, **kwargs), path)
