"""Beyond-accuracy measures of top-K recommendation lists.

Every measure reads the recs frame (user, rank, item, score) as a dense ``[n_users, max_K]`` item
matrix (``rec_matrix``; -1 pads short lists) and is computed for all cut-offs at once. With
``L_u@K`` the valid items among user u's top K:

- coverage@K            = |union_u L_u@K| / n_items
- ild@K                 = mean_u (1 - mean pairwise cosine over L_u@K), in ``item_vectors``
                          (``ild_reference``: the same in ``reference_vectors``, a space shared by
                          all methods). A pair involving a zero vector has cosine 0. Undefined
                          (NaN) for lists of fewer than 2 items, so K = 1 is not reported.
- category_diversity@K  = mean_u |union of the categories of L_u@K| (items without a category add
                          none)
- novelty@K             = mean_u mean_{i in L_u@K} -log2 p(i), p(i) = (distinct train users of i) /
                          (distinct train users); an item no train user has seen counts as seen by
                          one user, so its self-information is the maximum log2(n_train_users)
- new_share@K           = mean_u share of L_u@K absent from u's train items (1.0 when seen items
                          are masked)
- gini@K                = Gini coefficient of the recommendation counts of all n_items catalogue
                          items in the top K (never recommended items count 0): 0 when every item is
                          recommended equally often, (n_items - 1) / n_items when one item takes all

Per-user measures are NaN for a user with no valid item (ILD: fewer than 2), and the means skip
NaN. The per-user arrays (rows follow the ``users`` of ``rec_matrix``) feed the bootstrap of
``mp2v4rec.stats`` and the histograms.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.arrays import pair_key_expr, pair_keys, sorted_unique, split_pair_keys
from mp2v4rec.io import InputError
from mp2v4rec.metrics import _check_ks, _columns

BEYOND_METRICS = (
    "coverage",
    "ild",
    "ild_reference",
    "category_diversity",
    "novelty",
    "new_share",
    "gini",
)


def rec_matrix(
    recs: pl.DataFrame, max_k: int, users: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)``: the top ``max_k`` items of each user as int32 ``[n_users, max_k]``.

    Rows follow ``users`` (default: the sorted distinct users of ``recs``; recs of other users
    are ignored, and a given user without recs gets an all -1 row); column ``r`` holds rank
    ``r + 1``, -1 where the list has no item at that rank.
    """
    max_k = int(_check_ks([max_k])[0])
    for col in ("user", "rank", "item"):
        if col not in recs.columns:
            raise InputError(f"recs table has no column {col!r} (columns: {recs.columns})")
    if recs.select(pl.any_horizontal(pl.col("user", "rank", "item").is_null().any())).item():
        _columns(recs, "recs", ("user", "rank", "item"))  # raises, naming the row
    top = recs.filter(pl.col("rank") <= max_k)
    u = top["user"].to_numpy().astype(np.int64, copy=False)
    rank = top["rank"].to_numpy().astype(np.int64, copy=False)
    item = top["item"].to_numpy().astype(np.int64, copy=False)
    for name, arr, low in (("user", u, 0), ("rank", rank, 1), ("item", item, 0)):
        if arr.size and arr.min() < low:
            row = int(np.argmax(arr < low))
            raise InputError(f"recs table row {row} (rank <= {max_k}) has {name} {arr[row]}")
    if users is None and np.all(u[1:] >= u[:-1]):  # recs in user order (the usual case)
        change = np.r_[True, u[1:] != u[:-1]] if u.size else np.zeros(0, dtype=bool)
        users, rows = u[change], np.cumsum(change) - 1
    else:
        if users is None:
            users = sorted_unique(u)
        users = np.asarray(users, dtype=np.int64)
        order = np.argsort(users, kind="stable")
        pos = np.searchsorted(users, u, sorter=order).clip(max=max(users.size - 1, 0))
        known = users[order[pos]] == u if users.size else np.zeros(u.size, dtype=bool)
        rank, item, rows = rank[known], item[known], order[pos[known]]
    items = np.full((users.size, max_k), -1, dtype=np.int32)
    items[rows, rank - 1] = item
    if np.count_nonzero(items >= 0) != item.size:  # a (user, rank) slot filled twice
        dup = top.filter(pl.struct("user", "rank").is_duplicated()).row(0, named=True)
        raise InputError(
            f"recs table repeats user {dup['user']} rank {dup['rank']}; each user needs one item "
            "per rank"
        )
    return users.astype(np.int32), items


