"""The study's MetaPath2Vec objective: skip-gram with ONE table for centre and context nodes.

PyTorch Geometric's ``MetaPath2Vec`` (which the study trained) scores a pair of nodes by the dot
product of their rows in a single embedding table, draws negatives per node type along the
metapath and optimises with SparseAdam. gensim's skip-gram keeps two tables (input and output
vectors), so its user . item dot product is not the proximity it trained. This module trains the
single-table objective with a numba kernel over the same LineSentence walk corpus.

Node ids are global: users ``0..n_users-1``, items ``n_users..n_users+n_items-1``.

Objective. Every walk, every centre position ``i`` and every context position ``j`` with
``0 < |i - j| <= window`` inside the walk gives a positive pair ``(c, o)`` and the loss
``-log s(h_c . h_o) - sum_n log s(-h_c . h_n)`` over ``negative`` negatives ``n``. Both
directions are visited and the window is always the full ``window`` (no random shrinking as in
word2vec/gensim, whose default draws each centre's window from ``1..window`` and so trains about
``(window + 1) / (2 window)`` of these pairs). PyG's ``context_size=c`` pairs each node with the
``c - 1`` nodes after it; as the score is symmetric that is the pair set of ``window = c - 1``
here, visited once instead of from both ends. Two deliberate differences from PyG: each positive
pair gets its own negatives contrasted with the real centre (PyG builds negative *walks* of
random nodes whose windows pair random nodes with each other), and the negative terms are summed
(word2vec) where PyG averages the positive and the negative terms separately.

Negatives. ``typed=True`` draws from the nodes of the context's type (users or items),
``typed=False`` from all nodes; within the pool the probability is proportional to
``frequency ** ns_exponent``, the frequency being the node's token count in the corpus
(``ns_exponent=0``: uniform, as PyG; ``0.75``: word2vec). Nodes absent from the corpus are never
drawn, so they are never touched and keep the zero vector the embeddings contract gives them.
A negative equal to the positive context is kept (as PyG; word2vec skips it). Draws are O(1):
one Vose alias table per pool (the walks' alias builder), one 64-bit random number per draw
whose high half picks the slot and low half tosses the alias coin.

Update. Per pair the kernel computes every score from the current rows first, then applies the
exact gradient of that pair's loss (a row that occurs twice in a pair, e.g. a negative equal to
the centre, gets the sum of its gradients): :func:`apply_pairs` on one pair equals
``table - lr * grad`` of :func:`pair_loss_and_grad` (to float32 rounding). The sigmoid (the
gradient) and softplus (the loss) come from a table of 2048 steps on [-10, 10], linearly
interpolated (max error 1.2e-6 and 3e-6; an exp and a log per term would cost as much as the
rest of the update), after clipping the score to +-``MAX_SCORE`` = 10 (``s(10) = 1 - 4.5e-5``),
so nothing overflows. The loss in the curve comes free with the same lookup. Threads update the
one table without locks (Hogwild, like gensim); the kernels are compiled with fastmath.

Optimisers. ``sgd``: ``row -= lr * grad``. ``adam``: lazy (sparse) Adam with PyTorch's defaults
``betas=(0.9, 0.999)``, ``eps=1e-8``: each row keeps its own first and second moments and its
own step count, and only rows in the pair are updated; one pair is one step for each of its
rows (a row twice in a pair takes two steps). Bias correction uses the row's own step count
(PyTorch's SparseAdam uses the global step; with a step per pair that would be ~1 after a few
thousand pairs and a rare row's first steps would be ~3x too large). A node's vector, moments
and bias-correction powers ``beta**t`` sit side by side in one row of storage: Adam's update is
limited by memory traffic, and the contiguous layout made it ~25% faster than four tables.
For both optimisers the learning rate decays linearly from ``alpha`` to ``min_alpha`` over all
epochs (per walk, by its rank in the epoch's order); ``min_alpha == alpha`` keeps it constant,
as in the PyG examples (Adam, lr 0.01). PyG takes one Adam step per minibatch (gradients summed
over the batch), this kernel one per pair, so a row takes far more (and noisier) steps per
epoch: on the planted test world a constant lr 0.01 recovers the communities less well than
0.01 decaying to 1e-4.

Initialisation: rows of nodes in the corpus are ``normal(0, init_std)``, other rows zero. The
first scores then have std ``sqrt(dim) * init_std**2`` (0.07 for dim 50 and init_std 0.1);
PyG's ``Embedding`` uses ``normal(0, 1)``, i.e. scores of std ``sqrt(dim)`` (7 for dim 50) and a
saturated sigmoid at the start. Zero rows would be a saddle point (no gradient) with one table.

Randomness (``seed`` taken modulo 2**64): the initial table from ``default_rng(seed)``; each
epoch's walk order from ``default_rng([seed, epoch])``; each walk's negatives from a splitmix64
counter seeded by ``(seed, epoch, walk index)``. The draws do not depend on how walks are split
among threads, and one thread reproduces a run bit for bit; more threads race on shared rows (as
gensim's workers). Threads take chunks of ``CHUNK`` walks one at a time (dynamic scheduling).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl
from numba import njit, prange

from mp2v4rec.io import InputError, check_int
from mp2v4rec.walks import _GOLD, _LOW32, _S32, _alias_table, _mix, _Threads

OPTIMIZERS = ("adam", "sgd")
PARAM_KEYS = (
    "dim",
    "window",
    "negative",
    "epochs",
    "seed",
    "typed",
    "ns_exponent",
    "optimizer",
    "alpha",
    "min_alpha",
    "init_std",
)
MAX_SCORE = 10.0  # |h_c . h_o| is clipped to this before the sigmoid
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # torch.optim.SparseAdam defaults
CHUNK = 64  # walks per parallel task
_BINS = 2048  # sigmoid and softplus are tabulated on [-MAX_SCORE, MAX_SCORE] in 2048 steps
_GRID = np.linspace(-MAX_SCORE, MAX_SCORE, _BINS + 1)
_CURVES = np.column_stack([1.0 / (1.0 + np.exp(-_GRID)), np.logaddexp(0.0, _GRID)]).astype(
    np.float32
)

log = logging.getLogger(__name__)
_SALT = np.uint64(0x6D703276_73686172)  # separates the trainer's stream from the walks'
_WS_MAX = 13  # bytes 9..13 (\t \n \v \f \r) and 32 are whitespace, as str.split()


# ---------------------------------------------------------------------------------------------
# corpus


@dataclass(frozen=True)
class Corpus:
    """Walks as CSR: walk ``w`` is ``tokens[offsets[w]:offsets[w + 1]]`` (global node ids)."""

    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64 [n_walks + 1]
    n_users: int
    n_items: int

    @property
    def n_walks(self) -> int:
        return self.offsets.size - 1

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    def frequencies(self) -> np.ndarray:
        """Token count of every node (int64 [n_nodes])."""
        return np.bincount(self.tokens, minlength=self.n_nodes).astype(np.int64)

    def pairs_per_epoch(self, window: int) -> int:
        """Positive pairs in one epoch with the full window (both directions)."""
        lengths = np.diff(self.offsets)
        # 2 * sum over walks of sum_{d=1..window} max(L - d, 0)
        return 2 * sum(int(np.maximum(lengths - d, 0).sum()) for d in range(1, window + 1))


@njit(cache=True, inline="always")
def _is_space(x):
    return x == 32 or (x >= 9 and x <= _WS_MAX)


@njit(cache=True)
def _count_tokens(buf):
    # (tokens, non-empty lines)
    n_tok = 0
    n_walk = 0
    in_tok = False
    line_has = False
    for x in buf:
        if _is_space(x):
            in_tok = False
            if x == 10 and line_has:
                n_walk += 1
                line_has = False
        elif not in_tok:
            n_tok += 1
            in_tok = True
            line_has = True
    if line_has:
        n_walk += 1
    return n_tok, n_walk


@njit(cache=True)
def _parse_tokens(buf, n_users, n_items, tokens, offsets):
    """Fill ``tokens``/``offsets``; return (error code, byte offset of the bad token).

    Codes: 0 fine, 1 token does not start with u/i, 2 no decimal index after it,
    3 index out of range.
    """
    n = buf.size
    i = 0
    t = 0
    w = 0
    line_has = False
    offsets[0] = 0
    while i < n:
        x = buf[i]
        if x == 10:
            if line_has:
                w += 1
                offsets[w] = t
                line_has = False
            i += 1
            continue
        if _is_space(x):
            i += 1
            continue
        start = i
        if x == 117:  # 'u'
            limit = n_users
            base = 0
        elif x == 105:  # 'i'
            limit = n_items
            base = n_users
        else:
            return 1, start
        i += 1
        v = 0
        nd = 0
        while i < n and not _is_space(buf[i]):
            d = np.int64(buf[i]) - 48
            if d < 0 or d > 9:
                return 2, start
            v = min(v * 10 + d, limit)  # capped: long numbers cannot overflow
            nd += 1
            i += 1
        if nd == 0:
            return 2, start
        if v >= limit:
            return 3, start
        tokens[t] = base + v
        t += 1
        line_has = True
    if line_has:
        w += 1
        offsets[w] = t
    return 0, -1


def _bad_token(path, buf: np.ndarray, pos: int, code: int, n_users: int, n_items: int):
    end = pos
    while end < buf.size and not (buf[end] == 32 or 9 <= buf[end] <= _WS_MAX):
        end += 1
    token = bytes(buf[pos : min(end, pos + 40)]).decode("utf-8", errors="replace")
    line = int(np.count_nonzero(buf[:pos] == 10)) + 1
    what = {
        1: "does not start with 'u' (user) or 'i' (item)",
        2: "is not 'u' or 'i' followed by a decimal index",
        3: f"is out of range: the dataset has {n_users} users (u0..u{n_users - 1}) and "
        f"{n_items} items (i0..i{n_items - 1})",
    }[code]
    return InputError(
        f"{path}, line {line}: walk token {token!r} {what}; a walk corpus holds tokens "
        "u{index} / i{index} of this dataset's graph: rerun the walk stage for this dataset"
    )


def read_corpus(path: str | os.PathLike, n_users: int, n_items: int) -> Corpus:
    """Parse a LineSentence walk file (``u12 i40 u7 ...``, one walk per line) into a Corpus.

    Empty lines are skipped. Raises InputError naming the line and token of the first token
    that is not ``u{index}``/``i{index}`` with the index in range.
    """
    check_int("n_users", n_users, 0)
    check_int("n_items", n_items, 0)
    if n_users + n_items >= 2**31:
        raise InputError(f"n_users + n_items = {n_users + n_items} does not fit int32 node ids")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: walk corpus not found; run the walk stage first") from exc
    n_tok, n_walk = _count_tokens(buf)
    if n_tok == 0:
        raise InputError(f"{path}: the training corpus is empty (no walks)")
    tokens = np.empty(n_tok, dtype=np.int32)
    offsets = np.empty(n_walk + 1, dtype=np.int64)
    code, pos = _parse_tokens(buf, np.int64(n_users), np.int64(n_items), tokens, offsets)
    if code:
        raise _bad_token(path, buf, int(pos), int(code), n_users, n_items)
    return Corpus(tokens, offsets, int(n_users), int(n_items))


def corpus_from_walks(
    walks: tuple[np.ndarray, np.ndarray] | list[np.ndarray], n_users: int, n_items: int
) -> Corpus:
    """A Corpus from in-memory walks of global ids: the ``(nodes, lengths)`` pair that
    :func:`mp2v4rec.walks.generate_walks` returns, or a list of 1-D arrays (``read_walks``)."""
    if isinstance(walks, tuple):
        nodes, lengths = (np.asarray(a) for a in walks)
        lengths = lengths.astype(np.int64)
        mask = np.arange(nodes.shape[1])[None, :] < lengths[:, None]
        tokens = nodes[mask]
    else:
        lengths = np.array([len(w) for w in walks], dtype=np.int64)
        tokens = np.concatenate([np.asarray(w) for w in walks]) if walks else np.zeros(0)
    keep = lengths > 0
    lengths = lengths[keep]
    n_nodes = n_users + n_items
    bad = (tokens < 0) | (tokens >= n_nodes)
    if bad.any():
        k = int(np.argmax(bad))
        walk = int(np.searchsorted(np.cumsum(lengths), k, side="right"))
        raise InputError(
            f"walk {walk}: node id {int(tokens[k])} is outside 0..{n_nodes - 1} "
            f"({n_users} users + {n_items} items)"
        )
    if tokens.size == 0:
        raise InputError("the training corpus is empty (no walks)")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Corpus(tokens.astype(np.int32), offsets, int(n_users), int(n_items))


# ---------------------------------------------------------------------------------------------
# negative sampler


@dataclass(frozen=True)
class NegativeSampler:
    """Alias tables of the negative pools: pool 0 users and pool 1 items (``typed``), or one
    pool of all nodes; only nodes that occur in the corpus, weight ``frequency**ns_exponent``."""

    table: np.ndarray  # uint64 [pool nodes, 2]: keep threshold, alias << 32 | node
    pool_start: np.ndarray  # int64 [2]
    pool_size: np.ndarray  # int64 [2]
    n_users: int
    typed: bool

    @classmethod
    def build(cls, freq: np.ndarray, n_users: int, *, typed: bool, ns_exponent: float):
        freq = np.asarray(freq)
        ids = np.arange(freq.size, dtype=np.int32)
        if typed:
            pools = [ids[:n_users][freq[:n_users] > 0], ids[n_users:][freq[n_users:] > 0]]
        else:
            pools = [ids[freq > 0], ids[:0]]
        sizes = np.array([p.size for p in pools], dtype=np.int64)
        indptr = np.array([0, sizes[0], sizes.sum()], dtype=np.int64)
        nodes = np.concatenate(pools)
        weights = (freq[nodes].astype(np.float64) ** float(ns_exponent)).astype(np.float32)
        table = np.empty((max(nodes.size, 1), 2), dtype=np.uint64)
        stack = np.empty(nodes.size, dtype=np.int64)
        tab = table[: nodes.size]
        _alias_table(indptr, weights, nodes, tab, tab.view(np.float64)[:, 0], stack)
        return cls(table, indptr[:2].copy(), sizes, int(n_users), bool(typed))

    def draw(self, contexts: np.ndarray, negative: int, seed: int) -> np.ndarray:
        """``negative`` draws for each of ``contexts`` (int64 [len, negative]), through the
        trainer's own draw function; for tests and checks."""
        contexts = np.ascontiguousarray(contexts, dtype=np.int64)
        out = np.empty((contexts.size, negative), dtype=np.int64)
        _draw_many(
            self.table,
            self.pool_start,
            self.pool_size,
            self.typed,
            np.int64(self.n_users),
            contexts,
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF),
            out,
        )
        return out


