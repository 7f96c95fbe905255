"""Top-K recommendation from user and item embeddings, with the items a user has seen masked.

Scores are computed chunk by chunk over users (``U_chunk @ V.T`` in float32), so memory stays at
about ``rows * n_items * 12`` bytes (the scores plus numpy's argpartition index array) whatever
the number of users, with ``rows = min(chunk_size, MAX_CHUNK_CELLS // n_items)`` (at least 1;
``n_items``: the candidates, when given), so a chunk holds at most ~16.8M scores (~200 MB)
however large the catalogue.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.io import InputError

SCORES = ("cosine", "dot")
MAX_CHUNK_CELLS = 1 << 24  # scores per chunk (float32 scores + int64 argpartition indices)


def seen_matrix(train: pl.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Boolean user x item CSR matrix of the interactions in ``train`` (duplicates count once)."""
    for col in ("user", "item"):
        if col not in train.columns:
            raise InputError(
                f"interaction table has no column {col!r} (columns: {train.columns}); "
                "expected user, item, weight, timestamp"
            )
        if train[col].null_count():
            row = int(train[col].is_null().arg_true()[0])
            raise InputError(f"interaction table column {col!r} is null at row {row}")
    users = train["user"].to_numpy().astype(np.int64, copy=False)
    items = train["item"].to_numpy().astype(np.int64, copy=False)
    bad = (users < 0) | (users >= n_users) | (items < 0) | (items >= n_items)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"interaction table row {row}: user {users[row]}, item {items[row]} is outside the "
            f"{n_users} users x {n_items} items of the embeddings; the interactions and the "
            "embeddings come from different preprocess runs: re-run the workflow"
        )
    keys = np.unique(users * n_items + items)  # sorted by (user, item), deduplicated
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
    indices = (keys % n_items).astype(np.int32)
    return sp.csr_matrix(
        (np.ones(len(keys), dtype=bool), indices, indptr), shape=(n_users, n_items)
    )


