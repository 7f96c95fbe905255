"""Fit any configured method on a prepared dataset, in memory: the workflow's corpus and train
stages for one method as one call, for experiments and benchmarks.

``settings`` is a method's entry of a validated config (every default filled in by the schema,
:func:`mp2v4rec.config.validate_config`); the kind's fit function is the registry's
(:mod:`mp2v4rec.kinds`), the one the train rule calls, so a method fitted here is the method the
workflow fits (a corpus lives in a temporary directory instead of ``results/``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from mp2v4rec.datasets.common import Prepared
from mp2v4rec.embed import write_sequences
from mp2v4rec.graph import build_graph
from mp2v4rec.io import InputError
from mp2v4rec.kinds import kind_of
from mp2v4rec.models import FitData
from mp2v4rec.recommend import Scorer
from mp2v4rec.walks import write_walks


@dataclass
class Fitted:
    """A fitted method: its scorer, its model (vectors, item-item weights) and its curve."""

    scorer: Scorer
    model: object
    curve: pl.DataFrame | None = None

    @property
    def user_vectors(self) -> np.ndarray | None:
        return getattr(self.model, "user_vectors", None)

    @property
    def item_vectors(self) -> np.ndarray | None:
        return getattr(self.model, "item_vectors", None)

    @property
    def score(self) -> str | None:
        return getattr(self.model, "score", None)


def write_corpus(
    data: Prepared,
    settings: Mapping,
    path: str | os.PathLike,
    *,
    metapaths: Mapping[str, list[str]],
    symmetric_social: bool = True,
    threads: int = 1,
) -> None:
    """The corpus a kind trains on: metapath walks or the users' train sequences."""
    if kind_of(settings).corpus == "sequences":
        write_sequences(data.train, path)
        return
    n_users, n_items = data.users.height, data.items.height
    graph = build_graph(
        data.train, data.social, n_users, n_items, symmetric_social=symmetric_social
    )
    write_walks(
        graph,
        path,
        metapath=list(metapaths[settings["metapath"]]),
        walk_length=settings["walk_length"],
        walks_per_node=settings["walks_per_node"],
        sampling=settings["sampling"],
        start=settings["start"],
        seed=settings["seed"],
        threads=threads,
    )


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
    init: str | os.PathLike | None = None,
) -> Fitted:
    """Fit one method (``settings["kind"]``, any registered kind) on ``data``; trained methods
    keep their best validation epoch (Recall@``validation_k`` on ``data.valid``), as the
    workflow does, unless ``keep_best_epoch`` is False (then the last epoch). A run with
    ``init: w2v`` starts from the W2V embeddings file ``init``."""
    kind = kind_of(settings)
    if settings.get("init", "random") != "random" and init is None:
        raise InputError("init: w2v needs the W2V embeddings file to start from (init=...)")
    n_users, n_items = data.users.height, data.items.height
    fit_data = FitData(
        train=data.train,
        n_users=n_users,
        n_items=n_items,
        valid=data.valid if keep_best_epoch else None,
        threads=threads,
        validation_k=validation_k,
        init=init,
    )
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        if kind.corpus is not None:
            fit_data.corpus = Path(tmp) / "corpus.txt"
            write_corpus(
                data,
                settings,
                fit_data.corpus,
                metapaths=metapaths,
                symmetric_social=symmetric_social,
                threads=threads,
            )
        model = kind.fit_function()(fit_data, dict(settings))
    return Fitted(model.scorer(data.train, n_users, n_items), model, model.curve)