@njit(cache=True, inline="always")
def _draw(table, start, size, z):
    # high 32 bits pick the slot (multiply-shift), low 32 bits toss the alias coin
    j = start + np.int64(((z >> _S32) * np.uint64(size)) >> _S32)
    packed = table[j, 1]
    if (z & _LOW32) < table[j, 0]:
        return np.int64(packed & _LOW32)
    return np.int64(packed >> _S32)


@njit(cache=True, inline="always")
def _pool(typed, n_users, node):
    return 1 if typed and node >= n_users else 0


@njit(cache=True)
def _draw_many(table, pool_start, pool_size, typed, n_users, contexts, seed, out):
    state = _mix(seed ^ _SALT)
    for r in range(contexts.size):
        p = _pool(typed, n_users, contexts[r])
        for t in range(out.shape[1]):
            state += _GOLD
            out[r, t] = _draw(table, pool_start[p], pool_size[p], _mix(state))


# ---------------------------------------------------------------------------------------------
# loss, gradient and the update


def pair_loss_and_grad(
    table: np.ndarray, centres: np.ndarray, contexts: np.ndarray, negatives: np.ndarray
) -> tuple[float, np.ndarray]:
    """Loss and its gradient w.r.t. ``table`` for explicit pairs, in float64 numpy.

    ``loss = sum_p [softplus(-h_c . h_o) + sum_n softplus(h_c . h_n)]`` (softplus(-x) is
    ``-log s(x)``) over pairs ``p = (centres[p], contexts[p])`` with ``negatives[p]``; no
    clipping. The reference the kernel's update is tested against.
    """
    table = np.asarray(table, dtype=np.float64)
    c = np.asarray(centres, dtype=np.int64)
    targets = np.column_stack([np.asarray(contexts, np.int64), np.asarray(negatives, np.int64)])
    sign = np.ones(targets.shape[1])
    sign[0] = -1.0  # positive: softplus(-s); negatives: softplus(s)
    h_c = table[c]  # [P, d]
    h_t = table[targets]  # [P, 1 + k, d]
    s = np.einsum("pd,ptd->pt", h_c, h_t)
    loss = float(np.logaddexp(0.0, sign * s).sum())
    coef = sign / (1.0 + np.exp(-sign * s))  # d loss / d s = sign * sigmoid(sign * s)
    grad = np.zeros_like(table)
    np.add.at(grad, c, np.einsum("pt,ptd->pd", coef, h_t))
    np.add.at(grad, targets.ravel(), (coef[:, :, None] * h_c[:, None, :]).reshape(-1, h_c.shape[1]))
    return loss, grad


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _sigmoid_softplus(s):
    # linear interpolation in _CURVES after clipping s to +-MAX_SCORE
    u = (min(max(s, np.float32(-MAX_SCORE)), np.float32(MAX_SCORE)) + np.float32(MAX_SCORE)) * (
        np.float32(_BINS / (2 * MAX_SCORE))
    )
    k = min(np.int64(u), _BINS - 1)
    f = u - np.float32(k)
    sig = _CURVES[k, 0] + f * (_CURVES[k + 1, 0] - _CURVES[k, 0])
    sp = _CURVES[k, 1] + f * (_CURVES[k + 1, 1] - _CURVES[k, 1])
    return sig, sp


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _adam_row(rows, dim, row, scale, vec, lr):
    # gradient of the row = scale * vec; rows[row] = vector | m | v | beta1**t, beta2**t
    p1 = rows[row, 3 * dim] * np.float32(BETA1)
    p2 = rows[row, 3 * dim + 1] * np.float32(BETA2)
    rows[row, 3 * dim] = p1
    rows[row, 3 * dim + 1] = p2
    step = lr / (np.float32(1.0) - p1)
    inv = np.float32(1.0) / np.sqrt(np.float32(1.0) - p2)
    for d in range(dim):
        g = scale * vec[d]
        m = np.float32(BETA1) * rows[row, dim + d] + np.float32(1.0 - BETA1) * g
        v = np.float32(BETA2) * rows[row, 2 * dim + d] + np.float32(1.0 - BETA2) * g * g
        rows[row, dim + d] = m
        rows[row, 2 * dim + d] = v
        rows[row, d] -= step * m / (np.sqrt(v) * inv + np.float32(ADAM_EPS))


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _pair_step(rows, dim, c, targets, coefs, lr, adam, cbuf, gbuf):
    """One exact gradient step on the pair (c, targets[0]) with negatives targets[1:].

    ``rows[node, :dim]`` is the node's vector (for Adam followed by its state). Every score is
    computed from the rows as they are before the step; returns the pair's loss.
    """
    for d in range(dim):
        cbuf[d] = rows[c, d]
        gbuf[d] = 0.0
    loss = 0.0
    for t in range(targets.size):
        j = targets[t]
        s = np.float32(0.0)
        for d in range(dim):
            s += cbuf[d] * rows[j, d]
        sig, sp = _sigmoid_softplus(s)
        if t == 0:  # positive: loss softplus(-s) = softplus(s) - s, d/ds = sigmoid(s) - 1
            coef = sig - np.float32(1.0)
            loss += sp - min(max(s, np.float32(-MAX_SCORE)), np.float32(MAX_SCORE))
        else:  # negative: loss softplus(s), d/ds = sigmoid(s)
            coef = sig
            loss += sp
        coefs[t] = coef
        for d in range(dim):
            gbuf[d] += coef * rows[j, d]
    for t in range(targets.size):
        j = targets[t]
        coef = coefs[t]
        if adam:
            _adam_row(rows, dim, j, coef, cbuf, lr)
        else:
            a = lr * coef
            for d in range(dim):
                rows[j, d] -= a * cbuf[d]
    if adam:
        _adam_row(rows, dim, c, np.float32(1.0), gbuf, lr)
    else:
        for d in range(dim):
            rows[c, d] -= lr * gbuf[d]
    return loss


