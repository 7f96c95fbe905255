"""What a fitted method is, whatever its kind: the fit input, and the three model types of the
registry (:mod:`mp2v4rec.kinds`) with their scorers, neighbours and files.

- :class:`Embeddings`: user and item vectors scored by cosine or dot (``embeddings.npz``);
- :class:`ItemItem`: an item x item weight matrix ``W`` (dense or sparse), a user's scores are
  ``history @ W`` over their binary train row (EASE, RP3beta, ItemKNN; ``item_item.npz``);
- kinds that store nothing (``none``, UserKNN) give a model from their settings alone whose
  scorer works on train (``baselines.userknn.UserNeighbours``).

Every model gives a :data:`~mp2v4rec.recommend.Scorer` of users from the train history
(``scorer``) and, where it has item neighbours, a scorer of arbitrary item sets (``seed_scorer``:
the seeded-continuation protocol, playlists). Items without any train positive are never
recommended by an item-item model (score -inf), as items without a vector are never recommended
by an embedding model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.io import InputError, load_npz, save_npz
from mp2v4rec.kinds import kind_of
from mp2v4rec.recommend import SCORES, Scorer, embedding_scorer, normalise, seen_matrix
from mp2v4rec.topk import select_top_k

MODEL_FILES = {"embeddings": "embeddings.npz", "item_item": "item_item.npz"}


@dataclass
class FitData:
    """What a kind's fit function reads: the train interactions, the validation pairs (None:
    no per-epoch selection), the catalogue sizes, and for corpus kinds the corpus file (and the
    W2V vectors a run starts from)."""

    train: pl.DataFrame
    n_users: int
    n_items: int
    valid: pl.DataFrame | None = None
    threads: int = 1
    validation_k: int = 100
    corpus: str | os.PathLike | None = None
    init: str | os.PathLike | None = None


def warm_items(train: pl.DataFrame, n_items: int) -> np.ndarray:
    """Bool ``[n_items]``: items with at least one train positive."""
    warm = np.zeros(n_items, dtype=bool)
    warm[train["item"].to_numpy()] = True
    return warm


def save_embeddings(
    path: str | os.PathLike,
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    score: str = "cosine",
    item_input_vectors: np.ndarray | None = None,
) -> None:
    """``embeddings.npz``; ``item_input_vectors``: the input table of a model scored against
    its context table (the item vectors), kept for item-to-item similarity."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}")
    extra = {}
    if item_input_vectors is not None:
        extra["item_input_vectors"] = np.ascontiguousarray(item_input_vectors, dtype=np.float32)
    save_npz(
        path,
        user_vectors=np.ascontiguousarray(user_vectors, dtype=np.float32),
        item_vectors=np.ascontiguousarray(item_vectors, dtype=np.float32),
        score=np.array(score),
        **extra,
    )


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    data = load_npz(path)
    return data["user_vectors"], data["item_vectors"], str(data["score"])


ITEM_SPACES = ("context", "input")  # the item tables of a model scored against context vectors


@dataclass
class Embeddings:
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    score: str
    curve: pl.DataFrame | None = None
    item_input_vectors: np.ndarray | None = None  # the input table, when items are context rows
    model = "embeddings"

    def item_space(self, space: str) -> Embeddings:
        """The model for item-to-item use: its own item vectors and score (``context``), or the
        input table compared by cosine (``input``, word2vec's item similarity)."""
        if space not in ITEM_SPACES or (space == "input" and self.item_input_vectors is None):
            raise InputError(f"no {space!r} item table in these embeddings")
        if space == "context":
            return self
        return Embeddings(self.user_vectors, self.item_input_vectors, "cosine")

    def scorer(self, train: pl.DataFrame, n_users: int, n_items: int) -> Scorer:
        return embedding_scorer(self.user_vectors, self.item_vectors, score=self.score)

    def seed_scorer(self, seeds: sp.csr_matrix) -> tuple[Scorer, np.ndarray]:
        """Rows of ``seeds`` (item sets) scored by the mean of their items' vectors in the
        method's space (normalised for cosine); also which rows have a usable query."""
        V = np.asarray(self.item_vectors, dtype=np.float32)
        V = normalise(V) if self.score == "cosine" else V
        seeds = sp.csr_matrix(seeds, dtype=np.float32)
        Q = np.asarray(seeds @ V) / np.maximum(np.diff(seeds.indptr), 1)[:, None]
        Q = (normalise(Q) if self.score == "cosine" else Q).astype(np.float32)
        return embedding_scorer(Q, V, score="dot"), np.any(Q != 0, axis=1)

    def save(self, path) -> None:
        save_embeddings(
            path, self.user_vectors, self.item_vectors, self.score, self.item_input_vectors
        )


