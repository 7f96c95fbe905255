"""Evaluation protocols: which items may be recommended, how a score is formed, how it is judged.

The same embeddings can score several-fold apart under different protocols, so each result is
reported with its protocol named:

Candidate sets
- ``all``: every catalogue item the user has not seen in training
  (``recommend_top_k(..., seen=...)``).
- ``block``: only the items of the evaluation block (KuaiRec: the fully observed small matrix;
  event logs: the items of the evaluation events), ``recommend_top_k(..., candidates=
  block_items(...))``.
- ``sampled``: every held-out positive ranked against ``N`` sampled negatives
  (:func:`sample_negatives`, :func:`sampled_ranks`, :func:`sampled_metrics`).

Score functions on embeddings
- ``cosine`` and ``dot``: as in :mod:`mp2v4rec.recommend`.
- ``popblend``: cosine + beta * log(1 + popularity), popularity = the item's train count; beta
  chosen on validation (:func:`select_blend_beta`), then applied to test.

Graded relevance on the fully observed block: :func:`graded_metrics` (NDCG with capped
watch-ratio gains) and :func:`block_auc` (AUC and GAUC against observed negatives).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.arrays import pair_keys, split_pair_keys
from mp2v4rec.datasets.common import cold_mask
from mp2v4rec.io import InputError
from mp2v4rec.metrics import _check_ks, _columns, accuracy_metrics, per_user_metrics
from mp2v4rec.models import ITEM_SPACES
from mp2v4rec.recommend import (
    SCORES,
    Fallback,
    _as_vectors,
    check_item_bias,
    normalise,
    popularity_fallback,
    rank_users,
    recommend_top_k,
    recs_frame,
    seen_matrix,
)

log = logging.getLogger(__name__)
CANDIDATE_SETS = ("all", "block", "sampled")
SCORE_FUNCTIONS = ("cosine", "dot", "popblend")
BLEND_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SAMPLE_CHUNK = 1 << 15  # truth rows drawn at a time (part of the seeded draw: do not change)
TABLE_SCHEMA = {"metric": pl.String, "k": pl.Int64, "value": pl.Float64, "n_users": pl.Int64}


# ---- score functions ------------------------------------------------------------------------


def item_popularity(train: pl.DataFrame, n_items: int) -> np.ndarray:
    """Train count of every item (int64 ``[n_items]``): distinct users who interacted with it."""
    return np.bincount(_pair_keys(train, "train", n_items) % n_items, minlength=n_items)


def blend_bias(popularity: np.ndarray, beta: float) -> np.ndarray:
    """The ``popblend`` item bias, ``beta * log(1 + popularity)`` (float32)."""
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.ndim != 1 or (pop < 0).any() or not np.isfinite(pop).all():
        raise InputError("popularity must be a 1-D array of non-negative counts")
    if not np.isfinite(beta):
        raise InputError(f"popblend beta must be a finite number, got {beta!r}")
    return (beta * np.log1p(pop)).astype(np.float32)


def resolve_score(
    score: str,
    *,
    native: str = "cosine",
    beta: float = 0.0,
    popularity: np.ndarray | None = None,
) -> tuple[str, np.ndarray | None]:
    """``(base score, item_bias)`` for ``recommend_top_k``: cosine and dot as they are;
    popblend = the model's ``native`` score + the blend bias."""
    if score in SCORES:
        return score, None
    if score != "popblend":
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORE_FUNCTIONS)}")
    if popularity is None:
        raise InputError("score 'popblend' needs the item popularity (train counts)")
    return native, blend_bias(popularity, beta)


def score_items(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    users: np.ndarray,
    *,
    score: str = "cosine",
    item_bias: np.ndarray | None = None,
    items: np.ndarray | None = None,
) -> np.ndarray:
    """Dense scores float32 ``[len(users), len(items)]`` (all items when ``items`` is None)."""
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORES)}")
    U = _as_vectors(user_vectors, "user_vectors")[np.asarray(users, dtype=np.int64)]
    V = _as_vectors(item_vectors, "item_vectors")
    cols = np.arange(V.shape[0]) if items is None else np.asarray(items, dtype=np.int64)
    V = V[cols]
    if score == "cosine":
        U, V = normalise(U), normalise(V)
    S = U @ V.T
    if item_bias is not None:
        S += check_item_bias(item_bias, np.shape(item_vectors)[0])[cols]
    return S