@njit(cache=True, fastmath=True, error_model="numpy")
def _apply_pairs_kernel(rows, dim, centres, contexts, negatives, lr, adam):
    k1 = negatives.shape[1] + 1
    cbuf = np.empty(dim, dtype=np.float32)
    gbuf = np.empty(dim, dtype=np.float32)
    coefs = np.empty(k1, dtype=np.float32)
    targets = np.empty(k1, dtype=np.int64)
    loss = 0.0
    for p in range(centres.size):
        targets[0] = contexts[p]
        for t in range(1, k1):
            targets[t] = negatives[p, t - 1]
        loss += _pair_step(rows, dim, centres[p], targets, coefs, lr, adam, cbuf, gbuf)
    return loss


def _rows(table: np.ndarray, adam: bool) -> np.ndarray:
    """The kernel's row storage: the vectors, for Adam followed by m, v, beta1**t, beta2**t."""
    if not adam:
        return np.ascontiguousarray(table, dtype=np.float32)
    n, dim = table.shape
    rows = np.zeros((n, 3 * dim + 2), dtype=np.float32)
    rows[:, :dim] = table
    rows[:, 3 * dim :] = 1.0
    return rows


def apply_pairs(
    table: np.ndarray,
    centres: np.ndarray,
    contexts: np.ndarray,
    negatives: np.ndarray,
    *,
    lr: float,
    optimizer: str = "sgd",
) -> float:
    """The training kernel's update on explicit pairs, in order, in place on the float32
    ``table`` (Adam from a fresh state); returns the summed loss. For tests and checks."""
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if table.dtype != np.float32 or not table.flags.c_contiguous:
        raise InputError("table must be a C-contiguous float32 array")
    rows = _rows(table, optimizer == "adam")
    loss = _apply_pairs_kernel(
        rows,
        np.int64(table.shape[1]),
        np.ascontiguousarray(centres, dtype=np.int64),
        np.ascontiguousarray(contexts, dtype=np.int64),
        np.ascontiguousarray(negatives, dtype=np.int64).reshape(len(centres), -1),
        np.float32(lr),
        optimizer == "adam",
    )
    if rows is not table:
        table[:] = rows[:, : table.shape[1]]
    return float(loss)


