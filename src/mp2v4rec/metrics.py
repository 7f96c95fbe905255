"""Top-K accuracy of recommendation lists against held-out positives (binary relevance).

A user is evaluated when the truth table holds at least one item for them; users with no
recommendations count with zero hits and users absent from the truth are ignored. With ``R`` the
user's relevant items and ``hits@K`` the relevant items among the top K:

- recall@K    = hits@K / |R|            (the study's definition, not hits@K / min(K, |R|))
- precision@K = hits@K / K
- hitrate@K   = 1 if hits@K > 0 else 0
- ndcg@K      = DCG@K / IDCG@K, DCG@K = sum_{r<=K} rel_r / log2(r + 1), IDCG over min(K, |R|)
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mp2v4rec.arrays import pair_key_expr, sorted_unique, split_pair_keys
from mp2v4rec.io import InputError

DEFAULT_KS = [1, 2, 3, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
METRICS = ("recall", "ndcg", "precision", "hitrate")


def _columns(df: pl.DataFrame, name: str, cols: tuple[str, ...]) -> pl.DataFrame:
    """``cols`` of ``df`` cast to Int64, refusing missing columns, nulls and negative values."""
    for col in cols:
        if col not in df.columns:
            raise InputError(f"{name} table has no column {col!r} (columns: {df.columns})")
        if df[col].null_count():
            row = int(df[col].is_null().arg_true()[0])
            raise InputError(f"{name} table column {col!r} is null at row {row}")
    out = df.select(pl.col(c).cast(pl.Int64) for c in cols)
    for col in cols:
        if out.height and out[col].min() < (1 if col == "rank" else 0):
            row = int((out[col] < (1 if col == "rank" else 0)).arg_true()[0])
            limit = "ranks start at 1" if col == "rank" else "indices are >= 0"
            raise InputError(f"{name} table row {row} has {col} {out[col][row]}; {limit}")
    return out


def _check_ks(ks: list[int]) -> np.ndarray:
    ks = list(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int | np.integer) for k in ks):
        raise InputError(f"evaluation cut-offs must be a non-empty list of integers, got {ks!r}")
    if min(ks) < 1 or len(set(ks)) != len(ks):
        raise InputError(f"evaluation cut-offs must be distinct and >= 1, got {ks!r}")
    return np.asarray(ks, dtype=np.int64)


def hit_matrix(
    recs: pl.DataFrame, truth: pl.DataFrame, max_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits of the top ``max_k`` recommendations of every user in ``truth``.

    Returns ``users`` (int32, sorted: the users of ``truth``), ``hits`` (bool
    ``[n_users, max_k]``, ``hits[u, r]`` = the item at rank ``r + 1`` is relevant) and
    ``n_relevant`` (int64 ``[n_users]``, distinct truth items per user).
    """
    max_k = int(_check_ks([max_k])[0])
    truth = _columns(truth, "truth", ("user", "item"))
    truth_keys = sorted_unique(truth.select(pair_key_expr()).to_series().to_numpy())
    truth_users = split_pair_keys(truth_keys)[0]  # sorted
    starts = np.flatnonzero(np.diff(truth_users, prepend=-1))
    users, n_relevant = truth_users[starts], np.diff(np.r_[starts, truth_users.size])

    top = _columns(recs, "recs", ("user", "rank", "item")).filter(pl.col("rank") <= max_k)
    top = top.select("user", "rank", pair_key_expr())
    if top.select(pair_key_expr("user", "rank").n_unique()).item() != top.height:
        dup = top.filter(pl.struct("user", "rank").is_duplicated()).row(0, named=True)
        raise InputError(
            f"recs table repeats user {dup['user']} rank {dup['rank']}; each user needs one "
            "item per rank"
        )
    found = top.join(pl.DataFrame({"key": truth_keys}), on="key", how="semi")
    if found["key"].n_unique() != found.height:  # a repeated relevant item would count twice
        dup = found.filter(pl.col("key").is_duplicated()).row(0, named=True)
        raise InputError(
            f"recs table lists item {split_pair_keys(dup['key'])[1]} twice for user {dup['user']}; "
            "each item may appear at most once per user"
        )

    hits = np.zeros((users.size, max_k), dtype=bool)
    rows = np.searchsorted(users, found["user"].to_numpy())
    hits[rows, found["rank"].to_numpy() - 1] = True
    return users.astype(np.int32), hits, n_relevant.astype(np.int64)


def metrics_from_hits(
    hits: np.ndarray, n_relevant: np.ndarray, ks: list[int]
) -> dict[str, np.ndarray]:
    """Per-user metrics ``{metric: float64 [n_users, len(ks)]}`` from a hit matrix."""
    ks = _check_ks(ks)
    max_k = hits.shape[1]
    if ks.max() > max_k:
        raise InputError(f"cut-off {ks.max()} exceeds the hit matrix width {max_k}")
    n_rel = np.asarray(n_relevant, dtype=np.float64)[:, None]
    discount = 1.0 / np.log2(np.arange(2, max_k + 2))
    n_hits = np.cumsum(hits, axis=1, dtype=np.int64)[:, ks - 1]
    dcg = np.cumsum(hits * discount, axis=1)[:, ks - 1]
    ideal = np.cumsum(discount)  # ideal[j] = IDCG with j + 1 relevant items on top
    n_ideal = np.minimum(ks[None, :], np.asarray(n_relevant)[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):  # only for users with no relevant item
        return {
            "recall": n_hits / n_rel,
            "ndcg": dcg / ideal[np.maximum(n_ideal, 1) - 1],
            "precision": n_hits / ks[None, :],
            "hitrate": (n_hits > 0).astype(np.float64),
        }


def per_user_metrics(
    recs: pl.DataFrame, truth: pl.DataFrame, ks: list[int]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(users, {metric: float64 [n_users, len(ks)]})``; rows follow ``users`` (sorted).

    The rows depend only on ``truth``, so two methods evaluated on the same truth are
    row-aligned (paired bootstrap).
    """
    ks_arr = _check_ks(ks)
    users, hits, n_relevant = hit_matrix(recs, truth, int(ks_arr.max()))
    return users, metrics_from_hits(hits, n_relevant, ks)


def accuracy_metrics(recs: pl.DataFrame, truth: pl.DataFrame, ks: list[int]) -> pl.DataFrame:
    """Mean over evaluated users: tidy (metric:str, k:int64, value:float64, n_users:int64)."""
    users, per_user = per_user_metrics(recs, truth, ks)
    if users.size == 0:
        raise InputError("truth table has no rows: there is no user to evaluate")
    ks = [int(k) for k in ks]
    return pl.DataFrame(
        {
            "metric": np.repeat(METRICS, len(ks)).tolist(),
            "k": ks * len(METRICS),
            "value": np.concatenate([per_user[m].mean(axis=0) for m in METRICS]),
            "n_users": [users.size] * (len(ks) * len(METRICS)),
        },
        schema={"metric": pl.String, "k": pl.Int64, "value": pl.Float64, "n_users": pl.Int64},
    )