def _segments(items: np.ndarray, ks: np.ndarray, n_items: int):
    """Yield ``(k, csr)`` for sorted ``ks``: users x items incidence of ranks in (k_prev, k]."""
    prev = 0
    for k in ks:
        block = items[:, prev:k]
        valid = block >= 0
        indptr = np.zeros(items.shape[0] + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=indptr[1:])
        cols = block[valid]  # row-major: each user's items are contiguous
        yield k, sp.csr_matrix((np.ones(cols.size), cols, indptr), shape=(items.shape[0], n_items))
        prev = k


def _check_vectors(x: np.ndarray, n_items: int, name: str) -> np.ndarray:
    """Rows L2-normalised (float64); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != n_items:
        raise InputError(f"{name} must have shape [{n_items} items, dim], got {x.shape}")
    if not np.isfinite(x).all():
        row = int(np.argmax(~np.isfinite(x).all(axis=1)))
        raise InputError(f"{name} row {row} holds NaN or infinity")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def ild_per_user(items: np.ndarray, vectors: np.ndarray, ks: list[int]) -> np.ndarray:
    """Intra-list diversity ``float64 [n_users, len(ks)]`` (NaN for fewer than 2 items).

    With unit (or zero) rows v, the pairwise cosines of a list sum to
    (||sum v||^2 - sum ||v||^2) / 2; the sums come from one sparse product per K segment.
    """
    ks_arr = _check_ks(ks)
    v = _check_vectors(vectors, np.shape(vectors)[0], "item vectors")
    _check_items(items, v.shape[0])
    order = np.argsort(ks_arr)
    total = np.zeros((items.shape[0], v.shape[1]))
    nonzero = (np.linalg.norm(v, axis=1) > 0).astype(np.float64)  # ||v||^2 is 1 or 0
    n_items, n_unit = np.zeros(items.shape[0]), np.zeros(items.shape[0])
    out = np.empty((items.shape[0], ks_arr.size))
    for j, (_, seg) in zip(order, _segments(items, ks_arr[order], v.shape[0]), strict=True):
        total += seg @ v
        n_items += np.diff(seg.indptr)
        n_unit += seg @ nonzero
        pairs = n_items * (n_items - 1) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = (np.einsum("ij,ij->i", total, total) - n_unit) / 2 / pairs
        out[:, j] = np.where(pairs > 0, 1.0 - sim, np.nan)
    return out


def _category_matrix(item_categories, n_items: int) -> sp.csr_matrix:
    """items x categories 0/1 CSR from a frame (``categories`` list or ``category`` int column,
    rows = items, or an ``item`` column) or a 1-D int array; -1 and nulls mean no category."""
    if isinstance(item_categories, pl.DataFrame):
        df = item_categories
        col = "categories" if "categories" in df.columns else "category"
        if col not in df.columns:
            raise InputError(
                f"item category table has neither a 'categories' nor a 'category' column "
                f"(columns: {df.columns})"
            )
        item = df["item"] if "item" in df.columns else pl.Series(np.arange(df.height))
        long = pl.DataFrame({"item": item.cast(pl.Int64), "cat": df[col]})
        if col == "categories":
            long = long.explode("cat")
        long = long.drop_nulls().filter(pl.col("cat") >= 0)
        rows, cats = long["item"].to_numpy(), long["cat"].to_numpy().astype(np.int64)
    else:
        arr = np.asarray(item_categories)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError("item_categories must be a frame or a 1-D integer array per item")
        rows = np.flatnonzero(arr >= 0)
        cats = arr[rows].astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_items):
        bad = int(rows[(rows < 0) | (rows >= n_items)][0])
        raise InputError(f"item category table names item {bad}, outside the {n_items} items")
    n_cats = int(cats.max()) + 1 if cats.size else 0
    m = sp.csr_matrix((np.ones(rows.size, dtype=bool), (rows, cats)), shape=(n_items, n_cats))
    m.sum_duplicates()
    return m


_MASK_WORDS = 16  # bitmask path up to 16 * 64 categories; more: a sort over (user, category)


def category_diversity_per_user(
    items: np.ndarray, item_categories, n_items: int, ks: list[int]
) -> np.ndarray:
    """Distinct categories in each user's top K, ``float64 [n_users, len(ks)]``."""
    ks_arr = _check_ks(ks)
    cm = _category_matrix(item_categories, n_items)
    n_words = max(1, -(-cm.shape[1] // 64))
    if n_words > _MASK_WORDS:
        return _category_diversity_sorted(items, cm, ks_arr)
    # one bit per category: OR the item masks along the ranks, count the bits at each K
    masks = np.zeros((n_items + 1, n_words), dtype=np.uint64)  # row -1 (padding) stays 0
    rows = np.repeat(np.arange(n_items), np.diff(cm.indptr))
    bits = np.left_shift(np.uint64(1), (cm.indices % 64).astype(np.uint64))
    np.bitwise_or.at(masks, (rows, cm.indices // 64), bits)
    width = min(items.shape[1], int(ks_arr.max()))
    cols = np.minimum(ks_arr, width) - 1
    out = np.empty((items.shape[0], ks_arr.size))
    chunk = max(1, (1 << 22) // (width * n_words))  # ~32 MB of masks per chunk of users
    for start in range(0, items.shape[0], chunk):
        m = masks[items[start : start + chunk, :width]]  # [users, width, words]
        np.bitwise_or.accumulate(m, axis=1, out=m)
        out[start : start + chunk] = _popcount(m[:, cols]).sum(axis=2)
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 has bitwise_count; otherwise a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x[..., None].view(np.uint8)].sum(axis=-1)


def _category_diversity_sorted(items: np.ndarray, cm: sp.csr_matrix, ks: np.ndarray):
    """Category diversity for large category sets: first rank of each (user, category)."""
    n_users, max_k = items.shape[0], int(ks.max())
    top = items[:, :max_k]
    row, rank = np.nonzero(top >= 0)
    it = top[row, rank]
    n_per = np.diff(cm.indptr)[it]  # categories of each listed item
    cats = cm.indices[np.repeat(cm.indptr[it], n_per) + _ranges(n_per)].astype(np.int64)
    row, rank = np.repeat(row, n_per), np.repeat(rank, n_per)
    # sort by (user, category, rank): the first key of each (user, category) has its first rank
    n_cats = max(cm.shape[1], 1)
    key = np.sort((row.astype(np.int64) * n_cats + cats) * max_k + rank)
    first = key[np.r_[True, key[1:] // max_k != key[:-1] // max_k]] if key.size else key
    new_at = np.bincount(
        (first // max_k // n_cats) * max_k + first % max_k, minlength=n_users * max_k
    ).reshape(n_users, max_k)
    return np.cumsum(new_at, axis=1)[:, ks - 1].astype(np.float64)


def _ranges(n: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(n_i)`` for every ``n_i`` in ``n``."""
    ends = np.cumsum(n)
    return np.arange(ends[-1] if n.size else 0) - np.repeat(ends - n, n)


def _item_counts(train: pl.DataFrame, n_items: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Sorted distinct train (user, item) keys, distinct train users per item, n train users."""
    t = _columns(train, "train", ("user", "item"))
    keys = sorted_unique(t.select(pair_key_expr()).to_series().to_numpy())
    us, it = split_pair_keys(keys)
    if it.size and it.max() >= n_items:
        raise InputError(f"train table names item {int(it.max())}, outside the {n_items} items")
    n_train_users = int(np.count_nonzero(np.diff(us, prepend=-1))) if keys.size else 0
    return keys, np.bincount(it, minlength=n_items), n_train_users


def _rank_mean(values: np.ndarray, valid: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the valid slots of the top K, NaN where there is none."""
    s = np.cumsum(np.where(valid, values, 0.0), axis=1)[:, ks - 1]
    n = np.cumsum(valid, axis=1)[:, ks - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, s / n, np.nan)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts: sum_i (2i - n - 1) x_(i) / (n sum x), i from 1."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, x) / (n * total))


def rec_counts(items: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """How often each catalogue item appears in the users' top ``k`` (int64 ``[n_items]``)."""
    top = items[:, :k]
    return np.bincount(top[top >= 0], minlength=n_items)


def lorenz_curve(recs: pl.DataFrame, n_items: int, k: int) -> pl.DataFrame:
    """Lorenz curve of recommendation counts at ``k``: ``item_share, rec_share`` from (0, 0) to
    (1, 1), items sorted from least to most recommended (n_items + 1 points)."""
    _, items = rec_matrix(recs, k)
    _check_items(items, n_items)
    x = np.sort(rec_counts(items, n_items, k)).astype(np.float64)
    cum = np.r_[0.0, np.cumsum(x)]
    return pl.DataFrame(
        {
            "item_share": np.arange(n_items + 1) / n_items,
            "rec_share": cum / cum[-1] if cum[-1] > 0 else cum,
        }
    )


def coverage_at(items: np.ndarray, n_items: int, ks: list[int]) -> np.ndarray:
    """Catalogue coverage at each K (``[len(ks)]``) from the ``rec_matrix`` items."""
    ks_arr = _check_ks(ks)
    # the first rank at which each item appears in any list: fill ranks backwards
    first = np.full(n_items, np.iinfo(np.int64).max)
    for r in range(min(items.shape[1], int(ks_arr.max())) - 1, -1, -1):
        col = items[:, r]
        first[col[col >= 0]] = r + 1
    return np.count_nonzero(first[None, :] <= ks_arr[:, None], axis=1) / n_items


def gini_at(items: np.ndarray, n_items: int, ks: list[int]) -> np.ndarray:
    """Gini coefficient of the catalogue's recommendation counts at each K (``[len(ks)]``)."""
    ks_arr = _check_ks(ks)
    order = np.argsort(ks_arr)
    out = np.empty(ks_arr.size)
    counts = np.zeros(n_items, dtype=np.int64)
    for j, (_, seg) in zip(order, _segments(items, ks_arr[order], n_items), strict=True):
        counts += np.bincount(seg.indices, minlength=n_items)  # counts grow segment by segment
        out[j] = gini(counts)
    return out


def novelty_per_user(
    items: np.ndarray, train: pl.DataFrame, n_items: int, ks: list[int]
) -> np.ndarray:
    """Mean self-information -log2 p(i) of each user's top K, ``float64 [n_users, len(ks)]``."""
    return _novelty(items, _item_counts(train, n_items), _check_ks(ks))


def new_share_per_user(
    users: np.ndarray, items: np.ndarray, train: pl.DataFrame, n_items: int, ks: list[int]
) -> np.ndarray:
    """Share of each user's top K absent from their train items, ``float64 [n_users, len(ks)]``."""
    return _new_share(users, items, _item_counts(train, n_items), _check_ks(ks))


def _novelty(items: np.ndarray, train_counts: tuple, ks: np.ndarray) -> np.ndarray:
    _, counts, n_train_users = train_counts
    info = np.log2(max(n_train_users, 1)) - np.log2(np.maximum(counts, 1))  # count 0 -> 1
    valid = items >= 0
    return _rank_mean(info[np.where(valid, items, 0)], valid, ks)


def _new_share(users: np.ndarray, items: np.ndarray, train_counts: tuple, ks: np.ndarray):
    keys = train_counts[0]  # sorted pair keys
    valid = items >= 0
    rec_keys = pair_keys(np.asarray(users)[:, None], np.where(valid, items, 0))
    pos = np.searchsorted(keys, rec_keys).clip(max=max(keys.size - 1, 0))
    seen = keys[pos] == rec_keys if keys.size else np.zeros(items.shape, dtype=bool)
    return _rank_mean((~seen).astype(np.float64), valid, ks)


def _check_items(items: np.ndarray, n_items: int) -> None:
    if items.size and items.max() >= n_items:
        raise InputError(
            f"recs table names item {int(items.max())}, outside the catalogue of {n_items} "
            "items; the recs and the item table come from different runs"
        )


def beyond_accuracy(
    recs: pl.DataFrame,
    train: pl.DataFrame,
    n_items: int,
    ks: list[int],
    *,
    item_vectors: np.ndarray | None = None,
    reference_vectors: np.ndarray | None = None,
    item_categories: pl.DataFrame | np.ndarray | None = None,
    users: np.ndarray | None = None,
) -> tuple[pl.DataFrame, dict[tuple[str, int], np.ndarray]]:
    """Beyond-accuracy measures at each K.

    Returns a tidy frame (metric:str, k:int64, value:float64) and ``{(metric, k): float64
    [n_users]}`` per-user values of ild, ild_reference, category_diversity, novelty and new_share
    (rows follow ``users``, default the sorted users of ``recs``: pass the truth users to align
    them with ``metrics.per_user_metrics``). ILD, ILD-reference and category diversity are
    computed only when their input is given.
    """
    ks_arr = _check_ks(ks)
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise InputError(f"n_items must be a positive integer, got {n_items!r}")
    users, items = rec_matrix(recs, int(ks_arr.max()), users)
    _check_items(items, n_items)
    rows: list[tuple[str, int, float]] = []
    per_user: dict[tuple[str, int], np.ndarray] = {}

    def add(metric: str, values: np.ndarray, skip_k1: bool = False) -> None:
        for j, k in enumerate(ks_arr.tolist()):
            if skip_k1 and k < 2:
                continue
            col = values[:, j]
            per_user[(metric, k)] = col
            mean = float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")
            rows.append((metric, k, mean))

    for k, v in zip(ks_arr.tolist(), coverage_at(items, n_items, ks_arr.tolist()), strict=True):
        rows.append(("coverage", k, float(v)))

    spaces = (
        ("ild", "item_vectors", item_vectors),
        ("ild_reference", "reference_vectors", reference_vectors),
    )
    for metric, name, vecs in spaces:
        if vecs is not None:
            if np.ndim(vecs) != 2 or np.shape(vecs)[0] != n_items:
                raise InputError(f"{name} must be [{n_items} items, dim], got {np.shape(vecs)}")
            add(metric, ild_per_user(items, vecs, ks_arr.tolist()), skip_k1=True)
    if item_categories is not None:
        add(
            "category_diversity",
            category_diversity_per_user(items, item_categories, n_items, ks_arr.tolist()),
        )

    train_counts = _item_counts(train, n_items)
    add("novelty", _novelty(items, train_counts, ks_arr))
    add("new_share", _new_share(users, items, train_counts, ks_arr))
    for k, v in zip(ks_arr.tolist(), gini_at(items, n_items, ks_arr.tolist()), strict=True):
        rows.append(("gini", k, float(v)))

    order = {m: i for i, m in enumerate(BEYOND_METRICS)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    frame = pl.DataFrame(
        rows, schema={"metric": pl.String, "k": pl.Int64, "value": pl.Float64}, orient="row"
    )
    return frame, per_user
