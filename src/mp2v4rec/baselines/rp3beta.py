"""RP3beta (Paudel, Christoffel, Newell, Bernstein, "Updatable, accurate, diverse, and scalable
recommendations for interactive applications", ACM TiiS 2016; a baseline of Dacrema et al.,
RecSys 2019).

A three-step random walk user -> item -> user -> item on the binary train graph: with
``P_ui = X / rowsum(X)`` and ``P_iu = X^T / rowsum(X^T)`` each raised elementwise to ``alpha``,
``W[i, j] = (P_iu^alpha @ P_ui^alpha)[i, j] / pop(j)^beta`` (``pop``: the item's train users),
the diagonal set to 0, each row ``i`` optionally pruned to its ``k_neighbors`` largest entries;
a user's score of ``j`` is ``sum_i X_ui W[i, j]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from mp2v4rec.baselines.itemknn import prune_rows, row_blocks
from mp2v4rec.config import defaults
from mp2v4rec.models import FitData, ItemItem
from mp2v4rec.recommend import seen_matrix

DEFAULTS = defaults("rp3b")  # the config schema's


def _transition(M: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Row-normalised ``M`` (rows without entries stay empty), raised elementwise to ``alpha``."""
    M = sp.csr_matrix(M, dtype=np.float64)
    sums = np.asarray(M.sum(axis=1)).ravel()
    M = (sp.diags(1.0 / np.where(sums > 0, sums, 1.0)) @ M).tocsr()
    M.data **= alpha  # on stored entries only: alpha = 0 keeps the pattern (scipy's power refuses)
    return M


def rp3beta_weights(X, *, alpha: float, beta: float, k_neighbors: int | None) -> sp.csr_matrix:
    """RP3beta's item x item weights of the binary matrix ``X`` (users x items)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    P_ui, P_iu = _transition(X, alpha), _transition(X.T, alpha)
    pop = np.diff(X.tocsc().indptr).astype(np.float64)
    penalty = np.where(pop > 0, np.power(np.maximum(pop, 1.0), -beta), 0.0)
    n = X.shape[1]

    def blocks():
        for rows in row_blocks(n):
            block = (P_iu[rows] @ P_ui).toarray() * penalty[None, :]
            block[np.arange(rows.size), rows] = 0.0
            yield rows, block

    return prune_rows(blocks(), n, k_neighbors)


def fit(data: FitData, settings: Mapping) -> ItemItem:
    X = seen_matrix(data.train, data.n_users, data.n_items)
    return ItemItem(
        rp3beta_weights(
            X, alpha=settings["alpha"], beta=settings["beta"], k_neighbors=settings["k_neighbors"]
        )
    )
