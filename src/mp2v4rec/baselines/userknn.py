"""User-based k-nearest-neighbours recommendation with cosine similarity.

``sim(u, v) = R_u . R_v / (|R_u| |R_v|)`` on the user x item matrix ``R`` (binary, or the summed
interaction weights with ``weighted=True``); a user is never its own neighbour. ``N_k(u)`` are
the ``k_neighbors`` most similar users (equal similarities: lower user index first; users with
similarity 0 add nothing) and ``score(u, i) = sum_{v in N_k(u)} sim(u, v) R[v, i]``.

Users are processed ``chunk_size`` at a time: one dense ``chunk x n_users`` similarity block and
one dense ``chunk x n_items`` score block (float64), never an all-users similarity matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.config import defaults
from mp2v4rec.io import InputError
from mp2v4rec.recommend import Fallback, Scorer, rank_users, seen_matrix
from mp2v4rec.topk import select_top_k

log = logging.getLogger(__name__)
DEFAULTS = defaults("userknn")  # the config schema's


def rating_matrix(
    train: pl.DataFrame,
    n_users: int,
    n_items: int,
    weighted: bool = False,
    seen: sp.csr_matrix | None = None,
) -> sp.csr_matrix:
    """float64 user x item CSR: 1 per distinct pair, or the sum of its weights if ``weighted``.

    ``seen`` (``seen_matrix(train, ...)``) may be passed to avoid rebuilding it.
    """
    if seen is None:
        seen = seen_matrix(train, n_users, n_items)  # validates ids; sorted, deduplicated
    if not weighted:
        return sp.csr_matrix((np.ones(seen.nnz), seen.indices, seen.indptr), shape=seen.shape)
    if "weight" not in train.columns or train["weight"].null_count():
        raise InputError("userknn weighted=True needs a non-null 'weight' column in train")
    weights = train["weight"].to_numpy().astype(np.float64)
    if not np.isfinite(weights).all() or (weights < 0).any():
        row = int(np.argmax(~np.isfinite(weights) | (weights < 0)))
        raise InputError(f"train row {row}: weight {weights[row]} must be finite and >= 0")
    users = train["user"].to_numpy().astype(np.int64)
    items = train["item"].to_numpy().astype(np.int64)
    R = sp.csr_matrix((weights, (users, items)), shape=(n_users, n_items))  # sums duplicates
    R.sort_indices()
    return R


@numba.njit(cache=True)
def _aggregate(nbr, nbr_sim, indptr, indices, data, n_items):
    """``scores[r] = sum_t nbr_sim[r, t] * R[nbr[r, t]]``; rows of ``nbr_sim`` sorted descending."""
    scores = np.zeros((nbr.shape[0], n_items))
    for r in range(nbr.shape[0]):
        for t in range(nbr.shape[1]):
            sim = nbr_sim[r, t]
            if sim <= 0:  # the rest add nothing
                break
            v = nbr[r, t]
            for p in range(indptr[v], indptr[v + 1]):
                scores[r, indices[p]] += sim * data[p]
    return scores


def userknn_scorer(
    train: pl.DataFrame,
    n_users: int,
    n_items: int,
    *,
    k_neighbors: int = DEFAULTS["k_neighbors"],
    weighted: bool = DEFAULTS["weighted"],
) -> Scorer:
    """A :data:`~mp2v4rec.recommend.Scorer` giving each user's neighbour sums over all items
    (float64 ``[users, n_items]``), for :func:`mp2v4rec.recommend.rank_users`."""
    if isinstance(k_neighbors, bool) or not isinstance(k_neighbors, int | np.integer):
        raise InputError(f"userknn k_neighbors must be a positive integer, got {k_neighbors!r}")
    if k_neighbors < 1:
        raise InputError(f"userknn k_neighbors must be a positive integer, got {k_neighbors!r}")
    R = rating_matrix(train, n_users, n_items, weighted)
    RT = R.T.tocsr()
    norms = np.sqrt(np.asarray(R.multiply(R).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    n_neighbors = min(int(k_neighbors), n_users)

    def scores(chunk: np.ndarray) -> np.ndarray:
        sim = (R[chunk] @ RT).toarray()  # dot products, [chunk, n_users]
        sim *= inv[chunk, None]
        sim *= inv[None, :]
        sim[np.arange(chunk.size), chunk] = 0.0  # not one's own neighbour
        nbr, nbr_sim = select_top_k(sim, n_neighbors)
        del sim
        return _aggregate(nbr, nbr_sim, R.indptr, R.indices, R.data, n_items)

    return scores


def userknn_recommend(
    train: pl.DataFrame,
    n_users: int,
    n_items: int,
    users: np.ndarray,
    *,
    k_neighbors: int = DEFAULTS["k_neighbors"],
    k: int = 100,
    mask_seen: bool = True,
    weighted: bool = DEFAULTS["weighted"],
    chunk_size: int = DEFAULTS["chunk_size"],
    fallback: Fallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items for each of ``users``, in ``recommend_top_k``'s format.

    Returns ``items`` (int32) and ``scores`` (float32), ``[len(users), k]``, best first, equal
    scores by lower item; with ``mask_seen`` a user's train items are never recommended and a
    list that runs out of items is padded with -1 / -inf.
    """
    scorer = userknn_scorer(train, n_users, n_items, k_neighbors=k_neighbors, weighted=weighted)
    [lists] = rank_users(
        scorer,
        users,
        n_users,
        n_items,
        k=k,
        seen=seen_matrix(train, n_users, n_items) if mask_seen else None,
        fallback=fallback,
        chunk_size=chunk_size,
    )
    return lists


@dataclass
class UserNeighbours:
    """UserKNN: the scorer is built from train at recommend time; nothing is stored."""

    k_neighbors: int
    weighted: bool
    chunk_size: int = 1024  # users per similarity block (and per ranking chunk)
    model = "none"
    curve = None

    def scorer(self, train: pl.DataFrame, n_users: int, n_items: int) -> Scorer:
        return userknn_scorer(
            train, n_users, n_items, k_neighbors=self.k_neighbors, weighted=self.weighted
        )


def fit(data, settings):
    """The registry's fit: nothing to train; the scorer is built from train when ranking."""
    return UserNeighbours(settings["k_neighbors"], settings["weighted"], settings["chunk_size"])