# ---------------------------------------------------------------------------------------------
# training


@njit(cache=True, inline="always")
def _walk_state(seed, epoch, walk):
    h = _mix(seed ^ _SALT)
    h = _mix(h + np.uint64(epoch) * _GOLD)
    return _mix(h ^ np.uint64(walk))


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _epoch_kernel(
    rows,
    dim,
    tokens,
    offsets,
    order,
    n_users,
    window,
    negative,
    typed,
    table,
    pool_start,
    pool_size,
    seed,
    epoch,
    epochs,
    alpha,
    min_alpha,
    adam,
    chunk_loss,
    chunk_pairs,
):
    n_walks = order.size
    total = float(n_walks) * epochs
    for ch in prange(chunk_loss.size):
        cbuf = np.empty(dim, dtype=np.float32)
        gbuf = np.empty(dim, dtype=np.float32)
        coefs = np.empty(negative + 1, dtype=np.float32)
        targets = np.empty(negative + 1, dtype=np.int64)
        loss = 0.0
        pairs = 0
        for r in range(ch * CHUNK, min((ch + 1) * CHUNK, n_walks)):
            w = order[r]
            lr = np.float32(alpha + (min_alpha - alpha) * ((epoch * n_walks + r) / total))
            state = _walk_state(seed, epoch, w)
            a = offsets[w]
            b = offsets[w + 1]
            for i in range(a, b):
                c = np.int64(tokens[i])
                for j in range(max(a, i - window), min(b, i + window + 1)):
                    if j == i:
                        continue
                    o = np.int64(tokens[j])
                    targets[0] = o
                    p = _pool(typed, n_users, o)
                    start = pool_start[p]
                    size = pool_size[p]
                    for t in range(1, negative + 1):
                        state += _GOLD
                        targets[t] = _draw(table, start, size, _mix(state))
                    loss += _pair_step(rows, dim, c, targets, coefs, lr, adam, cbuf, gbuf)
                    pairs += 1
        chunk_loss[ch] = loss
        chunk_pairs[ch] = pairs


