"""The study's figures, read back from the matplotlib figures the builders return."""

import itertools

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest

from mp2v4rec import plots

METHODS = ["w2v", "mp2v", "rmp2v", "ultragcn", "ials", "userknn", "popularity", "random"]
KS = [1, 5, 10, 20, 50]


def metrics_table(methods=METHODS, variants=("default", "metapath~UUV_seed~0")) -> pl.DataFrame:
    """A metrics.tsv in miniature: every protocol, cohort and split, values by method and K."""
    rows = []
    product = itertools.product(
        enumerate(methods),
        variants,
        ("all", "block", "sampled"),
        (True, False),
        ("valid", "test"),
        ("all", "low", "medium", "high", "cold"),
        ("recall", "ndcg", "hitrate"),
        KS,
    )
    for (i, method), variant, candidates, native, split, cohort, metric, k in product:
        value = (i + 1) / (len(methods) + 1) * k / KS[-1]
        rows.append(
            {
                "method": method,
                "variant": variant,
                "candidates": candidates,
                "native": native,
                "split": split,
                "cohort": cohort,
                "metric": metric,
                "k": k,
                "value": value,
                "ci_low": value * 0.9,
                "ci_high": value * 1.1,
            }
        )
    return pl.DataFrame(rows)


def per_user_frames(methods=METHODS, n_users=40, seed=0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    frames = {}
    for i, method in enumerate(methods):
        parts = []
        for metric, values in [
            ("ild_reference", rng.normal(0.1 + 0.05 * i, 0.02 + 0.01 * i, n_users)),
            ("category_diversity", rng.integers(20 + i, 31, n_users).astype(float)),
        ]:
            parts.append(
                pl.DataFrame(
                    {
                        "user": np.arange(n_users, dtype=np.int32),
                        "split": "test",
                        "metric": metric,
                        "k": np.int32(10),
                        "value": values,
                    }
                )
            )
        frames[method] = pl.concat(parts)
    return frames


def training_curves(methods=("w2v", "mp2v", "ultragcn")) -> dict[str, pl.DataFrame]:
    return {
        m: pl.DataFrame({"epoch": [1, 2, 3], "valid_recall": [0.1 * (i + 1), 0.3, 0.2]})
        for i, m in enumerate(methods)
    }


def lorenz_curves(methods=("popularity", "random", "w2v")) -> dict[str, pl.DataFrame]:
    x = np.linspace(0, 1, 11)
    return {
        m: pl.DataFrame({"item_share": x, "rec_share": x ** (1 + i)}) for i, m in enumerate(methods)
    }


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line_colors(fig) -> dict[str, tuple]:
    """Colour of each labelled line of every panel (labels starting with '_' are matplotlib's)."""
    return {
        line.get_label(): mcolors.to_rgb(line.get_color())
        for ax in fig.axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def test_method_colors_follow_the_configured_order():
    colors = plots.method_colors(METHODS)
    assert list(colors) == METHODS
    assert len(set(colors.values())) == len(METHODS)
    # a subset, or the same methods listed in another order as present, change nothing
    assert plots.method_colors(METHODS, ["random", "w2v"]) == colors
    # a method the configuration does not name follows the configured ones
    extra = plots.method_colors(METHODS, ["other"])
    assert {m: extra[m] for m in METHODS} == colors
    assert extra["other"] not in colors.values()
    many = plots.method_colors([f"m{i}" for i in range(15)])
    assert len(set(many.values())) == 15


def test_a_method_has_one_colour_in_every_figure():
    expected = plots.method_colors(METHODS)
    table = metrics_table()
    figures = {
        "metrics_by_k": line_colors(plots.figure_metrics_by_k(table, method_order=METHODS)),
        "metrics_by_protocol": line_colors(
            plots.figure_metrics_by_protocol(table, method_order=METHODS)
        ),
        "training_curves": line_colors(
            plots.figure_training_curves(training_curves(), k=10, method_order=METHODS)
        ),
        "lorenz": {
            label.split(" (")[0]: color
            for label, color in line_colors(
                plots.figure_lorenz(lorenz_curves(), k=10, method_order=METHODS)
            ).items()
        },
    }
    for name, colors in figures.items():
        drawn = {m: c for m, c in colors.items() if m in expected}
        assert drawn, name
        assert drawn == {m: expected[m] for m in drawn}, name
    # the cohort bars and the PCA panel titles too
    fig = plots.figure_cohorts(table, ks=[10, 50], method_order=METHODS)
    for container in fig.axes[0].containers:
        if hasattr(container, "patches") and container.get_label() in expected:
            face = mcolors.to_rgb(container.patches[0].get_facecolor())
            assert face == expected[container.get_label()]
    rng = np.random.default_rng(0)
    vectors = {m: rng.normal(size=(30, 4)) for m in ("mp2v", "w2v")}
    fig = plots.figure_pca(vectors, rng.integers(0, 3, 30), method_order=METHODS)
    for ax, method in zip(fig.axes, vectors, strict=True):
        assert mcolors.to_rgb(ax.title.get_color()) == expected[method]


def test_metrics_by_k_draws_one_line_per_configured_method():
    # the table also holds ablation variants and a method the configuration no longer names
    table = metrics_table(METHODS + ["stale"])
    fig = plots.figure_metrics_by_k(table, method_order=METHODS)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == METHODS
    # each line is the default run's value at every K of the test split
    ax = fig.axes[0]
    expected = (
        table.filter(
            (pl.col("method") == "mp2v")
            & (pl.col("variant") == "default")
            & (pl.col("candidates") == "all")
            & pl.col("native")
            & (pl.col("split") == "test")
            & (pl.col("cohort") == "all")
            & (pl.col("metric") == "recall")
        )
        .sort("k")["value"]
        .to_list()
    )
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("metric", "discrete", "share_y"),
    [("ild_reference", False, False), ("category_diversity", True, True)],
)
def test_distributions_are_shares_of_users_on_common_bins(metric, discrete, share_y):
    frames = per_user_frames()
    fig = plots.figure_distributions(
        frames,
        metric=metric,
        k=10,
        xlabel=metric,
        method_order=METHODS,
        discrete=discrete,
        share_y=share_y,
    )
    panels = [ax for ax in fig.axes if ax.containers]
    assert [ax.containers[0].get_label() for ax in panels] == METHODS
    edges = None
    for ax, method in zip(panels, METHODS, strict=True):
        bars = ax.containers[0].patches
        assert sum(bar.get_height() for bar in bars) == pytest.approx(1.0)
        assert mcolors.to_rgb(bars[0].get_facecolor()) == plots.method_colors(METHODS)[method]
        lefts = [bar.get_x() for bar in bars]
        edges = edges or lefts
        assert lefts == pytest.approx(edges)  # the same bins in every panel
        if discrete:  # one bin per integer value
            assert np.diff(lefts) == pytest.approx(1.0)
        values = frames[method].filter(pl.col("metric") == metric)["value"].to_numpy()
        # the dashed mean
        assert ax.get_lines()[0].get_xdata()[0] == pytest.approx(values.mean())
    assert {ax.get_ylabel() for ax in panels} <= {"share of users", ""}
    assert panels[0].get_ylabel() == "share of users"


def all_figures():
    """Every figure of the study, built from small inputs."""
    table = metrics_table()
    rng = np.random.default_rng(0)
    vectors = {m: rng.normal(size=(60, 4)) for m in ("w2v", "mp2v")}
    summary = pl.DataFrame(
        {
            "metapath": ["UV", "UUV"] * 2,
            "split": "test",
            "metric": ["recall"] * 2 + ["ndcg"] * 2,
            "k": 20,
            "mean": [0.2, 0.3, 0.1, 0.15],
            "std": [0.01, 0.02, 0.01, 0.0],
        }
    )
    return {
        "metrics_by_k": plots.figure_metrics_by_k(table, method_order=METHODS),
        "metrics_by_protocol": plots.figure_metrics_by_protocol(table, method_order=METHODS),
        "cohorts": plots.figure_cohorts(table, ks=[10, 50], method_order=METHODS),
        "distributions": plots.figure_distributions(
            per_user_frames(), metric="ild_reference", k=10, xlabel="ILD", method_order=METHODS
        ),
        "lorenz": plots.figure_lorenz(lorenz_curves(), k=10, method_order=METHODS),
        "training_curves": plots.figure_training_curves(
            training_curves(), k=10, method_order=METHODS
        ),
        "pca": plots.figure_pca(vectors, rng.integers(0, 12, 60), method_order=METHODS),
        "ablation": plots.figure_ablation(
            summary, axes=["metapath"], method="mp2v", method_order=METHODS
        ),
    }


def test_figures_fit_a_paper_column_or_page_and_their_text_is_readable():
    for name, fig in all_figures().items():
        width, height = fig.get_size_inches()
        assert 3.2 <= width <= 7.2, name
        assert height <= 9, name
        fig.canvas.draw()
        texts = [t for t in fig.findobj(plt.Text) if t.get_text().strip() and t.get_visible()]
        assert texts, name
        small = {t.get_text(): t.get_fontsize() for t in texts if t.get_fontsize() < 7}
        assert not small, (name, small)
        # nothing drawn outside the figure (it would be cut, or shrink the figure when placed)
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        assert box.width <= width + 0.05 and box.height <= height + 0.05, name


def test_legends_stay_outside_the_data():
    for name, fig in all_figures().items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                if ax.get_visible() and ax.axison:
                    assert not box.overlaps(ax.get_window_extent(renderer)), name
    # the multi-panel figures have one legend, naming each method once
    fig = all_figures()["metrics_by_k"]
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == METHODS