def select_blend_beta(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    n_items: int,
    *,
    grid: Sequence[float] = BLEND_GRID,
    k: int = 50,
    candidates: np.ndarray | None = None,
    score: str = "cosine",
    exclude: Sequence[pl.DataFrame] = (),
) -> tuple[float, pl.DataFrame]:
    """The ``popblend`` beta of ``grid`` with the best validation Recall@``k``; the blend is
    added to the embeddings' ``score``.

    Returns ``(beta, table)`` with table ``beta, recall`` (one row per grid value, in grid
    order). Ties go to the smallest beta, so a prior that does not help is not used. Train items
    and the pairs of the ``exclude`` tables (the other held-out splits) are masked;
    ``candidates`` restricts the lists as in the protocol being tuned.
    """
    grid = [float(b) for b in grid]
    if not grid or not np.isfinite(grid).all():
        raise InputError(f"popblend beta grid must be a non-empty list of numbers, got {grid}")
    users = np.unique(valid["user"].to_numpy()).astype(np.int64)
    n_users = np.asarray(user_vectors).shape[0]
    known = [t.select("user", "item") for t in (train, *exclude)]
    seen = seen_matrix(pl.concat(known), n_users, n_items)
    pop = item_popularity(train, n_items)
    fallback = popularity_fallback(train, n_users, n_items)
    recalls = []
    for beta in grid:
        items, scores = recommend_top_k(
            user_vectors,
            item_vectors,
            users,
            k=k,
            score=score,
            seen=seen,
            fallback=fallback,
            item_bias=blend_bias(pop, beta),
            candidates=candidates,
        )
        table = accuracy_metrics(recs_frame(users, items, scores), valid, [k])
        recalls.append(table.filter(pl.col("metric") == "recall")["value"][0])
    recalls = np.asarray(recalls)
    best = min(b for b, r in zip(grid, recalls, strict=True) if r == recalls.max())
    return best, pl.DataFrame(
        {"beta": grid, "recall": recalls}, schema={"beta": pl.Float64, "recall": pl.Float64}
    )


# ---- candidate sets -------------------------------------------------------------------------


def block_items(*tables: pl.DataFrame) -> np.ndarray:
    """Sorted distinct item indices (int64) of the block tables (the ``block`` candidates)."""
    items = [t["item"].to_numpy().astype(np.int64) for t in tables if t.height]
    return np.unique(np.concatenate(items)) if items else np.zeros(0, np.int64)


def _pair_keys(df: pl.DataFrame, name: str, n_items: int) -> np.ndarray:
    """Sorted distinct ``user * n_items + item`` keys of a table, items checked in range."""
    df = _columns(df, name, ("user", "item"))
    users, items = df["user"].to_numpy(), df["item"].to_numpy()
    if items.size and items.max() >= n_items:
        row = int(np.argmax(items >= n_items))
        raise InputError(f"{name} table row {row} has item {items[row]} >= n_items={n_items}")
    return np.unique(users * n_items + items)


