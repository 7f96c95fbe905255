"""Accuracy metrics of mp2v4rec.metrics against ranx on random rankings (binary relevance).

ranx defines recall@k = hits@k / |relevant| and ndcg@k = DCG@k / IDCG@k with gains rel / log2(r + 1)
and the ideal ranking truncated at k (IDCG over min(k, |relevant|)): the same as ours.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mp2v4rec.metrics import accuracy_metrics, per_user_metrics

ranx = pytest.importorskip("ranx", reason="ranx is not installed (pip install ranx)")

pytestmark = pytest.mark.slow  # ranx compiles its numba kernels on first use (~45 s, then cached)

KS = [1, 2, 3, 5, 10, 20, 50]


def random_case(seed: int, n_users: int = 50, n_items: int = 300, k: int = 50):
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(1000, n_users, replace=False))
    recs, truth = [], []
    for u in users:  # test fixture only: the library itself is loop-free
        items = rng.choice(n_items, k, replace=False)
        recs.append(pl.DataFrame({"user": u, "rank": np.arange(1, k + 1), "item": items}))
        relevant = rng.choice(n_items, rng.integers(1, 60), replace=False)  # some > K
        truth.append(pl.DataFrame({"user": u, "item": relevant}))
    recs = pl.concat(recs).with_columns(
        pl.col("user").cast(pl.Int32),
        pl.col("rank").cast(pl.Int16),
        pl.col("item").cast(pl.Int32),
        score=(1.0 / pl.col("rank")).cast(pl.Float32),  # distinct, decreasing: no ties for ranx
    )
    truth = pl.concat(truth).with_columns(pl.col("user", "item").cast(pl.Int32))
    return recs, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_recall_and_ndcg_match_ranx(seed):
    recs, truth = random_case(seed)
    qrels = ranx.Qrels(
        {
            str(u): {str(i): 1 for i in g["item"]}
            for (u,), g in truth.group_by("user", maintain_order=True)
        }
    )
    run = ranx.Run(
        {
            str(u): {str(i): float(s) for i, s in zip(g["item"], g["rank"], strict=True)}
            for (u,), g in recs.with_columns(pl.col("rank").cast(pl.Float64).neg()).group_by(
                "user", maintain_order=True
            )
        }
    )
    names = [f"{m}@{k}" for m in ("recall", "ndcg") for k in KS]
    means = ranx.evaluate(qrels, run, names)
    ours = accuracy_metrics(recs, truth, KS)
    users, per_user = per_user_metrics(recs, truth, KS)
    for name in names:
        metric, k = name.split("@")
        j = KS.index(int(k))
        theirs = np.array([run.scores[name][str(u)] for u in users])
        np.testing.assert_allclose(per_user[metric][:, j], theirs, rtol=0, atol=1e-9)
        row = ours.filter((pl.col("metric") == metric) & (pl.col("k") == int(k)))
        assert abs(row["value"].item() - means[name]) < 1e-9
