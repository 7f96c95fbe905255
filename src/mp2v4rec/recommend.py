"""Top-K recommendation lists, with the items a user is known to like masked.

One ranking engine (:func:`rank_users`) serves every method: a *scorer* turns a chunk of users
into a score block (embeddings: ``U_chunk @ V.T`` in float32, :func:`embedding_scorer`; UserKNN:
neighbour sums), and the engine masks, falls back and cuts the top K. Memory stays at about
``rows * n_items * 12`` bytes (the scores plus numpy's argpartition index array) whatever the
number of users, with ``rows = min(chunk_size, MAX_CHUNK_CELLS // n_items)`` (at least 1;
``n_items``: the candidates, when given), so a chunk holds at most ~16.8M scores (~200 MB)
however large the catalogue.

The evaluation's lists (:func:`split_recs`) are made per held-out split: the list a user gets
for the validation split masks their train items, the one for the test split their train items
*and* their validation positives (known history by test time: a known positive in a slot could
only count as a miss). Validation lists never depend on test labels, so selecting on them is
blind to test. Users without any train positive get
the popularity list (:func:`popularity_fallback`) from every method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import InputError, check_int
from mp2v4rec.topk import select_top_k

log = logging.getLogger(__name__)

SCORES = ("cosine", "dot")
MAX_CHUNK_CELLS = 1 << 24  # scores per chunk (float32 scores + int64 argpartition indices)
Scorer = Callable[[np.ndarray], np.ndarray]  # user indices -> writable scores [users, columns]


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


def normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows; zero rows stay zero (their cosine with anything is 0, not NaN)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return x / norms


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


@dataclass(frozen=True)
class Fallback:
    """The list every method gives a user without train positives: the most popular items.

    ``users``: bool ``[n_users]``, True for users without any train positive (zero vectors for
    most methods, random ones for others); ``scores``: float32 ``[n_items]``, the item's train
    count, so ties go to the lower item like every other list.
    """

    users: np.ndarray
    scores: np.ndarray


def popularity_fallback(train: pl.DataFrame, n_users: int, n_items: int) -> Fallback:
    """The popularity fallback of the users without train positives (see :class:`Fallback`)."""
    seen = seen_matrix(train, n_users, n_items)
    counts = np.bincount(seen.indices, minlength=n_items).astype(np.float32)
    return Fallback(users=np.diff(seen.indptr) == 0, scores=counts)


def held_out_masks(
    held_out: Mapping[str, pl.DataFrame], splits: Sequence[str], n_users: int, n_items: int
) -> dict[str, sp.csr_matrix | None]:
    """For each of ``splits``, the pairs of the held-out splits that come *before* it in time
    (``SPLITS``: validation, then test): known positives that must not take a slot in its lists.
    Validation lists mask nothing here (train only), test lists mask the validation positives,
    which are known history by the time one tests; no list ever depends on a later split's
    labels, so selection on validation never reads a test label (None: nothing to mask)."""
    masks = {}
    for split in splits:
        if split not in held_out or split not in SPLITS:
            raise InputError(f"no held-out table for split {split!r} (have {list(held_out)})")
        earlier = SPLITS[: SPLITS.index(split)]
        known = [held_out[s].select("user", "item") for s in earlier if s in held_out]
        masks[split] = seen_matrix(pl.concat(known), n_users, n_items) if known else None
    return masks


def embedding_scorer(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    *,
    score: str = "cosine",
    item_bias: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> Scorer:
    """A :data:`Scorer` of ``user . item`` (cosine: of the L2-normalised vectors) plus
    ``item_bias``, over ``candidates`` (sorted item indices; all items when None).

    An item whose vector is all zeros is one the model never saw (absent from its training
    data): it scores -inf, so it is never recommended, as an item outside a word2vec vocabulary
    cannot be (a zero vector would otherwise score 0 and outrank every item the model scores
    below 0, as dot products of negative-sampling models mostly are)."""
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORES)}")
    U = _as_vectors(user_vectors, "user_vectors")
    V = _as_vectors(item_vectors, "item_vectors")
    if U.shape[1] != V.shape[1]:
        raise InputError(
            f"user_vectors have dimension {U.shape[1]} but item_vectors {V.shape[1]}; "
            "both must come from the same model"
        )
    bias = None if item_bias is None else check_item_bias(item_bias, V.shape[0])
    if candidates is not None:
        V = V[candidates]
        bias = None if bias is None else bias[candidates]
    unknown = np.flatnonzero(~V.any(axis=1))
    if score == "cosine":
        V = normalise(V)
    VT = np.ascontiguousarray(V.T)

    def scores(users: np.ndarray) -> np.ndarray:
        Uc = U[users]
        S = (normalise(Uc) if score == "cosine" else Uc) @ VT  # float32 [users, columns]
        if bias is not None:
            S += bias
        S[:, unknown] = -np.inf
        return S

    return scores


def check_candidates(candidates, n_items: int) -> np.ndarray:
    """Candidate items as sorted distinct int64 indices within the catalogue."""
    cols = np.asarray(candidates)
    if cols.ndim != 1 or not cols.size or not np.issubdtype(cols.dtype, np.integer):
        raise InputError(
            f"candidates must be a non-empty 1-D integer array, got {cols.dtype} {cols.shape}"
        )
    cols = np.unique(cols.astype(np.int64))
    if cols[0] < 0 or cols[-1] >= n_items:
        bad = int(cols[0] if cols[0] < 0 else cols[-1])
        raise InputError(f"candidate item {bad} is outside the {n_items} items")
    return cols


def _check_mask(mask, n_users: int, n_items: int, name: str) -> sp.csr_matrix | None:
    if mask is None:
        return None
    mask = sp.csr_matrix(mask)
    if mask.shape != (n_users, n_items):
        raise InputError(
            f"{name} matrix has shape {mask.shape}, expected ({n_users}, {n_items}) "
            "(users x items of the embeddings)"
        )
    return mask


def _mask_cells(mask: sp.csr_matrix, chunk: np.ndarray, col_of: np.ndarray | None):
    """(row, column) cells of ``mask`` for the chunk's users, in the score block's columns."""
    sub = mask[chunk]
    rows = np.repeat(np.arange(chunk.size), np.diff(sub.indptr))
    stored = sub.data != 0  # explicitly stored False entries are not masked
    rows, cols = rows[stored], sub.indices[stored]
    if col_of is not None:  # masked items outside the candidates need no mask
        cols = col_of[cols]
        rows, cols = rows[cols >= 0], cols[cols >= 0]
    return rows, cols


def rank_users(
    scorer: Scorer,
    users: np.ndarray,
    n_users: int,
    n_items: int,
    *,
    k: int,
    seen: sp.csr_matrix | None = None,
    exclude: Sequence[sp.csr_matrix | None] = (None,),
    fallback: Fallback | None = None,
    candidates: np.ndarray | None = None,
    chunk_size: int = 2048,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-``k`` items of each of ``users`` by ``scorer``, best first, once per mask of
    ``exclude``: the scores are computed once per chunk of users, and the list for
    ``exclude[j]`` never holds an item of ``seen`` or of ``exclude[j]``.

    Returns one ``(items int32, scores float32)`` pair, both ``[len(users), k]``, per entry of
    ``exclude``. Equal scores go to the lower item; a user with fewer than ``k`` allowed items
    gets a short list padded with item -1 and score -inf. Users flagged in ``fallback`` are
    ranked by ``fallback.scores`` instead of ``scorer``. ``candidates`` (sorted distinct item
    indices, the scorer's columns) restricts the lists to those items.
    """
    k = check_int("recommend.k", k)
    if k > n_items:
        raise InputError(
            f"recommend.k = {k} exceeds the catalogue size ({n_items} items); lower recommend.k"
        )
    chunk_size = check_int("chunk_size", chunk_size)
    users = check_users(users, n_users)
    seen = _check_mask(seen, n_users, n_items, "seen")
    exclude = [_check_mask(m, n_users, n_items, "exclude") for m in exclude]
    cols, col_of = None, None  # candidate items and each item's column (-1: not a candidate)
    if candidates is not None:
        cols = check_candidates(candidates, n_items)
        col_of = np.full(n_items, -1, dtype=np.int64)
        col_of[cols] = np.arange(cols.size)
    n_cols = n_items if cols is None else cols.size
    kk = min(k, n_cols)  # columns actually ranked; the rest is padding
    back_up = None
    if fallback is not None:
        back_up = np.asarray(fallback.scores, dtype=np.float32)
        back_up = back_up if cols is None else back_up[cols]

    out = []
    for _ in exclude:
        items = np.full((users.size, k), -1, dtype=np.int32)
        scores = np.full((users.size, k), -np.inf, dtype=np.float32)
        out.append((items, scores))
    rows_per_chunk = max(1, min(chunk_size, MAX_CHUNK_CELLS // n_cols))
    for start in range(0, users.size, rows_per_chunk):
        chunk = users[start : start + rows_per_chunk]
        S = scorer(chunk)
        if back_up is not None and (cold := fallback.users[chunk]).any():
            S[cold] = back_up
        if seen is not None:
            S[_mask_cells(seen, chunk, col_of)] = -np.inf
        for mask, (items, scores) in zip(exclude, out, strict=True):
            cells = None if mask is None else _mask_cells(mask, chunk, col_of)
            if cells is not None:
                kept = S[cells]
                S[cells] = -np.inf
            idx, vals = select_top_k(S, kk)
            if cells is not None:
                S[cells] = kept  # the next mask starts from the shared scores again
            if cols is not None:  # columns back to item indices (sorted: ties stay by item)
                idx = np.where(idx >= 0, cols[idx], -1)  # -1: fewer than k allowed items
            items[start : start + chunk.size, :kk] = idx
            scores[start : start + chunk.size, :kk] = vals
        if users.size > rows_per_chunk:  # progress of a long job (not of a one-chunk call)
            log.info("recommend: %d/%d users scored", start + chunk.size, users.size)
    return out


def recommend_top_k(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    users: np.ndarray,
    *,
    k: int,
    score: str = "cosine",
    seen: sp.csr_matrix | None = None,
    chunk_size: int = 2048,
    item_bias: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    fallback: Fallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items for each of ``users`` by embedding score (:func:`embedding_scorer`),
    ``seen`` items masked: one list per user, see :func:`rank_users`.

    ``item_bias`` (float ``[n_items]``) is added to every user's cosine/dot score (e.g. a
    popularity prior). ``candidates`` (item indices) restricts the lists to those items.
    """
    n_users, n_items = np.shape(user_vectors)[0], np.shape(item_vectors)[0]
    cols = None if candidates is None else check_candidates(candidates, n_items)
    scorer = embedding_scorer(
        user_vectors, item_vectors, score=score, item_bias=item_bias, candidates=cols
    )
    [lists] = rank_users(
        scorer,
        users,
        n_users,
        n_items,
        k=k,
        seen=seen,
        fallback=fallback,
        candidates=cols,
        chunk_size=chunk_size,
    )
    return lists


def split_recs(
    scorer: Scorer,
    users: np.ndarray,
    train: pl.DataFrame,
    held_out: Mapping[str, pl.DataFrame],
    n_users: int,
    n_items: int,
    *,
    splits: Sequence[str],
    k: int,
    mask_seen: bool = True,
    chunk_size: int = 2048,
) -> pl.DataFrame:
    """Every user's list for each of ``splits`` as one table (split, user, rank, item, score):
    with ``mask_seen``, the train items are masked, and in the test lists the validation
    positives too (:func:`held_out_masks`: validation lists never depend on test labels);
    users without train positives get the popularity fallback (:func:`popularity_fallback`),
    whatever the method."""
    seen = seen_matrix(train, n_users, n_items) if mask_seen else None
    if mask_seen:
        masks = held_out_masks(held_out, splits, n_users, n_items)
    else:
        masks = dict.fromkeys(splits)
    lists = rank_users(
        scorer,
        users,
        n_users,
        n_items,
        k=k,
        seen=seen,
        exclude=list(masks.values()),
        fallback=popularity_fallback(train, n_users, n_items),
        chunk_size=chunk_size,
    )
    users = np.asarray(users).astype(np.int32)
    return pl.concat(
        [
            recs_frame(users, items, scores).select(pl.lit(split).alias("split"), pl.all())
            for split, (items, scores) in zip(masks, lists, strict=True)
        ]
    )


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
    """The lists of every user block as one table sorted by split, user and rank.

    Each user's list must come from exactly one block and every user must be one of ``users``
    (the evaluated users), so a stale or foreign block fails instead of mixing in.
    """
    recs = pl.concat(blocks).sort("split", "user", "rank")
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
