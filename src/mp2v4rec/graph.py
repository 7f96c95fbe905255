"""The user-item-user heterogeneous graph as one CSR matrix per relation.

A graph is a flat dict of numpy arrays (saved as npz): for each relation ``rel`` in
:data:`RELATIONS`, ``{rel}_indptr`` (int64, one entry per source node plus one),
``{rel}_indices`` (int32, neighbour index in the destination node type, sorted within each row)
and ``{rel}_weights`` (float32, aligned with the indices); plus ``n_users`` and ``n_items``
(0-d int64).
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl

from mp2v4rec.io import InputError, load_npz, save_npz

# relation name -> (source node type, destination node type)
RELATIONS: dict[str, tuple[str, str]] = {
    "user_item": ("user", "item"),
    "item_user": ("item", "user"),
    "user_user": ("user", "user"),
}


def _column(df: pl.DataFrame, table: str, col: str, dtype: type) -> np.ndarray:
    """A column as a numpy array, rejecting a missing column and nulls with a precise message."""
    if col not in df.columns:
        raise InputError(
            f"{table} table has no column {col!r} (columns: {df.columns}); "
            "re-run the preprocess stage to get the standard schema"
        )
    series = df.get_column(col)
    if series.null_count():
        row = int(series.is_null().arg_max())
        raise InputError(
            f"{table} table, column {col!r}, row {row} (0-based): null value; drop or fill it"
        )
    return series.to_numpy().astype(dtype, copy=False)


def _check_range(values: np.ndarray, n: int, table: str, col: str) -> None:
    bad = (values < 0) | (values >= n)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"{table} table, column {col!r}, row {row} (0-based): index {int(values[row])} is "
            f"outside [0, {n}); indices must be dense (re-run preprocess, or fix n_users/n_items)"
        )


def _csr(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray, n_src: int, n_dst: int, *, unit: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, indices, weights) with rows sorted by neighbour and duplicates merged.

    Duplicate weights are summed (in float64), or set to 1.0 when ``unit``.
    """
    key = src.astype(np.int64) * np.int64(max(n_dst, 1)) + dst.astype(np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    if key.size:
        first = np.empty(key.size, dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
    else:
        starts = np.zeros(0, dtype=np.int64)
    ukey = key[starts]
    del key
    if unit:
        weights = np.ones(ukey.size, dtype=np.float32)
    else:
        weights = np.add.reduceat(w[order].astype(np.float64), starts).astype(np.float32)
    rows = ukey // max(n_dst, 1)
    indices = (ukey - rows * max(n_dst, 1)).astype(np.int32)
    indptr = np.zeros(n_src + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_src), out=indptr[1:])
    return indptr, indices, weights


def build_graph(
    train: pl.DataFrame,
    social: pl.DataFrame | None,
    n_users: int,
    n_items: int,
    *,
    symmetric_social: bool = True,
) -> dict[str, np.ndarray]:
    """Build the CSR arrays of every relation from the training interactions and social links.

    ``item_user`` is the exact transpose of ``user_item``: the edge (i, u) carries the same weight
    as (u, i). Duplicate interactions are summed. ``user_user`` edges come from ``social``
    (``user`` -> ``friend``, plus the reverse when ``symmetric_social``), weight 1.0, no self
    loops, duplicates collapsed.
    """
    n_users, n_items = int(n_users), int(n_items)
    if n_users < 0 or n_items < 0 or n_users + n_items >= 2**31:
        raise InputError(f"bad node counts n_users={n_users}, n_items={n_items}")

    users = _column(train, "train", "user", np.int64)
    items = _column(train, "train", "item", np.int64)
    weights = _column(train, "train", "weight", np.float64)
    _check_range(users, n_users, "train", "user")
    _check_range(items, n_items, "train", "item")
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"train table, column 'weight', row {row} (0-based): {weights[row]} is not a finite "
            "non-negative number; interaction weights must be >= 0"
        )

    graph: dict[str, np.ndarray] = {}
    ui = _csr(users, items, weights, n_users, n_items)
    del users, items, weights
    # transpose the merged edges so every (i, u) keeps the weight of its (u, i)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(ui[0]))
    iu = _csr(ui[1], rows, ui[2], n_items, n_users)
    del rows

    if social is None or social.height == 0:
        src = dst = np.zeros(0, dtype=np.int64)
    else:
        src = _column(social, "social", "user", np.int64)
        dst = _column(social, "social", "friend", np.int64)
        _check_range(src, n_users, "social", "user")
        _check_range(dst, n_users, "social", "friend")
        if symmetric_social:
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        keep = src != dst
        src, dst = src[keep], dst[keep]
    uu = _csr(src, dst, np.ones(src.size, dtype=np.float32), n_users, n_users, unit=True)

    for rel, (indptr, indices, w) in {"user_item": ui, "item_user": iu, "user_user": uu}.items():
        graph[f"{rel}_indptr"] = indptr
        graph[f"{rel}_indices"] = indices
        graph[f"{rel}_weights"] = w
    graph["n_users"] = np.array(n_users, dtype=np.int64)
    graph["n_items"] = np.array(n_items, dtype=np.int64)
    return graph


