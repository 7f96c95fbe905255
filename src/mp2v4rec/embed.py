"""Skip-gram training with gensim (corpus_file mode) and the embeddings contract.

Tokens are ``u{index}`` for users and ``i{index}`` for items. Nodes that never occur in the
corpus get a zero vector, which scores 0 against everything.
"""

from __future__ import annotations

import logging
import os
import zlib

import numpy as np
import polars as pl
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from mp2v4rec.io import InputError, atomic_path, load_npz, save_npz

SCORES = ("cosine", "dot")


def stable_hash(text: str) -> int:
    """Process-independent hash for gensim's vector initialisation (builtin hash is salted)."""
    return zlib.crc32(text.encode())


class _EpochLogger(CallbackAny2Vec):
    def __init__(self, log: logging.Logger | None):
        self.log, self.epoch = log, 0

    def on_epoch_end(self, model):
        self.epoch += 1
        if self.log:
            self.log.info("epoch %d/%d done", self.epoch, model.epochs)


def train_skipgram(
    corpus_file: str | os.PathLike,
    *,
    dim: int,
    window: int,
    negative: int,
    epochs: int,
    alpha: float,
    min_alpha: float,
    seed: int,
    workers: int = 1,
    log: logging.Logger | None = None,
    init: dict[str, np.ndarray] | None = None,
):
    """Train skip-gram with negative sampling on a LineSentence file; return its KeyedVectors.

    ``init`` optionally maps tokens to starting vectors, set after the vocabulary is built.
    With ``workers > 1`` gensim's lock-free updates make the result vary slightly run to run.
    """
    if os.path.getsize(corpus_file) == 0:
        raise InputError(f"{corpus_file}: the training corpus is empty (no walks or sequences)")
    model = Word2Vec(
        vector_size=dim,
        window=window,
        negative=negative,
        sg=1,
        hs=0,
        min_count=1,
        alpha=alpha,
        min_alpha=min_alpha,
        seed=seed,
        workers=workers,
        hashfxn=stable_hash,
    )
    model.build_vocab(corpus_file=str(corpus_file))
    if init:
        for token, vector in init.items():
            if token in model.wv.key_to_index:
                model.wv.vectors[model.wv.key_to_index[token]] = vector
    if log:
        log.info(
            "vocabulary %d tokens, corpus %d words; training %d epochs with %d workers",
            len(model.wv),
            model.corpus_total_words,
            epochs,
            workers,
        )
    model.train(
        corpus_file=str(corpus_file),
        total_examples=model.corpus_count,
        total_words=model.corpus_total_words,
        epochs=epochs,
        callbacks=[_EpochLogger(log)],
    )
    return model.wv


def token_matrix(wv, prefix: str, n: int) -> np.ndarray:
    """Vectors of tokens ``{prefix}0 .. {prefix}{n-1}`` as float32 [n, dim]; zeros when absent."""
    out = np.zeros((n, wv.vector_size), dtype=np.float32)
    for token, row in wv.key_to_index.items():
        if token.startswith(prefix) and token[len(prefix) :].isdigit():
            index = int(token[len(prefix) :])
            if index < n:
                out[index] = wv.vectors[row]
    return out


def mean_item_vectors(item_vectors: np.ndarray, train: pl.DataFrame, n_users: int) -> np.ndarray:
    """Each user's vector as the mean of their train items' vectors (zeros for no items)."""
    users = train["user"].to_numpy()
    items = train["item"].to_numpy()
    sums = np.zeros((n_users, item_vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, users, item_vectors[items])
    counts = np.bincount(users, minlength=n_users)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def write_sequences(train: pl.DataFrame, path: str | os.PathLike) -> dict[str, int]:
    """Each user's train items in time order, one line per user (the W2V corpus)."""
    seqs = (
        train.sort(["user", "timestamp", "item"], nulls_last=True)
        .group_by("user", maintain_order=True)
        .agg(pl.format("i{}", pl.col("item")).str.join(" ").alias("line"))
    )
    with atomic_path(path) as tmp:
        seqs.select("line").write_csv(tmp, include_header=False, quote_style="never")
    return {"sequences": seqs.height, "tokens": train.height}


def save_embeddings(
    path: str | os.PathLike,
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    score: str = "cosine",
) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}")
    save_npz(
        path,
        user_vectors=np.ascontiguousarray(user_vectors, dtype=np.float32),
        item_vectors=np.ascontiguousarray(item_vectors, dtype=np.float32),
        score=np.array(score),
    )


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, str]:
    data = load_npz(path)
    return data["user_vectors"], data["item_vectors"], str(data["score"])