def _check_number(name: str, value, minimum: float, strict: bool) -> None:
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        raise InputError(
            f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {value!r}"
        )


def check_params(params: dict) -> None:
    """Check the trainer's parameters (exactly :data:`PARAM_KEYS`) once, naming the bad key."""
    missing = [k for k in PARAM_KEYS if k not in params]
    unknown = [k for k in params if k not in PARAM_KEYS]
    if missing or unknown:
        raise InputError(
            f"shared skip-gram parameters: missing {missing}, unknown {unknown}; "
            f"expected exactly {list(PARAM_KEYS)}"
        )
    for key, minimum in (("dim", 1), ("window", 1), ("negative", 1), ("epochs", 1)):
        check_int(key, params[key], minimum)
    check_int("seed", params["seed"], -(2**63))
    if not isinstance(params["typed"], bool | np.bool_):
        raise InputError(f"typed must be true or false, got {params['typed']!r}")
    _check_number("ns_exponent", params["ns_exponent"], -math.inf, strict=True)
    if params["optimizer"] not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {OPTIMIZERS}, got {params['optimizer']!r}")
    _check_number("alpha", params["alpha"], 0.0, strict=True)
    _check_number("min_alpha", params["min_alpha"], 0.0, strict=False)
    if params["min_alpha"] > params["alpha"]:
        raise InputError(
            f"min_alpha ({params['min_alpha']}) must be <= alpha ({params['alpha']}): the "
            "learning rate decays from alpha to min_alpha (equal values keep it constant)"
        )
    _check_number("init_std", params["init_std"], 0.0, strict=True)


