"""ItemKNN: cosine item-item similarity with shrinkage, as in Sarwar et al. (WWW 2001) and the
baselines of Dacrema et al. (RecSys 2019).

On the binary train matrix ``X``: ``sim(i, j) = X_i . X_j / (|X_i| |X_j| + shrink)`` for
``i != j`` (columns ``X_i``); every item ``j`` keeps its ``k_neighbors`` most similar items
``i`` (equal similarities: lower item first) and a user's score of ``j`` is
``sum_i X_ui sim(i, j)`` over those neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from mp2v4rec.config import defaults
from mp2v4rec.models import FitData, ItemItem
from mp2v4rec.recommend import seen_matrix
from mp2v4rec.topk import BLOCK_CELLS, select_top_k

DEFAULTS = defaults("itemknn")  # the config schema's


def prune_rows(blocks, n: int, k: int | None) -> sp.csr_matrix:
    """Stack dense row blocks ``(rows, values)`` into an ``n`` x ``n`` CSR keeping each row's
    ``k`` largest positive entries (all positive entries when ``k`` is None)."""
    indptr, indices, data = [np.zeros(1, np.int64)], [], []
    for rows, block in blocks:
        if k is not None and k < n:
            cols, vals = select_top_k(np.where(block > 0, block, -np.inf), k)
            keep = vals > 0
            counts = keep.sum(axis=1)
            cols, vals = cols[keep], vals[keep]
        else:
            r, cols = np.nonzero(block > 0)
            vals = block[r, cols]
            counts = np.bincount(r, minlength=len(rows))
        indptr.append(indptr[-1][-1] + np.cumsum(counts))
        indices.append(cols.astype(np.int32))
        data.append(vals.astype(np.float32))
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.concatenate(indptr)), shape=(n, n)
    )


def row_blocks(n: int):
    """Row ranges of an ``n`` x ``n`` dense product at most ``BLOCK_CELLS`` numbers each."""
    step = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, step):
        yield np.arange(start, min(n, start + step))


def cosine_weights(X, *, k_neighbors: int | None, shrink: float) -> sp.csr_matrix:
    """ItemKNN's weights ``W[i, j] = sim(i, j)``, each column ``j`` pruned to its top
    ``k_neighbors`` (the similarity is symmetric, so rows are pruned and the result transposed)."""
    Xt = sp.csr_matrix(X.T, dtype=np.float64)  # items x users
    norms = np.sqrt(np.asarray(Xt.multiply(Xt).sum(axis=1)).ravel())
    n = Xt.shape[0]

    def blocks():
        for rows in row_blocks(n):
            dots = (Xt[rows] @ Xt.T).toarray()
            denom = norms[rows, None] * norms[None, :] + shrink
            block = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
            block[np.arange(rows.size), rows] = 0.0
            yield rows, block

    return prune_rows(blocks(), n, k_neighbors).T.tocsr()


def fit(data: FitData, settings: Mapping) -> ItemItem:
    X = seen_matrix(data.train, data.n_users, data.n_items)
    return ItemItem(
        cosine_weights(X, k_neighbors=settings["k_neighbors"], shrink=settings["shrink"])
    )