def node_count(graph: dict[str, np.ndarray], node_type: str) -> int:
    return int(graph["n_users"] if node_type == "user" else graph["n_items"])


def check_graph(graph: dict[str, np.ndarray], source: str = "graph") -> None:
    """Raise InputError when arrays are missing or inconsistent (e.g. a foreign npz file)."""
    for key in ("n_users", "n_items"):
        if key not in graph:
            raise InputError(f"{source}: missing array {key!r}; rebuild it with the graph stage")
    for rel, (src, dst) in RELATIONS.items():
        keys = [f"{rel}_{part}" for part in ("indptr", "indices", "weights")]
        missing = [k for k in keys if k not in graph]
        if missing:
            raise InputError(f"{source}: missing arrays {missing}; rebuild it with the graph stage")
        indptr, indices, weights = (graph[k] for k in keys)
        n_src, n_dst = node_count(graph, src), node_count(graph, dst)
        ok = (
            indptr.shape == (n_src + 1,)
            and indptr[0] == 0
            and indptr[-1] == indices.size == weights.size
            and (indices.size == 0 or (indices.min() >= 0 and indices.max() < n_dst))
        )
        if not ok:
            raise InputError(f"{source}: relation {rel!r} is not a valid CSR matrix; rebuild it")


def save_graph(graph: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    check_graph(graph)
    save_npz(path, **graph)


def load_graph(path: str | os.PathLike) -> dict[str, np.ndarray]:
    graph = load_npz(path)
    check_graph(graph, source=str(path))
    return graph


_A = {"user": "a user", "item": "an item"}
_CHAIN_HINT = (
    "order the relations so each starts where the previous one ends ("
    + ", ".join(f"{rel}: {a} -> {b}" for rel, (a, b) in RELATIONS.items())
    + "), e.g. [user_item, item_user] or [user_user, user_item, item_user]"
)


def validate_metapath(relations: list[str], name: str = "metapath") -> None:
    """Check that a metapath is a non-empty cycle of known, chaining relations starting at users."""
    key = f"metapaths.{name}"
    if not isinstance(relations, list | tuple) or not relations:
        raise InputError(f"{key}: expected a non-empty list of relations, got {relations!r}")
    for rel in relations:
        if rel not in RELATIONS:
            raise InputError(f"{key}: unknown relation {rel!r}; use one of: {', '.join(RELATIONS)}")
    if RELATIONS[relations[0]][0] != "user":
        raise InputError(
            f"{key}: the first relation {relations[0]!r} must start at a user (walks start "
            f"there); {_CHAIN_HINT}"
        )
    for k, rel in enumerate(relations):
        nxt = relations[(k + 1) % len(relations)]
        if RELATIONS[rel][1] != RELATIONS[nxt][0]:
            where = (
                "the metapath repeats, so the last relation must chain into the first"
                if k == len(relations) - 1
                else f"positions {k} and {k + 1}"
            )
            raise InputError(
                f"{key}: {rel!r} ends at {_A[RELATIONS[rel][1]]} but {nxt!r} starts at "
                f"{_A[RELATIONS[nxt][0]]} ({where}); {_CHAIN_HINT}"
            )