def _start(corpus: Corpus, params: dict):
    """The negative sampler and the initial rows (normal, std ``init_std``; zero for nodes
    absent from the corpus), with Adam's moments beside them when asked for."""
    freq = corpus.frequencies()
    present = freq > 0
    sampler = NegativeSampler.build(
        freq, corpus.n_users, typed=params["typed"], ns_exponent=params["ns_exponent"]
    )
    rng = np.random.default_rng(params["seed"] & 0xFFFFFFFFFFFFFFFF)
    emb = rng.standard_normal((corpus.n_nodes, params["dim"]), dtype=np.float32)
    emb *= np.float32(params["init_std"])
    emb[~present] = 0.0
    return sampler, _rows(emb, params["optimizer"] == "adam")


def _log_start(corpus: Corpus, params: dict, threads: int) -> None:
    present = corpus.frequencies() > 0
    log.info(
        "shared skip-gram: %d walks, %d tokens, %d/%d users and %d/%d items in the corpus, "
        "%d pairs per epoch; dim %d, window %d, negative %d (%s, ns_exponent %g), %s "
        "lr %g -> %g, %d epochs, %d threads",
        corpus.n_walks,
        corpus.tokens.size,
        int(present[: corpus.n_users].sum()),
        corpus.n_users,
        int(present[corpus.n_users :].sum()),
        corpus.n_items,
        corpus.pairs_per_epoch(params["window"]),
        params["dim"],
        params["window"],
        params["negative"],
        "typed" if params["typed"] else "untyped",
        params["ns_exponent"],
        params["optimizer"],
        params["alpha"],
        params["min_alpha"],
        params["epochs"],
        threads,
    )