@dataclass
class ItemItem:
    """``weights``: item x item, dense ndarray or CSR; ``weights[i, j]`` is what a history
    holding item ``i`` adds to item ``j``."""

    weights: np.ndarray | sp.csr_matrix
    curve: pl.DataFrame | None = None
    model = "item_item"

    def __post_init__(self):
        w = self.weights
        w = sp.csr_matrix(w, dtype=np.float32) if sp.issparse(w) else np.asarray(w, np.float32)
        if sp.issparse(w) and w.nnz > w.shape[0] * w.shape[1] // 3:
            w = w.toarray()  # denser than a third: the dense array is the smaller one
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise InputError(f"item-item weights must be square, got shape {w.shape}")
        if not np.isfinite(w.data if sp.issparse(w) else w).all():
            raise InputError("item-item weights hold NaN or infinity; the fit diverged")
        self.weights = w

    @property
    def n_items(self) -> int:
        return self.weights.shape[0]

    def _rows_scorer(self, history: sp.csr_matrix, cold: np.ndarray) -> Scorer:
        H = sp.csr_matrix(history, dtype=np.float32)
        if H.shape[1] != self.n_items:
            raise InputError(
                f"the history has {H.shape[1]} items but the item-item model {self.n_items}: "
                "they come from different preprocess runs; re-run the workflow"
            )

        def scores(rows: np.ndarray) -> np.ndarray:
            S = H[rows] @ self.weights
            S = np.array(S.toarray() if sp.issparse(S) else S, dtype=np.float32)
            S[:, cold] = -np.inf
            return S

        return scores

    def scorer(self, train: pl.DataFrame, n_users: int, n_items: int) -> Scorer:
        warm = warm_items(train, self.n_items)
        return self._rows_scorer(seen_matrix(train, n_users, n_items), ~warm)

    def seed_scorer(self, seeds: sp.csr_matrix) -> tuple[Scorer, np.ndarray]:
        """Rows of ``seeds`` scored by ``seeds @ W``; items no row of ``W`` reaches are not
        recommended, and rows whose seeds all have empty rows of ``W`` have no usable query."""
        W = abs(self.weights)
        reached = np.asarray(W.sum(axis=0)).ravel() > 0
        has_row = (np.asarray(W.sum(axis=1)).ravel() > 0).astype(np.float32)
        usable = np.asarray(sp.csr_matrix(seeds, dtype=np.float32) @ has_row).ravel() > 0
        return self._rows_scorer(seeds, ~reached), usable

    def neighbours(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items of each of ``rows`` by ``W[row]``, itself excluded (a sparse matrix's
        missing entries are no neighbours), best first, ties by lower item."""
        W = self.weights
        block = W[rows]
        if sp.issparse(block):
            dense = np.full(block.shape, -np.inf, dtype=np.float32)
            r, c = block.nonzero()
            dense[r, c] = np.asarray(block[r, c]).ravel()
            block = dense
        else:
            block = np.array(block, dtype=np.float32)
        block[np.arange(len(rows)), rows] = -np.inf
        return select_top_k(block, n)

    def save(self, path) -> None:
        W = self.weights
        if sp.issparse(W):
            save_npz(
                path,
                indptr=W.indptr.astype(np.int64),
                indices=W.indices.astype(np.int32),
                data=W.data,
                shape=np.array(W.shape, np.int64),
            )
        else:
            save_npz(path, dense=W)


def describe_weights(W) -> str:
    """One line on item-item weights: storage, shape and entries per row."""
    n = W.shape[0]
    nnz = W.nnz if sp.issparse(W) else int(np.count_nonzero(W))
    storage = "sparse" if sp.issparse(W) else "dense"
    return f"{storage} {n} x {n}, {nnz / max(n, 1):.1f} non-zero per item"


def load_item_item(path: str | os.PathLike) -> ItemItem:
    data = load_npz(path)
    if "dense" in data:
        return ItemItem(data["dense"])
    try:
        shape = tuple(int(s) for s in data["shape"])
        return ItemItem(sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape))
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"{path}: not an item-item model ({exc}); delete it and rerun its train rule"
        ) from exc


def load_model(model: str, path: str | os.PathLike | None, settings: Mapping):
    """The model a recommend/serve/evaluate job reads: from its file, or (``none``) from the
    settings alone."""
    if model == "embeddings":
        data = load_npz(path)
        return Embeddings(
            data["user_vectors"],
            data["item_vectors"],
            str(data["score"]),
            item_input_vectors=data.get("item_input_vectors"),
        )
    if model == "item_item":
        return load_item_item(path)
    return kind_of(settings).fit_function()(None, settings)  # fitted from train when scoring


def model_path(folder: str | os.PathLike, model: str) -> Path | None:
    """Where a model type lives in a run's ``models/{method}/{variant}/`` folder."""
    return Path(folder) / MODEL_FILES[model] if model in MODEL_FILES else None