def _as_vectors(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"{name} must be a 2-D array [rows, dim], got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        row = int(np.argmax(~np.isfinite(x).all(axis=1)))
        raise InputError(f"{name} row {row} holds NaN or infinity; the embedding training diverged")
    return x


def _normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows; zero rows stay zero (their cosine with anything is 0, not NaN)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return x / norms


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns of every row, best first; equal scores ordered by lower column."""
    n = scores.shape[1]
    if k < n:
        idx = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    else:
        idx = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, idx, axis=1)
    if k < n:
        # argpartition cuts ties at the k-th score arbitrarily: redo the rows where the tied
        # scores do not all fit, taking the lowest tied columns. Rows cut inside the -inf
        # (masked) block are skipped: those slots are padding anyway.
        kth = vals.min(axis=1)
        n_ge = np.count_nonzero(scores >= kth[:, None], axis=1)
        amb = np.flatnonzero((n_ge > k) & (kth > -np.inf))
        if amb.size:
            sub, t = scores[amb], kth[amb, None]
            gt, eq = sub > t, sub == t
            need = k - np.count_nonzero(gt, axis=1)
            keep = gt | (eq & (np.cumsum(eq, axis=1) <= need[:, None]))
            idx[amb] = np.nonzero(keep)[1].reshape(amb.size, k)
            vals[amb] = np.take_along_axis(sub, idx[amb], axis=1)
    order = np.lexsort((idx, -vals), axis=1)  # primary: score descending; then column ascending
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def check_users(users, n_users: int) -> np.ndarray:
    """``users`` as int64 indices, each within ``0 .. n_users-1``."""
    users = np.asarray(users)
    if users.ndim != 1 or (users.size and not np.issubdtype(users.dtype, np.integer)):
        raise InputError(f"users must be a 1-D integer array, got {users.dtype} {users.shape}")
    users = users.astype(np.int64, copy=False)
    if users.size and (users.min() < 0 or users.max() >= n_users):
        bad = int(users[(users < 0) | (users >= n_users)][0])
        raise InputError(f"user index {bad} is outside the {n_users} users")
    return users


def check_item_bias(item_bias, n_items: int) -> np.ndarray:
    """A per-item score offset as float32, one finite number per item."""
    bias = np.asarray(item_bias, dtype=np.float32)
    if bias.shape != (n_items,) or not np.isfinite(bias).all():
        raise InputError(
            f"item_bias must be {n_items} finite numbers (one per item), got shape {bias.shape}"
        )
    return bias


def recommend_top_k(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    users: np.ndarray,
    *,
    k: int,
    score: str = "cosine",
    seen: sp.csr_matrix | None = None,
    chunk_size: int = 2048,
    log: logging.Logger | None = None,
    item_bias: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items for each of ``users``, best first.

    Returns ``items`` (int32) and ``scores`` (float32), both ``[len(users), k]``. Items in
    ``seen[user]`` are never recommended; a user with fewer than ``k`` unseen items gets a short
    list, padded with item -1 and score -inf. Equal scores are ordered by lower item index.

    ``item_bias`` (float ``[n_items]``) is added to every user's cosine/dot score (e.g. a
    popularity prior). ``candidates`` (item indices) restricts the lists to those items; when
    fewer than ``k`` remain, the lists are padded as above.
    """
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORES)}")
    U = _as_vectors(user_vectors, "user_vectors")
    V = _as_vectors(item_vectors, "item_vectors")
    n_users, n_items = U.shape[0], V.shape[0]
    if U.shape[1] != V.shape[1]:
        raise InputError(
            f"user_vectors have dimension {U.shape[1]} but item_vectors {V.shape[1]}; "
            "both must come from the same model"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"recommend.k must be a positive integer, got {k!r}")
    k = int(k)
    if k > n_items:
        raise InputError(
            f"recommend.k = {k} exceeds the catalogue size ({n_items} items); lower recommend.k"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    users = check_users(users, n_users)
    if seen is not None:
        seen = sp.csr_matrix(seen)
        if seen.shape != (n_users, n_items):
            raise InputError(
                f"seen matrix has shape {seen.shape}, expected ({n_users}, {n_items}) "
                "(users x items of the embeddings)"
            )
    bias = None if item_bias is None else check_item_bias(item_bias, n_items)
    cols, col_of = None, None  # candidate items (sorted) and each item's column, -1 if none
    if candidates is not None:
        cols = np.asarray(candidates)
        if cols.ndim != 1 or not cols.size or not np.issubdtype(cols.dtype, np.integer):
            raise InputError(
                f"candidates must be a non-empty 1-D integer array, got {cols.dtype} {cols.shape}"
            )
        cols = np.unique(cols.astype(np.int64))
        if cols[0] < 0 or cols[-1] >= n_items:
            bad = int(cols[0] if cols[0] < 0 else cols[-1])
            raise InputError(f"candidate item {bad} is outside the {n_items} items")
        col_of = np.full(n_items, -1, dtype=np.int64)
        col_of[cols] = np.arange(cols.size)
        V = V[cols]
        bias = None if bias is None else bias[cols]
    kk = min(k, V.shape[0])  # columns actually ranked; the rest is padding

    if score == "cosine":
        V = _normalise(V)
    VT = np.ascontiguousarray(V.T)
    out_items = np.empty((users.size, k), dtype=np.int32)
    out_scores = np.empty((users.size, k), dtype=np.float32)
    chunk_size = max(1, min(int(chunk_size), MAX_CHUNK_CELLS // V.shape[0]))
    out_items[:, kk:], out_scores[:, kk:] = -1, -np.inf  # fewer candidates than k
    for start in range(0, users.size, chunk_size):
        chunk = users[start : start + chunk_size]
        Uc = U[chunk]
        if score == "cosine":
            Uc = _normalise(Uc)
        S = Uc @ VT  # float32 [chunk, n_items or n_candidates]
        if bias is not None:
            S += bias
        if seen is not None:
            sub = seen[chunk]
            rows = np.repeat(np.arange(chunk.size), np.diff(sub.indptr))
            stored = sub.data != 0  # explicitly stored False entries are not seen
            rows, c = rows[stored], sub.indices[stored]
            if col_of is not None:  # seen items outside the candidates need no mask
                c = col_of[c]
                rows, c = rows[c >= 0], c[c >= 0]
            S[rows, c] = -np.inf
        idx, vals = _top_k(S, kk)
        if cols is not None:
            idx = cols[idx]  # columns back to item indices (sorted, so ties stay by item)
        idx[vals == -np.inf] = -1  # masked slots: the user has fewer than k unseen items
        out_items[start : start + chunk.size, :kk] = idx
        out_scores[start : start + chunk.size, :kk] = vals
        if log is not None:
            log.info("recommend: %d/%d users scored", start + chunk.size, users.size)
    return out_items, out_scores


def recs_frame(users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """Long table (user:int32, rank:int16 from 1, item:int32, score:float32); padding dropped."""
    users, items, scores = np.asarray(users), np.asarray(items), np.asarray(scores)
    if items.ndim != 2 or items.shape != scores.shape or items.shape[0] != users.shape[0]:
        raise InputError(
            f"recs_frame needs users [n], items [n, k] and scores [n, k]; got {users.shape}, "
            f"{items.shape} and {scores.shape}"
        )
    n, k = items.shape
    if k > np.iinfo(np.int16).max:
        raise InputError(f"recommend.k = {k} does not fit the int16 rank column")
    keep = items.ravel() >= 0
    return pl.DataFrame(
        {
            "user": np.repeat(users.astype(np.int32), k)[keep],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n)[keep],
            "item": items.ravel().astype(np.int32)[keep],
            "score": scores.ravel().astype(np.float32)[keep],
        }
    )


def user_block(users: np.ndarray, block: int, n_blocks: int) -> np.ndarray:
    """The ``block``-th of ``n_blocks`` contiguous, near-equal blocks of the sorted users: one
    recommendation job's share (empty when there are fewer users than blocks)."""
    if not 0 <= block < n_blocks:
        raise InputError(f"user block {block} is outside 0..{n_blocks - 1} (recommend.user_blocks)")
    return np.array_split(np.sort(np.asarray(users)), n_blocks)[block]


def merge_recs(blocks: list[pl.DataFrame], users: np.ndarray) -> pl.DataFrame:
    """The lists of every user block as one table sorted by user and rank.

    Each user's list must come from exactly one block and every user must be one of ``users``
    (the evaluated users), so a stale or foreign block fails instead of mixing in.
    """
    recs = pl.concat(blocks).sort("user", "rank")
    owners = pl.concat(
        [
            b.select(pl.col("user").unique()).with_columns(pl.lit(i).alias("block"))
            for i, b in enumerate(blocks)
        ]
    )
    twice = owners.filter(pl.col("user").is_duplicated()).sort("user", "block")
    if twice.height:
        raise InputError(
            f"user {twice['user'][0]} has lists in blocks {twice['block'][:2].to_list()}: "
            "the blocks overlap; rerun the recommend jobs (snakemake --forcerun recommend)"
        )
    foreign = owners.filter(~pl.col("user").is_in(pl.Series(np.asarray(users)).implode()))
    if foreign.height:
        raise InputError(
            f"user {foreign['user'][0]} in block {foreign['block'][0]} is not an evaluated user: "
            "the block is stale; rerun the recommend jobs (snakemake --forcerun recommend)"
        )
    return recs