def sample_negatives(
    train: pl.DataFrame,
    truth: pl.DataFrame,
    n_items: int,
    *,
    n_negatives: int = 100,
    seed: int = 0,
    exclude: Sequence[pl.DataFrame] = (),
    pool: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``N`` negatives for every held-out positive of ``truth`` (the ``sampled`` protocol).

    Returns ``users`` and ``positives`` (int64 ``[P]``: the distinct truth pairs sorted by user,
    item) and ``negatives`` (int32 ``[P, N]``, each row ascending). Each row holds N distinct
    items drawn uniformly (every N-subset equally likely) from the items (of ``pool``, default
    all) that are neither the user's train items, nor the user's truth items, nor in any
    ``exclude`` table (e.g. validation when evaluating test). Rows are drawn independently; the
    same inputs and seed give the same draw.

    Sampled metrics are a biased estimate of the full-ranking ones (Krichene & Rendle, KDD
    2020): they are inflated (HitRate@10 among 101 items is far easier than among the whole
    catalogue) and can even reorder methods, so they are reported next to, never instead of,
    the ``all`` and ``block`` protocols.
    """
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, int | np.integer):
        raise InputError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    if n_negatives < 1:
        raise InputError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    truth_keys = _pair_keys(truth, "truth", n_items)
    users, positives = truth_keys // n_items, truth_keys % n_items
    universe = np.arange(n_items) if pool is None else np.unique(np.asarray(pool, np.int64))
    if universe.size and (universe[0] < 0 or universe[-1] >= n_items):
        raise InputError(f"negative pool holds items outside 0..{n_items - 1}")
    L = universe.size

    # forbidden (user, position in universe), sorted by user then position
    tables = [(train, "train"), *((t, f"exclude[{i}]") for i, t in enumerate(exclude))]
    keys = np.unique(np.concatenate([truth_keys, *(_pair_keys(t, n, n_items) for t, n in tables)]))
    f_user, f_item = keys // n_items, keys % n_items
    f_pos = np.minimum(np.searchsorted(universe, f_item), max(L - 1, 0))
    inside = universe[f_pos] == f_item if L else np.zeros(keys.size, bool)
    f_user, f_pos = f_user[inside], f_pos[inside]
    start = np.searchsorted(f_user, users, side="left")
    n_allowed = L - (np.searchsorted(f_user, users, side="right") - start)
    if (short := n_allowed < n_negatives).any():
        row = int(np.argmax(short))
        raise InputError(
            f"user {users[row]} has only {n_allowed[row]} items left to sample from, fewer than "
            f"{n_negatives} sampled negatives; lower the config key evaluate.protocols."
            "sampled_negatives or drop 'sampled' from evaluate.protocols.candidates"
        )

    # j-th allowed position = j + #{forbidden f_i : f_i - i <= j} (i: f_i's rank in its user)
    g = f_pos - (np.arange(f_user.size) - np.searchsorted(f_user, f_user, side="left"))
    gkey = f_user * (L + 1) + g  # sorted: users ascending, g non-decreasing within a user

    rng = np.random.default_rng(seed)
    negatives = np.empty((users.size, n_negatives), dtype=np.int32)
    for a in range(0, users.size, SAMPLE_CHUNK):  # fixed chunks: memory bounded, draw fixed
        m = n_allowed[a : a + SAMPLE_CHUNK, None]
        # allowed ranks j in [0, m), sorted per row; repeats are redrawn until a row is distinct
        # (label-symmetric, so every N-subset stays equally likely)
        j = np.sort((rng.random((m.size, n_negatives)) * m).astype(np.int64), axis=1)
        while True:
            dup = np.zeros(j.shape, dtype=bool)
            dup[:, 1:] = j[:, 1:] == j[:, :-1]
            rows = np.flatnonzero(dup.any(axis=1))
            if not rows.size:
                break
            r, c = np.nonzero(dup[rows])
            j[rows[r], c] = (rng.random(r.size) * m[rows[r], 0]).astype(np.int64)
            j[rows] = np.sort(j[rows], axis=1)
        u = users[a : a + SAMPLE_CHUNK, None]
        below = np.searchsorted(gkey, u * (L + 1) + j, side="right") - start[a : a + m.size, None]
        negatives[a : a + m.size] = universe[j + below]
    return users, positives, negatives


def sampled_ranks(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    users: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    score: str = "cosine",
    item_bias: np.ndarray | None = None,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Rank (int64, 1..N+1) of each positive among itself and its ``N`` negatives.

    Ties are pessimistic: a negative scoring the same as the positive ranks above it (so
    constant scores give rank N+1, not 1).
    """
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORES)}")
    U = _as_vectors(user_vectors, "user_vectors")
    V = _as_vectors(item_vectors, "item_vectors")
    if score == "cosine":
        U, V = normalise(U), normalise(V)
    users, positives = np.asarray(users, np.int64), np.asarray(positives, np.int64)
    negatives = np.asarray(negatives, np.int64)
    if negatives.ndim != 2 or negatives.shape[0] != users.size or positives.size != users.size:
        raise InputError("sampled_ranks needs users [P], positives [P] and negatives [P, N]")
    items = np.column_stack([positives, negatives])  # [P, N + 1], the positive first
    bias = None if item_bias is None else check_item_bias(item_bias, np.shape(V)[0])
    S = np.empty(items.shape, dtype=np.float32)
    uq, inv = np.unique(users, return_inverse=True)
    if uq.size * V.shape[0] <= 8 * items.size:
        # many positives per user: one BLAS row of scores per user, then gather
        order = np.argsort(inv, kind="stable")
        step = max(1, (1 << 22) // V.shape[0])  # users per block: ~16 MB of scores
        bounds = np.searchsorted(inv[order], np.arange(0, uq.size + step, step))
        for b, a in enumerate(range(0, uq.size, step)):
            rows = order[bounds[b] : bounds[b + 1]]
            S[rows] = (U[uq[a : a + step]] @ V.T)[inv[rows, None] - a, items[rows]]
    else:  # few positives per user: score only the N + 1 items of each row
        for a in range(0, users.size, chunk_size):
            c = slice(a, a + chunk_size)
            S[c] = np.einsum("cd,cnd->cn", U[users[c]], V[items[c]])
    if bias is not None:
        S += bias[items]
    return 1 + np.count_nonzero(S[:, 1:] >= S[:, :1], axis=1)


def sampled_metrics(users: np.ndarray, ranks: np.ndarray, ks: list[int]) -> pl.DataFrame:
    """HitRate@K and NDCG@K of sampled ranks: tidy (metric, k, value, n_users).

    Per positive: hitrate = [rank <= K], ndcg = [rank <= K] / log2(rank + 1) (one relevant
    item). Averaged over each user's positives, then over users (like the other metrics).
    """
    ks = _check_ks(ks)
    users, ranks = np.asarray(users), np.asarray(ranks, dtype=np.float64)
    if users.size == 0:
        raise InputError("no sampled positives: there is no user to evaluate")
    u, row = np.unique(users, return_inverse=True)
    hit = ranks[:, None] <= ks[None, :]
    per = {"hitrate": hit, "ndcg": hit / np.log2(ranks + 1)[:, None]}
    count = np.bincount(row, minlength=u.size)[:, None]
    values = {
        m: (np.stack([np.bincount(row, v[:, j], u.size) for j in range(ks.size)], 1) / count)
        for m, v in per.items()
    }
    return pl.DataFrame(
        {
            "metric": np.repeat(list(values), ks.size).tolist(),
            "k": ks.tolist() * len(values),
            "value": np.concatenate([v.mean(axis=0) for v in values.values()]),
            "n_users": [u.size] * (ks.size * len(values)),
        },
        schema=TABLE_SCHEMA,
    )


# ---- graded relevance on the fully observed block -------------------------------------------


@dataclass(frozen=True, eq=False)
class Block:
    """An observed block's pairs sorted by (user, item), one row per pair (the max weight of
    repeats): built once per split and shared by every protocol that reads it (graded NDCG
    keeps its ideal lists here, per gain cap and K)."""

    user: np.ndarray  # int64
    item: np.ndarray  # int64
    weight: np.ndarray  # float64
    _ideal: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, block: pl.DataFrame | Block) -> Block:
        """``block`` itself, or the sorted pairs of a (user, item, weight) table."""
        if isinstance(block, Block):
            return block
        if "weight" not in block.columns:
            raise InputError(f"block table has no column 'weight' (columns: {block.columns})")
        w = block["weight"].cast(pl.Float64)
        if w.null_count() or w.is_nan().any():
            row = int((w.is_null() | w.is_nan()).arg_true()[0])
            raise InputError(f"block table column 'weight' is null or NaN at row {row}")
        df = _columns(block, "block", ("user", "item"))
        key = pair_keys(df["user"].to_numpy(), df["item"].to_numpy())
        w = w.to_numpy()
        if key.size > 1 and not (key[1:] > key[:-1]).all():  # not already sorted and distinct
            order = np.argsort(key, kind="stable")
            key, w = key[order], w[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            key, w = key[starts], np.maximum.reduceat(w, starts)
        return cls(*split_pair_keys(key), w)

    def ideal(self, cap: float, max_k: int) -> tuple:
        """Graded NDCG's judged pairs and ideal lists: ``(users, keys, gains, best)`` with the
        users having some gain > 0, their pairs' sorted keys and capped gains, and each user's
        top-``max_k`` gains best first (``[users, max_k]``)."""
        if (cap, max_k) not in self._ideal:
            gain = np.clip(self.weight, 0.0, cap)
            users = np.unique(self.user[gain > 0])
            judged = np.isin(self.user, users)
            u, i, gain = self.user[judged], self.item[judged], gain[judged]
            order = np.lexsort((-gain, u))
            starts, row = _segments(u[order])
            pos = np.arange(order.size) - starts[row]
            top = pos < max_k
            best = np.zeros((users.size, max_k))
            best[row[top], pos[top]] = gain[order][top]
            self._ideal[(cap, max_k)] = (users, pair_keys(u, i), gain, best)
        return self._ideal[(cap, max_k)]


def _segments(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of each run of equal values and each element's run index."""
    new = np.r_[True, sorted_values[1:] != sorted_values[:-1]] if sorted_values.size else []
    return np.flatnonzero(new), np.cumsum(new, dtype=np.int64) - 1


def graded_metrics(
    recs: pl.DataFrame, block: pl.DataFrame | Block, ks: list[int], *, cap: float = 5.0
) -> pl.DataFrame:
    """NDCG@K with graded gains on a fully observed block: tidy (metric, k, value, n_users).

    gain(u, i) = clip(weight, 0, cap) (KuaiRec: the capped watch_ratio; linear, not 2^rel - 1,
    since watch ratios are not small integer grades). A recommended item with no block row for
    the user has gain 0 but keeps its rank (pass recs made with ``candidates=`` block items to
    judge block-only lists). IDCG@K = the user's top-K block gains. Users are the block users
    with some gain > 0; users without recommendations count 0. Drop the pairs the method could
    not recommend (train) or that belong to another split from ``block`` before calling.
    metric = ``graded_ndcg``.
    """
    if not (np.isfinite(cap) and cap > 0):
        raise InputError(f"graded gain cap must be a positive number, got {cap!r}")
    ks = _check_ks(ks)
    max_k = int(ks.max())
    users, key, gain, best = Block.of(block).ideal(float(cap), max_k)
    if users.size == 0:
        raise InputError("block has no positive gain: there is no user to evaluate")
    discount = 1.0 / np.log2(np.arange(2, max_k + 2))

    # the recommended items' gains, looked up by (user, item) key
    recs = _columns(recs, "recs", ("user", "rank", "item")).filter(pl.col("rank") <= max_k)
    if recs.select(pl.struct("user", "rank").is_duplicated().any()).item():
        raise InputError("recs table repeats a (user, rank); each user needs one item per rank")
    if recs.select(pl.struct("user", "item").is_duplicated().any()).item():
        raise InputError("recs table lists an item twice for a user; at most once per user")
    rkey = pair_keys(recs["user"].to_numpy(), recs["item"].to_numpy())
    at = np.minimum(np.searchsorted(key, rkey), key.size - 1)
    hit = key[at] == rkey
    gains = np.zeros((users.size, max_k))
    r_user = recs["user"].to_numpy()[hit]
    gains[np.searchsorted(users, r_user), recs["rank"].to_numpy()[hit] - 1] = gain[at[hit]]

    dcg = np.cumsum(gains * discount, axis=1)[:, ks - 1]
    idcg = np.cumsum(best * discount, axis=1)[:, ks - 1]
    return pl.DataFrame(
        {
            "metric": ["graded_ndcg"] * ks.size,
            "k": ks.tolist(),
            "value": (dcg / idcg).mean(axis=0),
            "n_users": [users.size] * ks.size,
        },
        schema=TABLE_SCHEMA,
    )


def _auc(pos_rank_sum: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC from the sum of the positives' average ranks (ties count 1/2)."""
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def block_auc(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    block: pl.DataFrame | Block,
    *,
    score: str = "cosine",
    threshold: float = 2.0,
    item_bias: np.ndarray | None = None,
    chunk_size: int = 256,
) -> dict:
    """AUC and GAUC of the method's scores against the observed negatives of a block.

    Positives: block pairs with weight >= ``threshold``; negatives: block pairs below it.
    Ties count 1/2. ``auc`` pools every (positive, negative) pair of the block, across users
    (the CTR-style AUC). ``gauc`` is the mean of per-user AUCs weighted by the user's
    impressions (observed block pairs, P + N), as in DIN (Zhou et al., KDD 2018); on a fully
    observed block every user has the same impressions, so it equals the plain per-user mean.
    Per-user AUCs need a positive and a negative: other users are left out of ``gauc`` and
    ``n_users`` but kept in ``auc``. Scores are those ``recommend_top_k`` ranks by (float32).

    Returns ``dict(auc, gauc, n_users, n_positives, n_negatives)``.
    """
    if not np.isfinite(threshold):
        raise InputError(f"AUC threshold must be a finite number, got {threshold!r}")
    n_users, n_items = np.shape(user_vectors)[0], np.shape(item_vectors)[0]
    blk = Block.of(block)
    u, i, w = blk.user, blk.item, blk.weight
    if u.size and (u[-1] >= n_users or i.max() >= n_items):
        raise InputError(
            f"block holds a user or item beyond the embeddings ({n_users} users, {n_items} "
            "items); the block and the embeddings come from different preprocess runs"
        )
    pos = w >= threshold
    if not pos.any() or pos.all():
        kind = "negatives" if pos.all() else "positives"
        raise InputError(f"block has no {kind} at threshold {threshold}: AUC is undefined")
    starts, row = _segments(u)  # u is sorted: each user's pairs are one run
    users = u[starts]
    present = np.zeros(n_items, dtype=bool)
    present[i] = True
    items, col = np.flatnonzero(present), np.cumsum(present)[i] - 1  # block items, columns

    scores = np.empty(u.size, dtype=np.float32)  # every pair's score
    bounds = np.r_[starts, u.size]
    for r0 in range(0, users.size, chunk_size):
        r1 = min(r0 + chunk_size, users.size)
        a, b = bounds[r0], bounds[r1]
        S = score_items(
            user_vectors, item_vectors, users[r0:r1], score=score, item_bias=item_bias, items=items
        )
        scores[a:b] = S[row[a:b] - r0, col[a:b]]

    # average ranks (ties 1/2) from dense score ranks: rank = (#below + #below-or-equal + 1) / 2
    dense = np.unique(scores, return_inverse=True)[1].astype(np.int64)
    count = np.bincount(dense)
    upto = np.cumsum(count)[dense[pos]]  # pooled: pairs scoring <= each positive
    pooled = _auc(((2 * upto - count[dense[pos]] + 1) / 2).sum(), pos.sum(), (~pos).sum())
    key = np.sort(row * (count.size + 1) + dense)  # within-user order, users contiguous
    q = (row * (count.size + 1) + dense)[pos]
    lo = np.searchsorted(key, q, side="left") - starts[row[pos]]
    hi = np.searchsorted(key, q, side="right") - starts[row[pos]]
    rank_sum = np.bincount(row[pos], (lo + hi + 1) / 2, users.size)

    n_obs = np.diff(bounds).astype(np.float64)
    n_pos = np.bincount(row, pos, users.size)
    n_neg = n_obs - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    user_auc = _auc(rank_sum[ok], n_pos[ok], n_neg[ok])
    return {
        "auc": float(pooled),
        "gauc": float(np.average(user_auc, weights=n_obs[ok])) if ok.any() else float("nan"),
        "n_users": int(ok.sum()),
        "n_positives": int(pos.sum()),
        "n_negatives": int((~pos).sum()),
    }


# ---- seeded continuation --------------------------------------------------------------------


def last_items(train: pl.DataFrame, users: np.ndarray, s: int) -> pl.DataFrame:
    """Each user's last ``s`` train items by time (``user, item``); equal timestamps are ordered
    by item index and a missing timestamp counts as the oldest."""
    if s < 1:
        raise InputError(f"serve.seed_items must be >= 1, got {s}")
    keep = pl.Series(np.asarray(users, dtype=np.int32)).implode()
    return (
        train.filter(pl.col("user").is_in(keep))
        .sort(["user", "timestamp", "item"], nulls_last=False)
        .group_by("user", maintain_order=True)
        .tail(s)
        .select("user", "item")
    )


def seeded_lists(
    model,
    train: pl.DataFrame,
    users: np.ndarray,
    *,
    n_users: int,
    n_items: int,
    seed_items: int,
    k: int,
    exclude: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The continuation of every user's last ``seed_items`` train items, top ``k`` (user, rank,
    item, score), the user's train items (seeds included) and the pairs of ``exclude`` (the
    validation positives, when scoring test) excluded.

    The seeds are scored by the model's ``seed_scorer`` (:mod:`mp2v4rec.models`: the mean of
    their vectors for embeddings, ``seeds @ W`` for item-item weights). Users without a usable
    query (no train items, or only seeds the model never saw) get the popularity list;
    ``model=None`` gives everyone the popularity list (the reference line). Returns the lists
    and the number of users per source.
    """
    users = np.unique(np.asarray(users, dtype=np.int64))
    k = int(min(k, n_items))
    popularity = popularity_fallback(train, n_users, n_items).scores
    if model is None:  # the reference line: everyone on the popularity list
        by_model = np.zeros(users.size, dtype=bool)
        scorer = lambda rows: np.zeros((len(rows), n_items), np.float32)  # noqa: E731
    else:
        seeds = last_items(train, users, seed_items)
        rows = np.searchsorted(users, seeds["user"].to_numpy())
        ones = np.ones(rows.size, dtype=np.float32)
        seed_rows = sp.csr_matrix((ones, (rows, seeds["item"].to_numpy())), (users.size, n_items))
        scorer, by_model = model.seed_scorer(seed_rows)
    known = train if exclude is None else pl.concat([train, exclude.select(train.columns)])
    seen = seen_matrix(known, n_users, n_items)[users]  # rows follow users
    ((items, vals),) = rank_users(
        scorer,
        np.arange(users.size),
        users.size,
        n_items,
        k=k,
        seen=seen,
        fallback=Fallback(users=~by_model, scores=popularity),
    )
    counts = {"users": int(users.size), "by_model": int(by_model.sum())}
    counts["by_popularity"] = counts["users"] - counts["by_model"]
    log.info("seeded lists: %s", counts)
    return recs_frame(users, items, vals).sort("user", "rank"), counts


def seeded_table(
    recs: pl.DataFrame, truth: pl.DataFrame, ks: list[int], *, n_boot: int = 1000, seed: int = 0
) -> pl.DataFrame:
    """Recall, NDCG, precision and hit rate at ``ks`` of the continuations against the held-out
    items, with bootstrap CIs over users, in ``evaluation.METRICS_SCHEMA`` plus
    ``protocol = "seeded"`` (split ``test``, cohort ``all``)."""
    from mp2v4rec.stats import SUMMARY_SCHEMA, summarise

    users, per_user = per_user_metrics(recs, truth, ks)
    if users.size == 0:
        raise InputError("the test table has no rows for the evaluated users: nothing to score")
    table = summarise(per_user, list(ks), n_boot=n_boot, seed=seed)
    table = table.with_columns(split=pl.lit("test"), cohort=pl.lit("all"))
    return table.select("split", "cohort", *SUMMARY_SCHEMA).with_columns(protocol=pl.lit("seeded"))


def choose_item_space(
    model,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    users: np.ndarray,
    *,
    n_users: int,
    n_items: int,
    seed_items: int,
    k: int,
) -> tuple[str, dict[str, float]]:
    """The item table a model's item-to-item uses (similar items, seeded continuation) read:
    for a model scored against context vectors that kept its input table, the one whose seeded
    continuation scores the higher validation Recall@``k`` (lists mask train only; cold pairs
    out; context on ties), with both values; for any other model its own (``"own"``, {})."""
    if getattr(model, "item_input_vectors", None) is None:
        return "own", {}
    truth = valid.filter(pl.col("user").is_in(pl.Series(users).implode()))
    truth = truth.filter(~cold_mask(truth, train))
    recall = {}
    for space in ITEM_SPACES:
        recs, _ = seeded_lists(
            model.item_space(space),
            train,
            users,
            n_users=n_users,
            n_items=n_items,
            seed_items=seed_items,
            k=k,
        )
        _, values = per_user_metrics(recs, truth, [k])
        recall[space] = float(values["recall"][:, 0].mean()) if truth.height else float("nan")
    best = max(ITEM_SPACES, key=lambda space: (recall[space], space == "context"))
    log.info("item space on validation Recall@%d: %s -> %s", k, recall, best)
    return best, recall
