"""The job bodies of the workflow's stages: input paths and params in, output files out.

One function per rule that does more than one library call; the rule's script maps Snakemake's
names onto it, and the benchmarks call the same function with their own paths, so a stage's work
is written once. Each returns a few counts for the caller to log or print.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import polars as pl

from mp2v4rec.baselines.userknn import userknn_scorer
from mp2v4rec.config import shared_params
from mp2v4rec.embed import (
    fit_skipgram_method,
    init_vectors,
    load_embeddings,
    save_embeddings,
)
from mp2v4rec.evaluation import default_protocol, evaluate_run, for_users
from mp2v4rec.graph import build_graph, load_graph, save_graph
from mp2v4rec.io import count_rows, write_parquet, write_tsv
from mp2v4rec.recommend import Scorer, embedding_scorer, merge_recs, split_recs, user_block
from mp2v4rec.walks import write_walks

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def _read(path: PathLike) -> pl.DataFrame:
    return pl.read_parquet(path)


def graph_job(
    *,
    train: PathLike,
    social: PathLike,
    user_table: PathLike,
    item_table: PathLike,
    output: PathLike,
    symmetric_social: bool,
) -> dict:
    """Rule build_graph: the CSR graph of the train interactions and friendships."""
    graph = build_graph(
        _read(train),
        _read(social),
        count_rows(user_table),
        count_rows(item_table),
        symmetric_social=symmetric_social,
    )
    save_graph(graph, output)
    edges = {k.removesuffix("_indices"): int(v.size) for k, v in graph.items() if "_indices" in k}
    log.info("edges per relation: %s", edges)
    return edges


def walk_job(
    *, graph: PathLike, output: PathLike, walk: Mapping, shard: int, n_shards: int, threads: int
):
    """Rule walk_shard: one shard of a walk set, as LineSentence text."""
    stats = write_walks(
        load_graph(graph), output, **walk, shard=shard, n_shards=n_shards, threads=threads
    )
    log.info("done: %s", stats)
    return stats


def skipgram_job(
    *,
    corpus: PathLike,
    train: PathLike,
    valid: PathLike,
    user_table: PathLike,
    item_table: PathLike,
    embeddings: PathLike,
    curve: PathLike,
    kind: str,
    params: Mapping,
    validation: Mapping,
    threads: int,
    init: PathLike | None = None,
) -> pl.DataFrame:
    """Rules train_mp2v and train_w2v: skip-gram on walks (users from their own tokens) or on
    watch sequences (users = mean of their items), best validation epoch kept; ``params``
    (:func:`mp2v4rec.config.train_settings`) picks gensim or the shared-table trainer."""
    params = dict(params)
    score, trainer = params.pop("score"), params.pop("trainer", "gensim")
    start = None
    if params.pop("init", "random") == "w2v":
        start = init_vectors(*load_embeddings(init)[:2])
        log.info("starting from W2V vectors: %d tokens", len(start))
    data = dict(
        train=_read(train),
        valid=_read(valid) if validation["keep_best_epoch"] else None,
        n_users=count_rows(user_table),
        n_items=count_rows(item_table),
        validation_k=validation["k"],
        workers=threads,
    )
    if trainer == "shared":
        from mp2v4rec.shared_skipgram import fit_shared_method

        users, items, epochs = fit_shared_method(
            corpus, **data, params=shared_params(params), score=score
        )
        saved_score = score
    else:
        users, items, saved_score, epochs = fit_skipgram_method(
            corpus,
            user_vectors_from="tokens" if kind == "mp2v" else "items",
            **data,
            params=params,
            score=score,
            init=start,
        )
    log.info("users with a vector: %d/%d", int((users != 0).any(axis=1).sum()), len(users))
    log.info("items with a vector: %d/%d", int((items != 0).any(axis=1).sum()), len(items))
    save_embeddings(embeddings, users, items, saved_score)
    write_tsv(epochs, curve)
    return epochs


def _recommend(
    scorer: Scorer,
    *,
    evaluated: PathLike,
    train: pl.DataFrame,
    held_out: Mapping[str, PathLike],
    n_users: int,
    n_items: int,
    output: PathLike,
    k: int,
    mask_seen: bool,
    chunk_size: int,
    block: int,
    n_blocks: int,
    splits: Sequence[str],
) -> dict:
    users = user_block(_read(evaluated)["user"].to_numpy(), block, n_blocks)
    recs = split_recs(
        scorer,
        users,
        train,
        {split: _read(path) for split, path in held_out.items()},
        n_users,
        n_items,
        splits=splits,
        k=k,
        mask_seen=mask_seen,
        chunk_size=chunk_size,
    )
    write_parquet(recs, output)
    log.info("block %d/%d: %d users, %d recommendations", block, n_blocks, users.size, recs.height)
    return {"users": int(users.size), "rows": recs.height}


def recommend_job(*, embeddings: PathLike, train: PathLike, **job) -> dict:
    """Rule recommend: one block of the evaluated users, one list per split (train items and the
    other splits' positives masked; the popularity fallback for users without train positives).
    ``job``: evaluated, held_out, output, k, mask_seen, chunk_size, block, n_blocks, splits."""
    user_vectors, item_vectors, score = load_embeddings(embeddings)
    scorer = embedding_scorer(user_vectors, item_vectors, score=score)
    log.info("scoring by %s", score)
    n_users, n_items = user_vectors.shape[0], item_vectors.shape[0]
    return _recommend(scorer, train=_read(train), n_users=n_users, n_items=n_items, **job)


def recommend_userknn_job(
    *,
    train: PathLike,
    user_table: PathLike,
    item_table: PathLike,
    k_neighbors: int,
    weighted: bool,
    **job,
) -> dict:
    """Rule recommend_userknn: as :func:`recommend_job`, scored by user-user neighbours."""
    n_users, n_items = count_rows(user_table), count_rows(item_table)
    frame = _read(train)
    scorer = userknn_scorer(frame, n_users, n_items, k_neighbors=k_neighbors, weighted=weighted)
    return _recommend(scorer, train=frame, n_users=n_users, n_items=n_items, **job)


def merge_recs_job(*, blocks: Sequence[PathLike], evaluated: PathLike, output: PathLike) -> dict:
    """Rule merge_recs: the user blocks' lists as one table (overlapping or stale blocks fail)."""
    recs = merge_recs([_read(path) for path in blocks], _read(evaluated)["user"].to_numpy())
    write_parquet(recs, output)
    log.info("%d blocks, %d users, %d rows", len(blocks), recs["user"].n_unique(), recs.height)
    return {"users": int(recs["user"].n_unique()), "rows": recs.height}


def evaluate_job(
    *,
    recs: PathLike,
    evaluated: PathLike,
    held_out: Mapping[str, PathLike],
    train: PathLike,
    item_table: PathLike,
    metrics: PathLike,
    per_user: PathLike,
    ks: list[int],
    splits: Sequence[str],
    per_user_ks: list[int],
    cold: str,
    bootstrap: int,
    seed: int,
    embeddings: PathLike | None = None,
    reference: PathLike | None = None,
) -> pl.DataFrame:
    """Rule evaluate: accuracy and beyond-accuracy per split and cohort with bootstrap CIs."""
    item_vectors, score = None, "neighbours"  # UserKNN scores lists without embeddings
    if embeddings is not None:
        _, item_vectors, score = load_embeddings(embeddings)
    reference_vectors = None if reference is None else load_embeddings(reference)[1]
    truths = for_users(  # the evaluated users (all, or the configured sample) only
        {split: _read(held_out[split]) for split in splits}, _read(evaluated)["user"].to_numpy()
    )
    table, values = evaluate_run(
        _read(recs),
        truths,
        _read(train),
        _read(item_table),
        ks,
        item_vectors=item_vectors,
        reference_vectors=reference_vectors,
        per_user_ks=per_user_ks,
        cold=cold,
        n_boot=bootstrap,
        seed=seed,
    )
    log.info(
        "at K=%d:\n%s",
        max(ks),
        table.filter((pl.col("cohort") == "all") & (pl.col("k") == max(ks))),
    )
    write_tsv(default_protocol(table, score), metrics)
    write_parquet(values, per_user)
    return table
