"""Skip-gram training with gensim (corpus_file mode) and the embeddings contract.

Tokens are ``u{index}`` for users and ``i{index}`` for items. Nodes that never occur in the
corpus get a zero vector, which scores 0 against everything.

Every setting gensim would otherwise apply silently is explicit: ``sample`` (frequent-token
downsampling; gensim's default 1e-3 drops a share of tokens that grows with the corpus) and
``ns_exponent`` (the negative distribution's exponent). The corpus is shuffled line by line
(seeded) before training: walk files are ordered by start node, and in ``corpus_file`` mode each
worker trains on a contiguous block of lines while the learning rate decays, so an unshuffled
corpus would tie the learning rate to the user id.

``score`` says how a user meets an item: ``cosine`` or ``dot`` of the input vectors (the
study's), or ``context``: the user's input vector against the item's *context* vector (gensim's
``syn1neg``), the product the skip-gram objective actually trains; saved as item vectors with
``dot`` scoring.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numba
import numpy as np
import polars as pl
import scipy.sparse as sp
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from mp2v4rec.io import InputError, atomic_path
from mp2v4rec.models import Embeddings, load_embeddings

log = logging.getLogger(__name__)

SKIPGRAM_SCORES = ("cosine", "dot", "context")  # how users meet items (see the module docstring)


def stable_hash(text: str) -> int:
    """Process-independent hash for gensim's vector initialisation (builtin hash is salted)."""
    return zlib.crc32(text.encode())