def _run_epoch(rows, corpus: Corpus, sampler, params: dict, epoch: int, threads: int):
    """One pass over the walks in a new seeded order; returns (mean loss per positive pair,
    pairs, seconds)."""
    t0 = time.perf_counter()
    seed64 = params["seed"] & 0xFFFFFFFFFFFFFFFF
    n_chunks = (corpus.n_walks + CHUNK - 1) // CHUNK
    chunk_loss = np.zeros(n_chunks, dtype=np.float64)
    chunk_pairs = np.zeros(n_chunks, dtype=np.int64)
    order = np.random.default_rng([seed64, epoch]).permutation(corpus.n_walks)
    # chunks handed out one at a time (dynamic scheduling): a thread that loses its core to
    # another job does not hold up the epoch, as with numba's default static split
    with _Threads(threads):
        previous = numba.set_parallel_chunksize(1)
        try:
            _epoch_kernel(
                rows,
                np.int64(params["dim"]),
                corpus.tokens,
                corpus.offsets,
                order.astype(np.int64),
                np.int64(corpus.n_users),
                np.int64(params["window"]),
                np.int64(params["negative"]),
                bool(params["typed"]),
                sampler.table,
                sampler.pool_start,
                sampler.pool_size,
                np.uint64(seed64),
                np.int64(epoch),
                np.int64(params["epochs"]),
                float(params["alpha"]),
                float(params["min_alpha"]),
                params["optimizer"] == "adam",
                chunk_loss,
                chunk_pairs,
            )
        finally:
            numba.set_parallel_chunksize(previous)
    pairs = int(chunk_pairs.sum())
    return float(chunk_loss.sum() / max(pairs, 1)), pairs, time.perf_counter() - t0


