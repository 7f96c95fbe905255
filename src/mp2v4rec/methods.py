"""Fit any configured method on a prepared dataset, in memory: the workflow's corpus and train
stages for one method as one call, for experiments and benchmarks.

``settings`` is a method's entry of a validated config (every default filled in by the schema,
:func:`mp2v4rec.config.validate_config`); the training functions are the ones the train rules
call, so a method fitted here is the method the workflow fits (the corpus files live in a
temporary directory instead of ``results/``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from mp2v4rec.baselines.ials import train_ials
from mp2v4rec.baselines.simple import popularity_embeddings, random_embeddings
from mp2v4rec.baselines.ultragcn import UltraGCNConfig, train_ultragcn
from mp2v4rec.baselines.userknn import userknn_scorer
from mp2v4rec.config import SKIPGRAM_KEYS, shared_params
from mp2v4rec.datasets.common import Prepared
from mp2v4rec.embed import fit_skipgram_method, write_sequences
from mp2v4rec.graph import build_graph
from mp2v4rec.io import InputError
from mp2v4rec.recommend import Scorer, embedding_scorer
from mp2v4rec.walks import write_walks


@dataclass
class Fitted:
    """A fitted method: its scorer, and its vectors and curve where it has them."""

    scorer: Scorer
    user_vectors: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    score: str | None = None
    curve: pl.DataFrame | None = None


def _embedded(user_vectors, item_vectors, score, curve=None) -> Fitted:
    scorer = embedding_scorer(user_vectors, item_vectors, score=score)
    return Fitted(scorer, user_vectors, item_vectors, score, curve)


def fit_method(
    data: Prepared,
    settings: Mapping,
    *,
    metapaths: Mapping[str, list[str]],
    symmetric_social: bool = True,
    validation_k: int = 100,
    keep_best_epoch: bool = True,
    threads: int = 1,
    workdir: str | os.PathLike | None = None,
) -> Fitted:
    """Fit one method (``settings["kind"]``) on ``data``; trained methods keep their best
    validation epoch (Recall@``validation_k`` on ``data.valid``), as the workflow does, unless
    ``keep_best_epoch`` is False (then the last epoch)."""
    kind = settings["kind"]
    valid = data.valid if keep_best_epoch else None
    n_users, n_items = data.users.height, data.items.height
    s = dict(settings)
    if kind in ("mp2v", "w2v"):
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            corpus = Path(tmp) / "corpus.txt"
            if kind == "w2v":
                write_sequences(data.train, corpus)
            else:
                graph = build_graph(
                    data.train, data.social, n_users, n_items, symmetric_social=symmetric_social
                )
                write_walks(
                    graph,
                    corpus,
                    metapath=list(metapaths[s["metapath"]]),
                    walk_length=s["walk_length"],
                    walks_per_node=s["walks_per_node"],
                    sampling=s["sampling"],
                    start=s["start"],
                    seed=s["seed"],
                    threads=threads,
                )
            return _fit_corpus(corpus, data, valid, s, validation_k, threads)
    if kind == "ultragcn":
        params = {k: v for k, v in s.items() if k not in ("kind", "lambda")}
        cfg = UltraGCNConfig(**params, lambda_=s["lambda"], k=validation_k)
        users, items, curve = train_ultragcn(data.train, n_users, n_items, valid, cfg)
        return _embedded(users, items, "dot", curve)
    if kind == "ials":
        params = {k: v for k, v in s.items() if k != "kind"}
        users, items, curve = train_ials(
            data.train,
            n_users,
            n_items,
            valid,
            **params,
            threads=threads,
            k=validation_k,
        )
        return _embedded(users, items, "dot", curve)
    if kind == "userknn":
        scorer = userknn_scorer(
            data.train, n_users, n_items, k_neighbors=s["k_neighbors"], weighted=s["weighted"]
        )
        return Fitted(scorer)
    if kind == "popularity":
        return _embedded(*popularity_embeddings(data.train, n_users, n_items))
    if kind == "random":
        return _embedded(*random_embeddings(n_users, n_items, s["dim"], s["seed"]))
    raise InputError(f"unknown method kind {kind!r}")


def _fit_corpus(corpus, data: Prepared, valid, s: dict, validation_k: int, threads: int) -> Fitted:
    n_users, n_items = data.users.height, data.items.height
    if s.get("init", "random") != "random":
        raise InputError("fit_method trains from random initial vectors only (init: random)")
    if s["kind"] == "mp2v" and s["trainer"] == "shared":
        from mp2v4rec.shared_skipgram import fit_shared_method

        users, items, curve = fit_shared_method(
            corpus,
            train=data.train,
            valid=valid,
            n_users=n_users,
            n_items=n_items,
            params=shared_params(s),
            score=s["score"],
            validation_k=validation_k,
            workers=threads,
        )
        return _embedded(users, items, s["score"], curve)
    users, items, score, curve = fit_skipgram_method(
        corpus,
        user_vectors_from="tokens" if s["kind"] == "mp2v" else "items",
        train=data.train,
        valid=valid,
        n_users=n_users,
        n_items=n_items,
        params={k: s[k] for k in SKIPGRAM_KEYS},
        score=s["score"],
        validation_k=validation_k,
        workers=threads,
    )
    return _embedded(users, items, score, curve)
