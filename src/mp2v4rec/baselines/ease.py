"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

On the binary user x item train matrix ``X``: ``G = X^T X + l2 I``, ``P = G^-1`` and
``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal, ``B[j, j] = 0`` (the closed form of the ridge
regression of every item on all the others with a zero-diagonal constraint); a user's scores are
``X_u @ B``. The Gram matrix is dense (``n_warm^2`` numbers over the items with a train
positive), so catalogues above ``max_items`` are refused with the memory they would need.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp

from mp2v4rec.config import defaults
from mp2v4rec.io import InputError
from mp2v4rec.models import FitData, ItemItem
from mp2v4rec.recommend import seen_matrix

DEFAULTS = defaults("ease")  # the config schema's


def gram_bytes(n_items: int, dtype: str) -> int:
    """Memory of EASE's dense solve: the Gram matrix and its inverse, ``n_items^2`` each."""
    return 2 * n_items * n_items * np.dtype(dtype).itemsize


def spd_inverse(G: np.ndarray, block: int = 1024) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by its Cholesky factor (LAPACK potrf +
    potri: about a third of the work of an LU inverse), in ``G``'s own memory: potri fills the
    upper triangle, which is mirrored into the lower one block by block."""
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (G,))
    factor, info = potrf(G, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise InputError(f"EASE: the regularised Gram matrix is not positive definite ({info})")
    n = inverse.shape[0]
    for start in range(0, n, block):
        stop = min(n, start + block)
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        diagonal = inverse[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        diagonal[lower] = diagonal.T[lower]
    return inverse


def ease_weights(
    X, *, l2: float = DEFAULTS["l2"], dtype: str = DEFAULTS["dtype"], max_items: int | None = None
) -> np.ndarray:
    """EASE's item x item weights ``B`` (float32) of the binary matrix ``X`` (users x items).

    Only warm items (a column with a positive) enter the solve: a cold item's Gram row is
    ``l2`` on the diagonal alone, so its weights are 0 either way, and the solve shrinks from
    ``n_items^3`` to ``n_warm^3``."""
    n = X.shape[1]
    warm = np.flatnonzero(np.diff(sp.csc_matrix(X).indptr) > 0)
    limit = DEFAULTS["max_items"] if max_items is None else max_items
    if warm.size > limit:
        m = warm.size
        raise InputError(
            f"EASE on {m:,} items (with a train positive) needs a dense {m:,} x {m:,} Gram "
            f"matrix and its inverse: {gram_bytes(m, dtype) / 2**30:.1f} GiB in {dtype}; that is "
            f"above the limit of max_items = {limit:,}. Raise the method's max_items if the "
            "machine has the memory (dtype: float32 halves it), or use itemknn / rp3b, whose "
            "weights are sparse."
        )
    if l2 <= 0:
        raise InputError(f"EASE l2 must be > 0 (the Gram matrix is singular without it), got {l2}")
    Xw = sp.csc_matrix(X, dtype=dtype)[:, warm]
    G = (Xw.T @ Xw).toarray()
    G[np.diag_indices(warm.size)] += l2
    B = spd_inverse(G)  # G's memory, now P
    B /= -np.diag(B).copy()  # B[i, j] = -P[i, j] / P[j, j]
    B[np.diag_indices(warm.size)] = 0.0
    if warm.size == n:
        return B.astype(np.float32)
    out = np.zeros((n, n), dtype=np.float32)
    out[np.ix_(warm, warm)] = B
    return out


def fit(data: FitData, settings: Mapping) -> ItemItem:
    X = seen_matrix(data.train, data.n_users, data.n_items)
    return ItemItem(
        ease_weights(X, l2=settings["l2"], dtype=settings["dtype"], max_items=settings["max_items"])
    )