def train_shared(
    corpus: Corpus,
    *,
    dim: int,
    window: int,
    negative: int,
    epochs: int,
    seed: int,
    typed: bool,
    ns_exponent: float,
    optimizer: str,
    alpha: float,
    min_alpha: float,
    init_std: float,
    threads: int = 1,
    on_epoch: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Train the single-table skip-gram on ``corpus`` (see the module docstring).

    ``dim``: vector size. ``window``: pairs up to this distance, both directions, never
    shrunk. ``negative``: negatives per positive pair. ``epochs``: passes over the walks, each
    in a new seeded order. ``seed``: initial table, orders and draws. ``typed``: negatives of
    the context's node type, else of any type. ``ns_exponent``: negatives ~ frequency**this
    (0 uniform, 0.75 word2vec). ``optimizer``: "adam" (lazy per-row Adam) or "sgd".
    ``alpha``/``min_alpha``: learning rate, decaying linearly from alpha to min_alpha over all
    epochs. ``init_std``: std of the normal initial rows.

    ``on_epoch(user_vectors, item_vectors) -> score`` (read-only views) is called after every
    epoch; the table of the best-scoring epoch is returned (ties: the earliest). Returns the
    float32 table ``[n_users + n_items, dim]`` (zero rows for nodes absent from the corpus) and
    the curve: one dict per epoch with ``epoch``, ``seconds`` (since the start), ``loss``
    (mean per positive pair, negatives included) and, with ``on_epoch``, ``valid_recall``.
    """
    params = dict(
        dim=dim,
        window=window,
        negative=negative,
        epochs=epochs,
        seed=seed,
        typed=typed,
        ns_exponent=ns_exponent,
        optimizer=optimizer,
        alpha=alpha,
        min_alpha=min_alpha,
        init_std=init_std,
    )
    check_params(params)
    started = time.perf_counter()
    n_users = corpus.n_users
    sampler, rows = _start(corpus, params)
    _log_start(corpus, params, threads)
    curve: list[dict] = []
    best_score, best = -math.inf, None
    for epoch in range(epochs):
        loss, pairs, seconds = _run_epoch(rows, corpus, sampler, params, epoch, threads)
        row = {"epoch": epoch + 1, "seconds": time.perf_counter() - started, "loss": loss}
        if on_epoch is not None:
            users, items = rows[:n_users, :dim], rows[n_users:, :dim]
            users.flags.writeable = items.flags.writeable = False
            row["valid_recall"] = score = float(on_epoch(users, items))
            if score > best_score:
                best_score, best = score, rows[:, :dim].copy()
        curve.append(row)
        log.info(
            "epoch %d/%d: loss %.4f, %.1f s (%.2fM pairs/s, %.2fM words/s)%s",
            epoch + 1,
            epochs,
            row["loss"],
            seconds,
            pairs / seconds / 1e6,
            corpus.tokens.size / seconds / 1e6,
            f", valid {row['valid_recall']:.4f}" if on_epoch is not None else "",
        )
    if best is None:
        best = np.ascontiguousarray(rows[:, :dim])
    else:
        kept = max(curve, key=lambda r: (r["valid_recall"], -r["epoch"]))["epoch"]
        log.info("kept epoch %d (valid %.4f)", kept, best_score)
    return best, curve


def fit_shared_method(
    corpus_file: str | os.PathLike,
    *,
    train: pl.DataFrame,
    valid: pl.DataFrame | None,
    n_users: int,
    n_items: int,
    params: dict,
    score: str = "dot",
    validation_k: int = 100,
    workers: int = 1,
):
    """Train MP2V with the shared-table objective on a walk file (``params``: :data:`PARAM_KEYS`;
    ``score``: dot, the trained proximity, or cosine).

    Same contract as :func:`mp2v4rec.embed.fit_skipgram_method`: returns user vectors
    (float32 ``[n_users, dim]``), item vectors (float32 ``[n_items, dim]``; zero for nodes absent
    from the corpus) and the curve as a polars frame (epoch, seconds, valid_recall when
    validating, loss). With ``valid`` given, Recall@``validation_k`` by ``score`` is measured
    after every epoch and the best epoch is kept.
    """
    from mp2v4rec.validation import Validator

    check_params(params)
    corpus = read_corpus(corpus_file, n_users, n_items)
    on_epoch = None
    if valid is not None and valid.height:
        validator = Validator.from_train(train, valid, n_users, n_items, k=validation_k)
        on_epoch = lambda users, items: validator(users, items, score)  # noqa: E731
    table, curve = train_shared(corpus, **params, threads=workers, on_epoch=on_epoch)
    columns = (
        ["epoch", "seconds", "valid_recall", "loss"] if on_epoch else ["epoch", "seconds", "loss"]
    )
    frame = pl.DataFrame(curve).select(columns)
    return (
        np.ascontiguousarray(table[:n_users]),
        np.ascontiguousarray(table[n_users:]),
        frame,
    )
