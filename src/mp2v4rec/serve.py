"""Serving artefacts from a method's embeddings, and the playlist view of quality.

``results/{dataset}/serve/{method}/`` holds what a serving stack loads (see the README's
"Serving" section):

- ``item_neighbours.parquet``: every item's top-N most similar items (self excluded) by the
  method's own score (cosine or dot), ties by lower item index;
- ``user_recs.parquet``: top-K for every user with a train history, train items masked; users
  with an all-zero vector get the popularity list (``fallback = true``);
- ``items.w2v.bin`` / ``users.w2v.bin``: the vectors in word2vec binary format, keyed by raw id
  (gensim ``KeyedVectors.load_word2vec_format(path, binary=True)``), and
  ``item_vectors.parquet`` / ``user_vectors.parquet`` (index, raw_id, vector);
- ``serve.json``: what was built and how; ``ann.json`` and ``ann.faiss`` for catalogues above
  ``serve.exact_max_items`` (a faiss IVF-Flat index and its recall against exact search).

Exact search is blocked matrix products, memory bounded per block: ``topk.top_k`` (a numba
selection kernel) for the neighbour lists, ``recommend.recommend_top_k`` for the users' lists
(so they equal the recommend stage's). Both tables are written block by block.

This module imports only numpy and polars at load time, so the ``mp2v4rec`` command starts
fast; scipy, numba, faiss, matplotlib and the evaluation modules are imported where needed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mp2v4rec.io import InputError

log = logging.getLogger(__name__)

SCORES = ("cosine", "dot")
FILES = {
    "neighbours": "item_neighbours.parquet",
    "user_recs": "user_recs.parquet",
    "item_vectors": "item_vectors.parquet",
    "user_vectors": "user_vectors.parquet",
    "item_w2v": "items.w2v.bin",
    "user_w2v": "users.w2v.bin",
    "meta": "serve.json",
    "ann": "ann.json",
    "index": "ann.faiss",
}
NEIGHBOUR_SCHEMA = {
    "item": pl.Int32,
    "raw_id": pl.Int64,
    "rank": pl.Int16,
    "neighbour": pl.Int32,
    "neighbour_raw_id": pl.Int64,
    "score": pl.Float32,
}
LIST_SCHEMA = {"user": pl.Int32, "rank": pl.Int16, "item": pl.Int32, "score": pl.Float32}
USER_RECS_SCHEMA = {
    "user": pl.Int32,
    "raw_id": pl.Int64,
    "rank": pl.Int16,
    "item": pl.Int32,
    "item_raw_id": pl.Int64,
    "score": pl.Float32,
    "fallback": pl.Boolean,
}


# --- vectors ---------------------------------------------------------------------------------


def _check_score(score: str) -> str:
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}; choose one of {list(SCORES)}")
    return score


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return x / norms


def in_space(vectors: np.ndarray, score: str) -> np.ndarray:
    """Vectors whose dot product is the method's score: normalised for cosine, as they are
    for dot."""
    return normalise(vectors) if _check_score(score) == "cosine" else np.asarray(vectors, "f4")


def nonzero_rows(vectors: np.ndarray) -> np.ndarray:
    """Indices of the rows with any non-zero value (zero rows: nodes never trained)."""
    return np.flatnonzero(np.any(np.asarray(vectors) != 0, axis=1))


# --- exact search ----------------------------------------------------------------------------


def exact_search(
    queries: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    score: str,
    *,
    exclude: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` items for every row of ``queries`` by the method's score, best first,
    equal scores by lower item index; ``exclude[i]`` (an item index, or -1) is never returned
    for query ``i``; ``candidates`` (item indices) restricts the search. Blocked matrix
    products, memory bounded per block (``topk.top_k``). Missing slots: item -1, score -inf."""
    from mp2v4rec.topk import top_k

    n_items = item_vectors.shape[0]
    cols = np.arange(n_items) if candidates is None else np.unique(np.asarray(candidates))
    ex = None
    if exclude is not None:
        col_of = np.full(n_items + 1, -1, dtype=np.int64)  # item -1 maps to column -1
        col_of[cols] = np.arange(cols.size)
        ex = col_of[np.asarray(exclude, dtype=np.int64)]
    Q = in_space(queries, score)
    idx, vals = top_k(Q, in_space(item_vectors[cols], score), int(min(k, cols.size)), exclude=ex)
    items = np.where(idx >= 0, cols[np.maximum(idx, 0)], -1).astype(np.int32)
    return items, vals


