"""Exact top-k by blocked matrix products and a numba selection kernel (serve's neighbour lists).

Each block of query rows is scored against every candidate with one float32 matrix product
(``block_cells`` scores at most, 64 MB by default, whatever the catalogue size), then every row
keeps its best ``k`` in a small sorted buffer while scanning its scores in column order: a score
enters only when strictly above the buffer's last, so among equal scores the lower column wins.
That is O(columns) per row with few insertions, several times faster than ``np.argpartition``
plus the tie fix-up for the short lists (k = 50) serving needs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

BLOCK_CELLS = 1 << 24  # float32 scores per block (64 MB)


@njit(parallel=True, cache=True)
def _select(S, k, exclude, out_i, out_v):  # pragma: no cover - compiled
    """Best ``k`` columns of every row of ``S`` (descending; ties: lower column first), column
    ``exclude[r]`` and -inf scores skipped; ``out_*`` rows arrive filled with -1 / -inf."""
    n_rows, n = S.shape
    for r in prange(n_rows):
        vals = out_v[r]
        idx = out_i[r]
        count = 0
        ex = exclude[r]
        for j in range(n):
            s = S[r, j]
            if j == ex or s == -np.inf:
                continue
            if count == k:
                if s <= vals[k - 1]:
                    continue
                p = k - 1
            else:
                p = count
                count += 1
            while p > 0 and vals[p - 1] < s:
                vals[p] = vals[p - 1]
                idx[p] = idx[p - 1]
                p -= 1
            vals[p] = s
            idx[p] = j


def top_k(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    block_cells: int = BLOCK_CELLS,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows of ``candidates`` by dot product for every row of ``queries``.

    Returns ``(columns int32 [n_q, k], scores float32 [n_q, k])``, best first, equal scores by
    lower column; ``exclude[i]`` (a column or -1) is skipped for query ``i``; missing slots are
    -1 / -inf (fewer than ``k`` candidates).
    """
    Q = np.ascontiguousarray(queries, dtype=np.float32)
    CT = np.ascontiguousarray(np.asarray(candidates, dtype=np.float32).T)
    n_q, n = Q.shape[0], CT.shape[1]
    k = int(k)
    ex = np.full(n_q, -1, np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
    out_i = np.full((n_q, k), -1, dtype=np.int32)
    out_v = np.full((n_q, k), -np.inf, dtype=np.float32)
    if k <= 0 or n == 0:
        return out_i, out_v
    rows = max(1, int(block_cells) // n)
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        _select(Q[start:stop] @ CT, k, ex[start:stop], out_i[start:stop], out_v[start:stop])
    return out_i, out_v
