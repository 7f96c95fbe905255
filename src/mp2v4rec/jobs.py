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

from mp2v4rec.evaluation import default_protocol, evaluate_run, for_users
from mp2v4rec.graph import build_graph, load_graph, save_graph
from mp2v4rec.io import count_rows, write_parquet, write_tsv
from mp2v4rec.kinds import kind_of
from mp2v4rec.models import Embeddings, FitData, describe_weights, load_embeddings, load_model
from mp2v4rec.recommend import Scorer, merge_recs, split_recs, user_block
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


def train_job(
    *,
    settings: Mapping,
    train: PathLike,
    user_table: PathLike,
    item_table: PathLike,
    output: PathLike,
    validation: Mapping,
    threads: int,
    valid: PathLike | None = None,
    curve: PathLike | None = None,
    corpus: PathLike | None = None,
    init: PathLike | None = None,
):
    """Rule train (every kind that stores a model): the kind's fit function (the registry's)
    on the train split, the best validation epoch kept where the kind has a curve; the model
    goes to ``output`` and the curve, if asked for, to ``curve`` (header only for kinds that
    train in one step)."""
    kind = kind_of(settings)
    data = FitData(
        train=_read(train),
        n_users=count_rows(user_table),
        n_items=count_rows(item_table),
        valid=_read(valid) if valid is not None and validation["keep_best_epoch"] else None,
        threads=threads,
        validation_k=validation["k"],
        corpus=corpus,
        init=init,
    )
    log.info("fitting %s (%s) on %d train pairs", kind.name, kind.summary, data.train.height)
    model = kind.fit_function()(data, dict(settings))
    if isinstance(model, Embeddings):
        for side, x in (("users", model.user_vectors), ("items", model.item_vectors)):
            log.info("%s with a vector: %d/%d", side, int((x != 0).any(axis=1).sum()), len(x))
    else:
        log.info("item-item weights: %s", describe_weights(model.weights))
    model.save(output)
    if curve is not None:
        write_tsv(model.curve if model.curve is not None else pl.DataFrame(), curve)
    return model


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


def recommend_job(
    *,
    settings: Mapping,
    train: PathLike,
    user_table: PathLike,
    item_table: PathLike,
    model: PathLike | None = None,
    **job,
) -> dict:
    """Rule recommend: one block of the evaluated users, one list per split (train items
    masked, and for the test list the validation positives; the popularity fallback for users
    without train positives), scored by the method's model (its kind's type, read from
    ``model``; UserKNN fits from train). ``job``: evaluated, held_out, output, k, mask_seen,
    chunk_size, block, n_blocks, splits."""
    kind = kind_of(settings)
    fitted = load_model(kind.model, model, settings)
    n_users, n_items = count_rows(user_table), count_rows(item_table)
    frame = _read(train)
    log.info("scoring by %s (%s)", kind.name, getattr(fitted, "score", kind.model))
    job["chunk_size"] = getattr(fitted, "chunk_size", job["chunk_size"])
    scorer = fitted.scorer(frame, n_users, n_items)
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
    item_vectors, score = None, "neighbours"  # kinds without vectors: lists only
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