def exact_neighbours(
    item_vectors: np.ndarray,
    n: int,
    score: str,
    *,
    items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``n`` neighbours of every item with a vector (``items``, default: the non-zero rows),
    among the items with a vector, self excluded. Returns ``(items, neighbours, scores)``;
    ``neighbours`` is -1 (score -inf) where fewer than ``n`` other items exist."""
    present = nonzero_rows(item_vectors)
    items = present if items is None else np.asarray(items, dtype=np.int64)
    n = int(min(n, max(present.size - 1, 0)))
    idx, vals = exact_search(
        item_vectors[items], item_vectors, n, score, exclude=items, candidates=present
    )
    return items, idx, vals


# --- approximate search (faiss IVF-Flat) -----------------------------------------------------


def _faiss(threads: int | None = None):
    import faiss

    if threads:
        faiss.omp_set_num_threads(int(threads))
    return faiss


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4 sqrt(n), at most n / 39 (faiss wants >= 39
    training points per centroid)."""
    return int(max(1, min(round(4 * np.sqrt(n)), n // 39)))


def build_ann(
    item_vectors: np.ndarray,
    score: str,
    *,
    nlist: int | None = None,
    train_points: int = 64,
    seed: int = 0,
    threads: int | None = None,
):
    """A faiss IVF-Flat inner-product index over the items with a vector (ids = item indices;
    normalised vectors for cosine). Returns ``(index, info)``."""
    faiss = _faiss(threads)
    present = nonzero_rows(item_vectors)
    if present.size == 0:
        raise InputError("every item vector is zero: there is nothing to index")
    X = np.ascontiguousarray(in_space(item_vectors[present], score))
    nlist = default_nlist(present.size) if nlist is None else int(min(nlist, present.size))
    started = time.perf_counter()
    quantiser = faiss.IndexFlatIP(X.shape[1])
    index = faiss.IndexIVFFlat(quantiser, X.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = int(seed)
    n_train = min(present.size, int(train_points) * nlist)
    sample = np.sort(np.random.default_rng(seed).choice(present.size, n_train, replace=False))
    index.train(X[sample])
    index.add_with_ids(X, present.astype(np.int64))
    info = {
        "library": "faiss",
        "faiss_version": faiss.__version__,
        "index": "IVFFlat",
        "metric": "inner_product",
        "score": score,
        "normalised": score == "cosine",
        "n_indexed": int(present.size),
        "dim": int(X.shape[1]),
        "nlist": int(nlist),
        "train_points": int(n_train),
        "seed": int(seed),
        "build_seconds": time.perf_counter() - started,
    }
    return index, info


def ann_search(
    index, queries: np.ndarray, k: int, nprobe: int, score: str
) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` with ``nprobe`` lists; queries normalised for cosine. Rows are sorted by
    (score descending, item ascending); missing slots are item -1, score -inf."""
    index.nprobe = int(nprobe)
    Q = np.ascontiguousarray(in_space(queries, score))
    D, I = index.search(Q, int(k))  # noqa: E741
    D = np.where(I < 0, -np.inf, D).astype(np.float32)
    order = np.lexsort((np.where(I < 0, np.iinfo(np.int64).max, I), -D), axis=1)
    return np.take_along_axis(I, order, axis=1), np.take_along_axis(D, order, axis=1)


def _drop_self(idx: np.ndarray, vals: np.ndarray, items: np.ndarray, n: int):
    """Remove each row's own item (or, when absent, the last slot) and keep ``n`` columns."""
    own = idx == items[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    m = idx.shape[1] - 1
    out_i = idx[keep].reshape(-1, m)[:, :n].astype(np.int32)
    out_v = vals[keep].reshape(-1, m)[:, :n]
    return out_i, out_v


def ann_neighbours(
    index,
    item_vectors: np.ndarray,
    items: np.ndarray,
    n: int,
    nprobe: int,
    score: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-``n`` neighbours of ``items`` (self excluded) through the index."""
    items = np.asarray(items, dtype=np.int64)
    idx, vals = ann_search(index, item_vectors[items], n + 1, nprobe, score)
    return _drop_self(idx, vals, items, n)


def iter_neighbours(
    item_vectors: np.ndarray,
    n: int,
    score: str,
    *,
    index=None,
    nprobe: int = 1,
    block: int = 1 << 16,
):
    """``(items, neighbours, scores)`` for blocks of the items with a vector, in item order:
    exact search, or through ``index`` (so the lists never sit whole in memory)."""
    present = nonzero_rows(item_vectors)
    n = int(min(n, max(present.size - 1, 0)))
    for start in range(0, present.size, block):
        rows = present[start : start + block]
        if index is None:
            yield exact_neighbours(item_vectors, n, score, items=rows)
        else:
            yield (rows, *ann_neighbours(index, item_vectors, rows, n, nprobe, score))
        log.info("neighbours: %d/%d items", start + rows.size, present.size)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of |found ∩ truth| / |truth| (padding -1 ignored)."""
    total = []
    for f, t in zip(found, truth, strict=True):
        t = t[t >= 0]
        if t.size:
            total.append(np.intersect1d(f[f >= 0], t).size / t.size)
    return float(np.mean(total)) if total else float("nan")


def measure_ann(
    index,
    item_vectors: np.ndarray,
    score: str,
    *,
    n: int = 50,
    queries: int = 1000,
    target_recall: float = 0.95,
    nprobe: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Choose ``nprobe`` and measure the index against exact search.

    Without a fixed ``nprobe``, the smallest power of two whose recall@``n`` on a calibration
    sample of ``queries`` items (seed ``seed``) reaches ``target_recall`` is chosen (at most
    ``nlist``). The reported recall and queries per second (the best of three batches of
    ``queries``, after a warm-up) are measured on a second, disjoint seeded sample, so the
    choice is not scored on the queries it was tuned on.
    """
    present = nonzero_rows(item_vectors)
    n = int(min(n, present.size - 1))
    rng = np.random.default_rng(seed)
    m = min(int(queries), present.size // 2)
    drawn = rng.choice(present, size=2 * m, replace=False)
    calib, test = drawn[:m], drawn[m:]

    def truth_of(q):
        return exact_neighbours(item_vectors, n, score, items=q)[1]

    nlist = int(index.nlist)
    if nprobe is None:
        truth = truth_of(calib)
        nprobe = 1
        while True:
            found = ann_search(index, item_vectors[calib], n + 1, nprobe, score)
            rec = recall_at(_drop_self(*found, calib, n)[0], truth)
            log.info("calibration: nprobe %d recall@%d %.4f", nprobe, n, rec)
            if rec >= target_recall or nprobe >= nlist:
                break
            nprobe = min(2 * nprobe, nlist)
    truth = truth_of(test)
    ann_search(index, item_vectors[test[: min(100, m)]], n + 1, nprobe, score)  # warm-up
    seconds = np.inf
    for _ in range(3):  # the best of three batches: other jobs may share the cores
        started = time.perf_counter()
        found = ann_search(index, item_vectors[test], n + 1, nprobe, score)
        seconds = min(seconds, time.perf_counter() - started)
    rec = recall_at(_drop_self(*found, test, n)[0], truth)
    return {
        "nprobe": int(nprobe),
        "target_recall": float(target_recall),
        "n": n,
        "queries": int(m),
        "query_seed": int(seed),
        f"recall_at_{n}": rec,
        "recall": rec,
        "queries_per_second": m / seconds if seconds > 0 else float("inf"),
    }


def write_index(index, path: str | os.PathLike) -> None:
    faiss = _faiss()
    faiss.write_index(index, str(path))


def read_index(path: str | os.PathLike):
    return _faiss().read_index(str(path))


# --- user recommendations --------------------------------------------------------------------


def _ann_user_lists(index, user_vectors, users, seen, k, nprobe, score, n_items):
    """Top-``k`` unseen items per user through the index: each user asks for ``k`` plus its
    seen count (rounded up to a power of two, so users are searched in a few batches)."""
    out_i = np.full((users.size, k), -1, np.int32)
    out_v = np.full((users.size, k), -np.inf, np.float32)
    n_seen = np.diff(seen.indptr)[users]
    want = np.minimum(2 ** np.ceil(np.log2(k + n_seen + 1)).astype(np.int64), n_items)
    for kk in np.unique(want):
        rows = np.flatnonzero(want == kk)
        idx, vals = ann_search(index, user_vectors[users[rows]], int(kk), max(nprobe, 1), score)
        for r, i_row, v_row in zip(rows, idx, vals, strict=True):
            u = users[r]
            mask = np.isin(i_row, seen.indices[seen.indptr[u] : seen.indptr[u + 1]])
            keep = np.flatnonzero(~mask & (i_row >= 0))[:k]
            out_i[r, : keep.size], out_v[r, : keep.size] = i_row[keep], v_row[keep]
    return out_i, out_v


def iter_user_recommendations(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    score: str,
    train: pl.DataFrame,
    k: int,
    *,
    index=None,
    nprobe: int = 1,
    block: int = 1 << 16,
):
    """``user_recommendations`` for blocks of users in user order (one frame per block)."""
    from mp2v4rec.recommend import (
        Fallback,
        popularity_fallback,
        recommend_top_k,
        recs_frame,
        seen_matrix,
    )

    n_users, n_items = user_vectors.shape[0], item_vectors.shape[0]
    k = int(min(k, n_items))
    users = np.unique(train["user"].to_numpy()).astype(np.int64)
    seen = seen_matrix(train, n_users, n_items)
    # zero-vector users (no token in the corpus) get the popularity list, as in the evaluation
    fallback = popularity_fallback(train, n_users, n_items)
    fallback = Fallback(users=~np.any(user_vectors != 0, axis=1), scores=fallback.scores)
    n_fallback = 0
    for start in range(0, users.size, block):
        chunk = users[start : start + block]
        by_model = chunk if index is None else chunk[~fallback.users[chunk]]
        by_popularity = np.setdiff1d(chunk, by_model, assume_unique=True)
        frames = []
        if by_model.size:
            if index is None:
                items, scores = recommend_top_k(
                    user_vectors,
                    item_vectors,
                    by_model,
                    k=k,
                    score=score,
                    seen=seen,
                    fallback=fallback,
                )
            else:
                items, scores = _ann_user_lists(
                    index, user_vectors, by_model, seen, k, nprobe, score, n_items
                )
            frames.append(recs_frame(by_model, items, scores))
        if by_popularity.size:
            items, scores = recommend_top_k(
                user_vectors,
                item_vectors,
                by_popularity,
                k=k,
                score=score,
                seen=seen,
                fallback=fallback,
            )
            frames.append(recs_frame(by_popularity, items, scores))
        n_fallback += int(fallback.users[chunk].sum())
        log.info(
            "user lists: %d/%d users (%d zero-vector users on popularity so far)",
            start + chunk.size,
            users.size,
            n_fallback,
        )
        lists = pl.concat(frames).sort("user", "rank")
        flagged = pl.Series(np.flatnonzero(fallback.users)).implode()
        yield lists.with_columns(fallback=pl.col("user").is_in(flagged))


def user_recommendations(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    score: str,
    train: pl.DataFrame,
    k: int,
    *,
    index=None,
    nprobe: int = 1,
) -> pl.DataFrame:
    """Top-``k`` for every user with a train history, train items masked (dense indices).

    Users whose vector is all zeros get the popularity list (``fallback``; score = the item's
    train count, ties by lower index). With ``index`` the lists come from the ANN index,
    otherwise from exact blocked search. Columns: user, rank, item, score, fallback.
    """
    frames = iter_user_recommendations(
        user_vectors, item_vectors, score, train, k, index=index, nprobe=nprobe
    )
    empty = pl.DataFrame(schema={**LIST_SCHEMA, "fallback": pl.Boolean})
    return pl.concat([empty, *frames])


class _ParquetParts:
    """A parquet file written one frame at a time (row groups of at most 64 Ki rows), so a
    table of hundreds of millions of rows never sits whole in memory."""

    def __init__(self, path: Path, schema: dict):
        self.path, self.schema, self.writer, self.rows = path, schema, None, 0

    def write(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = frame.select(list(self.schema)).cast(self.schema).to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table, row_group_size=1 << 16)
        self.rows += frame.height

    def close(self) -> None:
        if self.writer is None:
            pl.DataFrame(schema=self.schema).write_parquet(self.path)
        else:
            self.writer.close()


# --- export ----------------------------------------------------------------------------------


def write_word2vec(path: str | os.PathLike, keys: list[str], vectors: np.ndarray) -> None:
    """The word2vec binary format: a ``"count dim"`` header line, then per vector its key, a
    space and ``dim`` little-endian float32 values (what gensim's
    ``KeyedVectors.load_word2vec_format(path, binary=True)`` reads). Keys may not contain
    whitespace."""
    from mp2v4rec.io import atomic_path

    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    if len(keys) != vectors.shape[0]:
        raise InputError(f"{len(keys)} keys for {vectors.shape[0]} vectors")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode())
        for key, row in zip(keys, vectors, strict=True):
            f.write(key.encode() + b" " + row.tobytes())


def vectors_frame(kind: str, raw_ids: np.ndarray, vectors: np.ndarray) -> pl.DataFrame:
    """``{kind}:int32, raw_id:int64, vector: array[float32, dim]`` for every row."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pl.DataFrame(
        {
            kind: np.arange(vectors.shape[0], dtype=np.int32),
            "raw_id": np.asarray(raw_ids, dtype=np.int64),
            "vector": vectors,
        },
        schema={
            kind: pl.Int32,
            "raw_id": pl.Int64,
            "vector": pl.Array(pl.Float32, vectors.shape[1]),
        },
    )


def neighbours_frame(
    items: np.ndarray, neighbours: np.ndarray, scores: np.ndarray, raw_ids: np.ndarray
) -> pl.DataFrame:
    """Long table (item, raw_id, rank, neighbour, neighbour_raw_id, score); padding dropped."""
    n = neighbours.shape[1]
    keep = neighbours.ravel() >= 0
    flat = neighbours.ravel()[keep]
    item_col = np.repeat(np.asarray(items, dtype=np.int64), n)[keep]
    raw_ids = np.asarray(raw_ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "item": item_col.astype(np.int32),
            "raw_id": raw_ids[item_col],
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int16), len(items))[keep],
            "neighbour": flat.astype(np.int32),
            "neighbour_raw_id": raw_ids[flat],
            "score": scores.ravel()[keep].astype(np.float32),
        },
        schema=NEIGHBOUR_SCHEMA,
    )


def with_raw_ids(recs: pl.DataFrame, user_raw: np.ndarray, item_raw: np.ndarray) -> pl.DataFrame:
    """User recommendations with the raw user and item ids beside the indices."""
    return recs.with_columns(
        raw_id=pl.Series(np.asarray(user_raw, np.int64)[recs["user"].to_numpy()]),
        item_raw_id=pl.Series(np.asarray(item_raw, np.int64)[recs["item"].to_numpy()]),
    ).select(list(USER_RECS_SCHEMA))


def file_digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _staging(outdir: Path):
    """A temporary folder beside ``outdir`` that replaces it when the block succeeds (a failed
    job leaves nothing), with the usual permissions."""
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700
    try:
        yield tmp
        if outdir.exists():
            shutil.rmtree(outdir)
        os.replace(tmp, outdir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _ann_index(tmp: Path, item_vectors, score, neighbours, ann: Mapping, threads: int):
    """Build, measure and write the IVF index; returns it, its nprobe and its summary."""
    index, info = build_ann(
        item_vectors,
        score,
        nlist=ann.get("nlist"),
        train_points=ann.get("train_points", 64),
        seed=ann.get("seed", 0),
        threads=threads,
    )
    log.info("ann index: %s", info)
    info |= measure_ann(
        index,
        item_vectors,
        score,
        n=neighbours,
        queries=ann.get("queries", 1000),
        target_recall=ann.get("target_recall", 0.95),
        nprobe=ann.get("nprobe"),
        seed=ann.get("seed", 0),
    )
    write_index(index, tmp / FILES["index"])
    info["index_bytes"] = int((tmp / FILES["index"]).stat().st_size)
    info["threads"] = int(threads)
    (tmp / FILES["ann"]).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log.info("ann measured: %s", info)
    return index, info["nprobe"], {key: info[key] for key in ("nlist", "nprobe", "recall", "n")}


def _write_tables(tmp: Path, neighbour_lists, user_lists, user_raw, item_raw) -> dict:
    """Write the neighbour and user-list tables block by block; returns the users counts."""
    neighbour_file = _ParquetParts(tmp / FILES["neighbours"], NEIGHBOUR_SCHEMA)
    for rows, idx, vals in neighbour_lists:
        neighbour_file.write(neighbours_frame(rows, idx, vals, item_raw))
    neighbour_file.close()
    recs_file = _ParquetParts(tmp / FILES["user_recs"], USER_RECS_SCHEMA)
    served = fallback = 0
    for recs in user_lists:
        recs_file.write(with_raw_ids(recs, user_raw, item_raw))
        served += recs["user"].n_unique()
        fallback += recs.filter(pl.col("fallback"))["user"].n_unique()
    recs_file.close()
    return {"users_served": int(served), "users_fallback": int(fallback)}


def _write_vectors(tmp: Path, user_vectors, item_vectors, user_raw, item_raw) -> None:
    vectors_frame("item", item_raw, item_vectors).write_parquet(tmp / FILES["item_vectors"])
    vectors_frame("user", user_raw, user_vectors).write_parquet(tmp / FILES["user_vectors"])
    for name, raw, vectors in (
        ("item_w2v", item_raw, item_vectors),
        ("user_w2v", user_raw, user_vectors),
    ):
        rows = nonzero_rows(vectors)
        write_word2vec(tmp / FILES[name], [str(r) for r in raw[rows]], vectors[rows])


def _serve_vectors(
    tmp, model, train, meta, *, neighbours, k, exact_max_items, ann, threads, item_space
):
    """An embedding model's artefacts: neighbours (in the item table ``item_space`` names, for
    exact search) and user lists (exact or through an ANN index), the vectors in parquet and
    word2vec formats."""
    _check_score(model.score)
    item_vectors = model.item_vectors
    present = nonzero_rows(item_vectors)
    mode = "exact" if present.size <= exact_max_items else "ann"
    space, recall = item_space
    if mode == "ann" and space != "own":  # the index holds the scoring table only
        space = "context"
    similar = model if space in ("own", "context") else model.item_space(space)
    meta["item_space"] = {"table": space, "valid_seeded_recall": recall}
    meta |= {"items_with_vectors": int(present.size), "dim": int(item_vectors.shape[1])}
    meta |= {"search": mode, "vectors": True}
    index, nprobe = None, 1
    if mode == "ann":
        index, nprobe, meta["ann"] = _ann_index(
            tmp, item_vectors, model.score, neighbours, dict(ann or {}), threads
        )
    neighbour_lists = iter_neighbours(
        similar.item_vectors, neighbours, similar.score, index=index, nprobe=nprobe
    )
    user_lists = iter_user_recommendations(
        model.user_vectors, item_vectors, model.score, train, k, index=index, nprobe=nprobe
    )
    meta |= _write_tables(tmp, neighbour_lists, user_lists, meta["user_raw"], meta["item_raw"])
    _write_vectors(tmp, model.user_vectors, item_vectors, meta["user_raw"], meta["item_raw"])


def _serve_item_item(tmp, model, train, meta, *, neighbours, k, **_):
    """An item-item model's artefacts: its weights' rows as neighbour lists, the users' lists
    by ``history @ W`` (exact: the weights are the index); no vectors to export."""
    from mp2v4rec.models import warm_items
    from mp2v4rec.recommend import rank_users, recs_frame, seen_matrix

    n_users, n_items = meta["n_users"], meta["n_items"]
    warm = np.flatnonzero(warm_items(train, n_items))
    n = int(min(neighbours, max(warm.size - 1, 0)))
    meta |= {"items_with_vectors": int(warm.size), "search": "exact", "vectors": False}

    def neighbour_lists(block=1 << 12):
        for start in range(0, warm.size, block):
            rows = warm[start : start + block]
            yield (rows, *model.neighbours(rows, n))

    def user_lists(block=1 << 14):
        seen = seen_matrix(train, n_users, n_items)
        scorer = model.scorer(train, n_users, n_items)
        users = np.unique(train["user"].to_numpy()).astype(np.int64)
        for start in range(0, users.size, block):
            chunk = users[start : start + block]
            ((items, scores),) = rank_users(scorer, chunk, n_users, n_items, k=k, seen=seen)
            yield recs_frame(chunk, items, scores).with_columns(fallback=pl.lit(False))

    meta |= _write_tables(tmp, neighbour_lists(), user_lists(), meta["user_raw"], meta["item_raw"])


def build_serve(
    outdir: str | os.PathLike,
    *,
    method: str,
    users: pl.DataFrame,
    items: pl.DataFrame,
    train: pl.DataFrame,
    model=None,
    user_vectors: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    score: str | None = None,
    neighbours: int = 50,
    k: int = 100,
    exact_max_items: int = 200_000,
    ann: Mapping[str, Any] | None = None,
    threads: int = 1,
    item_space: tuple[str, dict] = ("own", {}),
) -> dict[str, Any]:
    """Write every serving artefact of one method into ``outdir`` (built in a temporary folder
    beside it and renamed, so a failed job leaves nothing). ``model``: a
    :mod:`mp2v4rec.models` model (or ``user_vectors``, ``item_vectors`` and ``score``);
    ``item_space``: the item table the neighbour lists read and its validation figures
    (``protocols.choose_item_space``). Returns the ``serve.json`` record."""
    from mp2v4rec.models import Embeddings

    model = model or Embeddings(user_vectors, item_vectors, score)
    n_users = model.user_vectors.shape[0] if model.model == "embeddings" else users.height
    n_items = model.item_vectors.shape[0] if model.model == "embeddings" else model.n_items
    if users.height != n_users or items.height != n_items:
        raise InputError(
            f"the model holds {n_users} users x {n_items} items but users.parquet has "
            f"{users.height} rows and items.parquet {items.height}: they come from different "
            "preprocess runs; re-run the workflow"
        )
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "method": method,
        "model": model.model,
        "score": getattr(model, "score", "item_item"),
        "n_items": int(n_items),
        "n_users": int(n_users),
        "neighbours": int(neighbours),
        "k": int(min(k, n_items)),
        "exact_max_items": int(exact_max_items),
        "user_raw": users.sort("user")["raw_id"].to_numpy(),
        "item_raw": items.sort("item")["raw_id"].to_numpy(),
    }
    write = _serve_vectors if model.model == "embeddings" else _serve_item_item
    with _staging(Path(outdir)) as tmp:
        write(
            tmp,
            model,
            train,
            meta,
            neighbours=neighbours,
            k=meta["k"],
            exact_max_items=exact_max_items,
            ann=ann,
            threads=threads,
            item_space=item_space,
        )
        del meta["user_raw"], meta["item_raw"]
        present = [key for key, name in FILES.items() if (tmp / name).exists()]
        meta["files"] = {key: FILES[key] for key in present}
        # the index is a bare binary blob: its digest lets a reader tell damage from data
        meta["sha256"] = {key: file_digest(tmp / FILES[key]) for key in present if key == "index"}
        meta["seconds"] = time.perf_counter() - started
        (tmp / FILES["meta"]).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("served %s in %.1f s", method, meta["seconds"])
    return meta


# --- playlists -------------------------------------------------------------------------------


def seed_query(seed_vectors: np.ndarray, score: str) -> np.ndarray:
    """The query of a playlist: the mean of its seeds' vectors; for cosine models the seeds are
    normalised first and the mean is normalised too (zero when every seed vector is zero)."""
    v = in_space(np.atleast_2d(seed_vectors), score)
    q = v.mean(axis=0, keepdims=True)
    return (normalise(q) if score == "cosine" else q)[0]


def mmr(
    relevance: np.ndarray,
    vectors: np.ndarray,
    n: int,
    *,
    diversity: float = 0.0,
    categories: np.ndarray | None = None,
    max_per_category: int | None = None,
) -> np.ndarray:
    """Maximal marginal relevance over candidates (rows, given in any order): each step picks
    argmax λ·relevance(c) − (1 − λ)·max_{s picked} sim(c, s), λ = 1 − diversity, sim = dot of
    ``vectors`` (the method's score when they are in its space); equal values go to the earlier
    row. With ``max_per_category`` a candidate whose category (>= 0; -1 = unknown, never capped)
    already holds that many picks is skipped. Returns the picked row positions in order."""
    if not 0.0 <= diversity <= 1.0:
        raise InputError(f"diversity must be between 0 and 1, got {diversity}")
    lam = 1.0 - float(diversity)
    relevance = np.asarray(relevance, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    m = relevance.size
    max_sim = np.zeros(m)
    alive = np.ones(m, dtype=bool)
    used: dict[int, int] = {}
    picked: list[int] = []
    while len(picked) < n and alive.any():
        value = np.where(alive, lam * relevance - (1 - lam) * max_sim, -np.inf)
        best = int(np.argmax(value))
        alive[best] = False
        cat = -1 if categories is None else int(categories[best])
        if max_per_category is not None and cat >= 0:
            if used.get(cat, 0) >= max_per_category:
                continue
            used[cat] = used.get(cat, 0) + 1
        picked.append(best)
        if lam < 1.0:
            sim = vectors @ vectors[best]
            max_sim = sim if len(picked) == 1 else np.maximum(max_sim, sim)
    return np.asarray(picked, dtype=np.int64)


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    """Mean of the dot products over distinct pairs of rows."""
    v = np.asarray(vectors, dtype=np.float64)
    m = v.shape[0]
    if m < 2:
        return float("nan")
    s = v @ v.T
    return float((s.sum() - np.trace(s)) / (m * (m - 1)))