class _EpochMonitor(CallbackAny2Vec):
    """Logs each epoch and, given ``on_epoch``, scores it and keeps the best epoch's input and
    context vectors. Curve rows: epoch, seconds and cpu_seconds (wall and process CPU time from
    the start of training to the end of the epoch's training), valid_seconds and
    valid_cpu_seconds (the scoring after it)."""

    def __init__(self, on_epoch: Callable | None):
        self.on_epoch = on_epoch
        self.epoch, self.curve = 0, []
        self.best_score, self.best_vectors = -np.inf, None
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, model):
        self.epoch += 1
        trained = time.perf_counter()
        row = {
            "epoch": self.epoch,
            "seconds": trained - self.started,
            "cpu_seconds": time.process_time() - self.cpu_started,
        }
        if self.on_epoch is not None:
            row["valid_recall"] = score = float(self.on_epoch(model))
            row["valid_seconds"] = time.perf_counter() - trained
            row["valid_cpu_seconds"] = time.process_time() - self.cpu_started - row["cpu_seconds"]
            if score > self.best_score:
                self.best_score = score
                self.best_vectors = (model.wv.vectors.copy(), model.syn1neg.copy())
        self.curve.append(row)
        log.info("epoch %d/%d done: %s", self.epoch, model.epochs, row)


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
    sample: float,
    ns_exponent: float,
    workers: int = 1,
    init: dict[str, np.ndarray] | None = None,
    on_epoch: Callable | None = None,
):
    """Train skip-gram with negative sampling on a LineSentence file (as it is: shuffle it
    first, see :func:`shuffled_corpus`).

    ``init`` optionally maps tokens to starting vectors, set after the vocabulary is built.
    ``on_epoch(model) -> score`` is called after every epoch; the input and context vectors of
    the best-scoring epoch are kept. Returns the gensim model and the training curve (one dict
    per epoch). With ``workers > 1`` gensim's lock-free updates make the result vary slightly
    run to run.
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
        sample=sample,
        ns_exponent=ns_exponent,
        workers=workers,
        hashfxn=stable_hash,
    )
    model.build_vocab(corpus_file=str(corpus_file))
    if init:
        width = {np.shape(v) for v in init.values()}
        if width != {(dim,)}:
            raise InputError(
                f"initial vectors have shape {sorted(width)} but the model has dim {dim}; "
                "use the same dim for the method and its init_method"
            )
        for token, vector in init.items():
            if token in model.wv.key_to_index:
                model.wv.vectors[model.wv.key_to_index[token]] = vector
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
        callbacks=[monitor := _EpochMonitor(on_epoch)],
    )
    if monitor.best_vectors is not None:
        model.wv.vectors[:], model.syn1neg[:] = monitor.best_vectors
        log.info("kept epoch %d (valid %.4f)", _best_epoch(monitor.curve), monitor.best_score)
    return model, monitor.curve


@numba.njit(cache=True)
def _gather_lines(buf, starts, ends, order, out):
    """Copy lines ``order[0], order[1], ...`` of ``buf`` into ``out``, back to back."""
    pos = 0
    for j in order:
        n = ends[j] - starts[j]
        out[pos : pos + n] = buf[starts[j] : ends[j]]
        pos += n
    return pos


@contextmanager
def shuffled_corpus(corpus_file: str | os.PathLike, seed: int) -> Iterator[Path]:
    """A temporary copy of a LineSentence file with its lines in a seeded random order.

    Memory: the file twice plus 16 bytes per line; the copy lives in the system's temporary
    directory (node-local on a cluster) and is deleted on exit.
    """
    buf = np.fromfile(corpus_file, dtype=np.uint8)
    if buf.size and buf[-1] != ord("\n"):
        buf = np.append(buf, np.uint8(ord("\n")))
    ends = np.flatnonzero(buf == ord("\n")) + 1  # each line with its newline
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(ends.size)
    out = np.empty_like(buf)
    _gather_lines(buf, starts, ends, order, out)
    with tempfile.TemporaryDirectory(prefix="mp2v4rec-corpus-") as tmp:
        path = Path(tmp) / Path(corpus_file).name
        out.tofile(path)
        del buf, out
        yield path


def _best_epoch(curve: list[dict]) -> int:
    return max(curve, key=lambda row: (row["valid_recall"], -row["epoch"]))["epoch"]


def token_rows(wv, prefix: str, n: int) -> np.ndarray:
    """Row in ``wv.vectors`` of tokens ``{prefix}0 .. {prefix}{n-1}``; -1 when absent."""
    rows = np.full(n, -1, dtype=np.int64)
    for token, row in wv.key_to_index.items():
        if token.startswith(prefix) and token[len(prefix) :].isdigit():
            index = int(token[len(prefix) :])
            if index < n:
                rows[index] = row
    return rows


def token_matrix(wv, prefix: str, n: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Vectors of tokens ``{prefix}0 .. {prefix}{n-1}`` as float32 [n, dim]; zeros when absent."""
    rows = token_rows(wv, prefix, n) if rows is None else rows
    out = np.zeros((n, wv.vector_size), dtype=np.float32)
    present = rows >= 0
    out[present] = wv.vectors[rows[present]]
    return out


