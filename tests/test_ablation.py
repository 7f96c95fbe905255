"""Ablation summaries over seeds and grid-search selection."""

import math

import polars as pl
import pytest

from mp2v4rec.ablation import ablation_summary, cell_metrics, select_best


def metrics_table(recall):
    return pl.DataFrame(
        {
            "split": ["valid", "test"],
            "metric": ["recall"] * 2,
            "k": [10, 10],
            "value": [recall, recall + 0.1],
            "n_users": [5, 5],
        }
    )


def test_summary_over_seeds_by_hand():
    variants = [
        "metapath~UV_seed~0",
        "metapath~UV_seed~1",
        "metapath~UUV_seed~0",
        "metapath~UUV_seed~1",
    ]
    tables = [metrics_table(v) for v in (0.2, 0.4, 0.5, 0.5)]
    cells = cell_metrics(tables, variants, ["metapath", "seed"])
    summary = ablation_summary(cells, ["metapath", "seed"], metrics=["recall"], ks=[10])
    uv = summary.filter((pl.col("metapath") == "UV") & (pl.col("split") == "valid")).row(
        0, named=True
    )
    assert uv["mean"] == pytest.approx(0.3)
    assert uv["std"] == pytest.approx(math.sqrt(0.02))  # sample std of 0.2, 0.4
    half = 12.706204736174707 * math.sqrt(0.02) / math.sqrt(2)  # t(0.975, 1 dof)
    assert uv["ci_low"] == pytest.approx(0.3 - half) and uv["ci_high"] == pytest.approx(0.3 + half)
    uuv = summary.filter((pl.col("metapath") == "UUV") & (pl.col("split") == "test")).row(
        0, named=True
    )
    assert uuv["mean"] == pytest.approx(0.6) and uuv["std"] == 0 and uuv["n_seeds"] == 2


def test_select_best_uses_validation_and_breaks_ties_by_order():
    variants = ["window~2", "window~4", "window~6"]
    tables = [metrics_table(v) for v in (0.3, 0.5, 0.5)]
    cells = cell_metrics(tables, variants, ["window"])
    assert select_best(cells, metric="recall", k=10) == ("window~4", 0.5)
    with pytest.raises(ValueError, match="ndcg@10"):
        select_best(cells, metric="ndcg", k=10)


def test_evaluated_users_sample_is_seeded_and_exact():
    from mp2v4rec.evaluation import evaluated_users

    users = pl.DataFrame(
        {
            "user": pl.Series(range(10), dtype=pl.Int32),
            "raw_id": pl.Series(range(10)),
            "evaluated": [True, False] * 5,
        }
    )
    assert evaluated_users(users).tolist() == [0, 2, 4, 6, 8]
    assert evaluated_users(users, sample=10).tolist() == [0, 2, 4, 6, 8]
    a, b = evaluated_users(users, sample=3, seed=1), evaluated_users(users, sample=3, seed=1)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 3
    assert set(a.tolist()) <= {0, 2, 4, 6, 8} and a.tolist() == sorted(a.tolist())