def init_vectors(user_vectors: np.ndarray, item_vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Starting vectors by token from another model; zero (unknown) vectors are left out."""
    init = {}
    for prefix, vectors in (("u", user_vectors), ("i", item_vectors)):
        for index in np.flatnonzero(np.abs(vectors).sum(axis=1) > 0):
            init[f"{prefix}{index}"] = vectors[index]
    return init


def mean_item_vectors(item_vectors: np.ndarray, train: pl.DataFrame, n_users: int) -> np.ndarray:
    """Each user's vector as the mean of their train items' vectors (zeros for no items)."""
    rows = sp.csr_matrix(
        (np.ones(train.height, np.float32), (train["user"].to_numpy(), train["item"].to_numpy())),
        shape=(n_users, item_vectors.shape[0]),
    )
    counts = np.asarray(rows.sum(axis=1)).ravel()
    return np.asarray(rows @ item_vectors / np.maximum(counts, 1)[:, None], dtype=np.float32)


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


def fit_skipgram_method(
    corpus_file: str | os.PathLike,
    *,
    user_vectors_from: str,
    train: pl.DataFrame,
    valid: pl.DataFrame | None,
    n_users: int,
    n_items: int,
    params: dict,
    score: str,
    validation_k: int = 100,
    workers: int = 1,
    init: dict[str, np.ndarray] | None = None,
):
    """Train MP2V (users from their own tokens) or W2V (users = mean of their train items) on
    the corpus shuffled with ``params["seed"]``; items are scored by ``score``
    (:data:`SKIPGRAM_SCORES`).

    With ``valid`` given, validation Recall@``validation_k`` is measured after every epoch and the
    best epoch is kept. Returns the :class:`~mp2v4rec.models.Embeddings`: user vectors, item
    vectors (the context table for ``context``, whose input table is kept as
    ``item_input_vectors``), the score to save with them (cosine or dot) and the curve.
    """
    from mp2v4rec.validation import Validator

    if user_vectors_from not in ("tokens", "items"):
        raise ValueError("user_vectors_from must be 'tokens' or 'items'")
    if score not in SKIPGRAM_SCORES:
        raise InputError(f"score must be one of {list(SKIPGRAM_SCORES)}, got {score!r}")
    saved_score = "dot" if score == "context" else score
    rows: dict[str, np.ndarray] = {}

    def vectors(model):
        wv = model.wv
        if not rows:
            rows["u"], rows["i"] = token_rows(wv, "u", n_users), token_rows(wv, "i", n_items)
        items = token_matrix(wv, "i", n_items, rows["i"])
        users = (
            mean_item_vectors(items, train, n_users)
            if user_vectors_from == "items"
            else token_matrix(wv, "u", n_users, rows["u"])
        )
        if score == "context":
            items = np.zeros_like(items)
            present = rows["i"] >= 0
            items[present] = model.syn1neg[rows["i"][present]]
        return users, items

    on_epoch = None
    if valid is not None and valid.height:
        validator = Validator.from_train(train, valid, n_users, n_items, k=validation_k)
        on_epoch = lambda model: validator(*vectors(model), saved_score)  # noqa: E731
    with shuffled_corpus(corpus_file, params["seed"]) as shuffled:
        model, curve = train_skipgram(
            shuffled, **params, workers=workers, init=init, on_epoch=on_epoch
        )
    users, items = vectors(model)
    inputs = token_matrix(model.wv, "i", n_items, rows["i"]) if score == "context" else None
    return Embeddings(users, items, saved_score, pl.DataFrame(curve), item_input_vectors=inputs)


def fit_skipgram(data, settings: dict):
    """The registry's fit of the skip-gram kinds on ``data.corpus``: users from their own walk
    tokens (a kind on walks) or the mean of their items (on sequences); ``settings["trainer"]``
    picks gensim or the one-table trainer, ``init: w2v`` starts from ``data.init``'s vectors."""
    from mp2v4rec.config import SKIPGRAM_KEYS, shared_params
    from mp2v4rec.kinds import kind_of

    params = dict(settings)
    kind, score = kind_of(params), params.pop("score")
    trainer = params.pop("trainer", "gensim")
    start = None
    if params.pop("init", "random") == "w2v":
        start = init_vectors(*load_embeddings(data.init)[:2])
        log.info("starting from W2V vectors: %d tokens", len(start))
    common = dict(
        train=data.train,
        valid=data.valid,
        n_users=data.n_users,
        n_items=data.n_items,
        validation_k=data.validation_k,
        workers=data.threads,
    )
    if trainer == "shared":
        from mp2v4rec.shared_skipgram import fit_shared_method

        users, items, curve = fit_shared_method(
            data.corpus, **common, params=shared_params(params), score=score
        )
        return Embeddings(users, items, score, curve)
    return fit_skipgram_method(
        data.corpus,
        user_vectors_from="tokens" if kind.corpus == "walks" else "items",
        **common,
        params={k: params[k] for k in SKIPGRAM_KEYS},
        score=score,
        init=start,
    )
