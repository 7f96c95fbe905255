"""UltraGCN (Mao et al., CIKM 2021) in numpy + numba: no PyTorch, hand-written Adam.

For a mini-batch of distinct train pairs ``(u_b, i_b)``, ``b = 1..B``, with ``m =
negative_num`` negatives ``j_bk`` drawn uniformly from the items ``u_b`` has not interacted
with, ``s(u, i) = e_u . e_i`` and ``softplus(x) = log(1 + exp(x))`` (so ``-log sigma(s) =
softplus(-s)`` and ``-log sigma(-s) = softplus(s)``), the batch loss is the *sum*

    L = sum_b [ (w1 + w2 beta(u_b, i_b)) softplus(-s(u_b, i_b))
                + nu / m * sum_k (w3 + w4 beta(u_b, j_bk)) softplus(s(u_b, j_bk)) ]    (L_O)
      + lambda * sum_b sum_{j in N(i_b)} omega(i_b, j) softplus(-s(u_b, j))            (L_I)
      + gamma * R                                                                    (L2)

with ``nu = negative_weight`` (the reference averages each user's weighted negative BCE over its
``m`` negatives, then scales by ``nu``), ``beta(u, i) = sqrt(d_u + 1) / d_u / sqrt(d_i + 1)``
(``d`` = degrees in the binary train matrix ``A``) and ``omega`` / ``N(i)`` the item-item
constraint of :func:`item_item_constraints`. ``R`` depends on ``l2_scope``:

- ``"batch"``: ``R = 1/2 sum_b (|e_{u_b}|^2 + |e_{i_b}|^2 + sum_k |e_{j_bk}|^2)``,
  counted once per occurrence in the batch (neighbour items of L_I are not included);
- ``"all"`` (default): ``R = 1/2 (|E_users|_F^2 + |E_items|_F^2)`` over the whole tables, what
  the authors' ``norm_loss`` computes (it sums the squares of every parameter, halved).

Two choices differ from the authors' code defaults: the item-item graph's diagonal is zeroed
(their ``ii_diagonal_zero`` defaults to False) and negatives always exclude the user's train
items (their ``sampling_sift_pos`` switch). Optimisation follows the reference: dense Adam (torch
defaults betas 0.9/0.999, eps 1e-8, bias correction), so rows absent from a batch still move with
their momentum. Each epoch shuffles the train pairs and draws fresh negatives from one seeded
``numpy`` Generator. Embeddings are scored by dot product.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numba
import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.config import defaults
from mp2v4rec.io import InputError
from mp2v4rec.models import Embeddings
from mp2v4rec.recommend import seen_matrix
from mp2v4rec.validation import Validator

log = logging.getLogger(__name__)

L2_SCOPES = ("batch", "all")
DEFAULTS = defaults("ultragcn")
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


@dataclass
class UltraGCNConfig:
    """Hyper-parameters; the defaults (the config schema's) are the study's KuaiRec run."""

    dim: int = DEFAULTS["dim"]
    w1: float = DEFAULTS["w1"]
    w2: float = DEFAULTS["w2"]
    w3: float = DEFAULTS["w3"]
    w4: float = DEFAULTS["w4"]
    negative_num: int = DEFAULTS["negative_num"]
    negative_weight: float = DEFAULTS["negative_weight"]
    gamma: float = DEFAULTS["gamma"]
    lambda_: float = DEFAULTS["lambda"]
    ii_neighbor_num: int = DEFAULTS["ii_neighbor_num"]
    init_std: float = DEFAULTS["init_std"]
    lr: float = DEFAULTS["lr"]
    batch_size: int = DEFAULTS["batch_size"]
    epochs: int = DEFAULTS["epochs"]
    patience_steps: int = DEFAULTS["patience_steps"]  # steps since the best validation epoch
    k: int = 100  # validation Recall@k drives early stopping
    seed: int = DEFAULTS["seed"]
    l2_scope: str = DEFAULTS["l2_scope"]  # "all": the reference code penalises whole tables

    def __post_init__(self):
        positive_int = ("dim", "negative_num", "batch_size", "epochs", "patience_steps", "k")
        for name in (*positive_int, "ii_neighbor_num", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InputError(f"ultragcn.{name} must be an integer, got {value!r}")
            if value < (1 if name in positive_int else 0):
                limit = ">= 1" if name in positive_int else ">= 0"
                raise InputError(f"ultragcn.{name} must be {limit}, got {value}")
        nonneg = ("w1", "w2", "w3", "w4", "negative_weight", "gamma", "lambda_")
        for name in (*nonneg, "init_std", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise InputError(f"ultragcn.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise InputError(f"ultragcn.{name} must be finite and >= 0 (lr > 0), got {value}")
        if self.l2_scope not in L2_SCOPES:
            raise InputError(f"ultragcn.l2_scope must be one of {list(L2_SCOPES)}")


@dataclass
class UltraGCNConstraints:
    """Graph-derived constants: ``beta(u, i) = beta_user[u] * beta_item[i]``; item neighbours."""

    beta_user: np.ndarray  # float64 [n_users]: sqrt(d_u + 1) / d_u (0 when d_u = 0)
    beta_item: np.ndarray  # float64 [n_items]: 1 / sqrt(d_i + 1)
    ii_neighbors: np.ndarray  # int32 [n_items, K], -1 = no neighbour
    ii_weights: np.ndarray  # float64 [n_items, K], 0 for padding


def _binary(interactions: sp.spmatrix) -> sp.csr_matrix:
    A = sp.csr_matrix(interactions, dtype=np.float64)
    A.data[:] = 1.0
    A.sum_duplicates()
    A.data[:] = 1.0
    A.eliminate_zeros()
    return A


def ultragcn_betas(interactions: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(beta_user, beta_item)`` from the user x item train matrix (entries count as 1)."""
    A = _binary(interactions)
    d_user = np.diff(A.indptr).astype(np.float64)
    d_item = np.bincount(A.indices, minlength=A.shape[1]).astype(np.float64)
    with np.errstate(divide="ignore"):
        beta_user = np.where(d_user > 0, np.sqrt(d_user + 1) / d_user, 0.0)
    return beta_user, 1.0 / np.sqrt(d_item + 1)


@numba.njit(cache=True)
def _item_neighbors(a_indptr, a_indices, at_indptr, at_indices, left, right, K):
    """Per item row of ``G = A^T A``: accumulate the row densely, keep the best ``K`` omegas."""
    n_items = at_indptr.size - 1
    neighbors = np.full((n_items, K), -1, dtype=np.int32)
    weights = np.zeros((n_items, K), dtype=np.float64)
    acc = np.zeros(n_items, dtype=np.float64)
    touched = np.empty(n_items, dtype=np.int64)
    for i in range(n_items):
        n_touched = 0
        for p in range(at_indptr[i], at_indptr[i + 1]):
            u = at_indices[p]
            for q in range(a_indptr[u], a_indptr[u + 1]):
                j = a_indices[q]
                if acc[j] == 0:
                    touched[n_touched] = j
                    n_touched += 1
                acc[j] += 1.0
        count = 0
        for t in range(n_touched):
            j = touched[t]
            omega = acc[j] * left[i] * right[j]
            acc[j] = 0.0
            if j == i or omega <= 0:
                continue
            # insertion point: after every kept (w, n) with w > omega or (w == omega, n < j)
            pos = count
            while pos > 0 and (
                weights[i, pos - 1] < omega
                or (weights[i, pos - 1] == omega and neighbors[i, pos - 1] > j)
            ):
                pos -= 1
            if pos >= K:
                continue
            for s in range(min(count, K - 1), pos, -1):
                weights[i, s] = weights[i, s - 1]
                neighbors[i, s] = neighbors[i, s - 1]
            weights[i, pos] = omega
            neighbors[i, pos] = j
            count = min(count + 1, K)
    return neighbors, weights


def item_item_constraints(
    interactions: sp.spmatrix, num_neighbors: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``num_neighbors`` item neighbours by ``omega`` and their weights.

    ``G = A^T A`` (co-occurrence of the binary matrix ``A``) with a zeroed diagonal, ``g`` its
    row sums and ``omega_ij = G_ij sqrt(g_i + 1) / g_i / sqrt(g_j + 1)``. Only ``omega > 0``
    qualifies; rows are best first, equal weights by lower item index, padded with item -1 and
    weight 0. ``G`` is never stored: each row is accumulated and reduced to its top neighbours.
    """
    A = _binary(interactions)
    A.sort_indices()
    n_items = A.shape[1]
    d_user = np.diff(A.indptr).astype(np.float64)
    d_item = np.bincount(A.indices, minlength=n_items).astype(np.float64)
    g = A.T @ d_user - d_item  # row sums of A^T A without its diagonal (A is binary)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(g > 0, np.sqrt(g + 1) / g, 0.0)
    right = 1.0 / np.sqrt(g + 1)
    AT = A.T.tocsr()
    return _item_neighbors(
        A.indptr, A.indices, AT.indptr, AT.indices, left, right, int(num_neighbors)
    )


def build_constraints(interactions: sp.spmatrix, num_neighbors: int) -> UltraGCNConstraints:
    beta_user, beta_item = ultragcn_betas(interactions)
    neighbors, weights = item_item_constraints(interactions, num_neighbors)
    return UltraGCNConstraints(beta_user, beta_item, neighbors, weights)


@numba.njit(cache=True)
def _sample_negatives(indptr, indices, users, uniforms, n_items):
    """Map uniforms in [0, 1) to items each user has not interacted with (uniformly).

    The r-th item missing from a sorted row ``P`` is ``r + #{t : P[t] - t <= r}``, found by
    binary search since ``P[t] - t`` is non-decreasing. Users holding every item get -1.
    """
    n, m = uniforms.shape
    out = np.empty((n, m), dtype=np.int32)
    for b in range(n):
        lo = indptr[users[b]]
        d = indptr[users[b] + 1] - lo
        n_free = n_items - d
        for k in range(m):
            if n_free <= 0:
                out[b, k] = -1
                continue
            r = min(int(uniforms[b, k] * n_free), n_free - 1)
            a, z = 0, d
            while a < z:
                mid = (a + z) // 2
                if indices[lo + mid] - mid <= r:
                    a = mid + 1
                else:
                    z = mid
            out[b, k] = r + a
    return out


def sample_negatives(
    interactions: sp.csr_matrix, users: np.ndarray, m: int, rng: np.random.Generator
) -> np.ndarray:
    """``int32 [len(users), m]`` items drawn uniformly outside each user's train items."""
    A = sp.csr_matrix(interactions)
    A.sort_indices()
    uniforms = rng.random((len(users), m))
    return _sample_negatives(A.indptr, A.indices, np.asarray(users), uniforms, A.shape[1])


@numba.njit(inline="always")
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@numba.njit(inline="always")
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(inline="always")
def _pair(U, V, gU, gV, u, i, coef, sign):
    """Add ``coef * softplus(sign * s)`` for ``s = U[u].V[i]`` to the grads; return the loss."""
    d = U.shape[1]
    s = 0.0
    for c in range(d):
        s += U[u, c] * V[i, c]
    g = coef * sign * _sigmoid(sign * s)  # d/ds of coef * softplus(sign * s)
    for c in range(d):
        gU[u, c] += g * V[i, c]
        gV[i, c] += g * U[u, c]
    return coef * _softplus(sign * s)


@numba.njit(inline="always")
def _l2(X, gX, r, gamma):
    total = 0.0
    for c in range(X.shape[1]):
        total += X[r, c] * X[r, c]
        gX[r, c] += gamma * X[r, c]
    return 0.5 * gamma * total


@numba.njit(cache=True)
def _loss_grad_kernel(
    U, V, users, pos, neg, beta_u, beta_i, nbr, nbr_w, w, neg_weight, lam, gamma_batch, gU, gV
):
    """Batch loss (L_O + lambda L_I + batch-scope L2); gradients *added* to gU, gV."""
    m = neg.shape[1]
    loss = 0.0
    for b in range(users.shape[0]):
        u, i = users[b], pos[b]
        loss += _pair(U, V, gU, gV, u, i, w[0] + w[1] * beta_u[u] * beta_i[i], -1.0)
        for k in range(m):
            j = neg[b, k]
            if j >= 0:
                coef = (w[2] + w[3] * beta_u[u] * beta_i[j]) * neg_weight / m
                loss += _pair(U, V, gU, gV, u, j, coef, 1.0)
        if lam > 0:
            for n in range(nbr.shape[1]):
                j = nbr[i, n]
                if j >= 0 and nbr_w[i, n] > 0:
                    loss += _pair(U, V, gU, gV, u, j, lam * nbr_w[i, n], -1.0)
        if gamma_batch > 0:
            loss += _l2(U, gU, u, gamma_batch) + _l2(V, gV, i, gamma_batch)
            for k in range(m):
                if neg[b, k] >= 0:
                    loss += _l2(V, gV, neg[b, k], gamma_batch)
    return loss


def _loss_into(params, batch, constraints, cfg, gU, gV) -> float:
    U, V = params
    users, pos, neg = batch
    neg = np.asarray(neg).reshape(len(users), -1)
    w = np.array([cfg.w1, cfg.w2, cfg.w3, cfg.w4], dtype=np.float64)
    batch_scope = cfg.l2_scope == "batch"
    loss = _loss_grad_kernel(
        U,
        V,
        np.asarray(users),
        np.asarray(pos),
        neg,
        constraints.beta_user,
        constraints.beta_item,
        constraints.ii_neighbors,
        constraints.ii_weights,
        w,
        float(cfg.negative_weight),
        float(cfg.lambda_),
        float(cfg.gamma) if batch_scope else 0.0,
        gU,
        gV,
    )
    if not batch_scope and cfg.gamma > 0:
        loss += 0.5 * cfg.gamma * (float(np.vdot(U, U)) + float(np.vdot(V, V)))
        gU += cfg.gamma * U
        gV += cfg.gamma * V
    return float(loss)


def ultragcn_loss_and_grads(
    params: tuple[np.ndarray, np.ndarray],
    batch: tuple[np.ndarray, np.ndarray, np.ndarray],
    constraints: UltraGCNConstraints,
    cfg: UltraGCNConfig,
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """Loss of one batch (the module docstring's ``L``) and its gradient, as a pure function.

    ``params = (user_vectors, item_vectors)``; ``batch = (users [B], pos_items [B],
    neg_items [B, m])`` (negative -1 = none). Gradients are dense, with the params' dtype.
    """
    U, V = params
    gU, gV = np.zeros_like(U), np.zeros_like(V)
    loss = _loss_into(params, batch, constraints, cfg, gU, gV)
    return loss, (gU, gV)


@numba.njit(cache=True)
def _adam_step(p, g, m, v, lr, t):
    """One torch-style Adam update of ``p`` in place (dense: every entry moves)."""
    bc1 = 1.0 - ADAM_BETA1**t
    sqrt_bc2 = math.sqrt(1.0 - ADAM_BETA2**t)
    step = lr / bc1
    for r in range(p.shape[0]):
        for c in range(p.shape[1]):
            gi = g[r, c]
            m[r, c] = ADAM_BETA1 * m[r, c] + (1.0 - ADAM_BETA1) * gi
            v[r, c] = ADAM_BETA2 * v[r, c] + (1.0 - ADAM_BETA2) * gi * gi
            p[r, c] -= step * m[r, c] / (math.sqrt(v[r, c]) / sqrt_bc2 + ADAM_EPS)


def _epoch(params, grads, state, pairs, constraints, cfg, step):
    """One pass of mini-batches with Adam; returns the summed loss and the step count."""
    (U, V), (gU, gV), (users, items, negs) = params, grads, pairs
    total = 0.0
    for start in range(0, users.size, cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        gU.fill(0.0)
        gV.fill(0.0)
        total += _loss_into((U, V), (users[sl], items[sl], negs[sl]), constraints, cfg, gU, gV)
        step += 1
        _adam_step(U, gU, state[0], state[1], cfg.lr, step)
        _adam_step(V, gV, state[2], state[3], cfg.lr, step)
    return total, step


def train_ultragcn(
    train: pl.DataFrame,
    n_users: int,
    n_items: int,
    valid: pl.DataFrame | None,
    cfg: UltraGCNConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """Train UltraGCN; return ``(user_vectors, item_vectors, curve)`` of the best epoch.

    Each epoch is scored by Recall@``cfg.k`` on ``valid`` (train items masked); training stops
    once ``cfg.patience_steps`` optimiser steps have passed since the best epoch (counted in
    steps, not epochs, so a small dataset with few batches per epoch is not stopped after a
    handful of updates) and the best epoch's float32 vectors are returned. Without ``valid``
    (None, empty, or only cold pairs) all epochs run, the last one is returned and
    ``valid_recall`` is NaN. ``curve``: epoch (from 1), loss (epoch's summed batch losses per
    train pair), valid_recall.
    """
    cfg = cfg or UltraGCNConfig()
    A = seen_matrix(train, n_users, n_items)
    A.sort_indices()
    if A.nnz == 0:
        raise InputError("ultragcn: the train table has no interactions")
    constraints = build_constraints(A, cfg.ii_neighbor_num)
    pair_users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(A.indptr))
    pair_items = A.indices.astype(np.int32)
    n_pairs = pair_items.size
    validator = Validator(valid, A, k=cfg.k) if valid is not None and valid.height else None
    use_valid = validator is not None and validator.users.size > 0  # not every pair cold

    rng = np.random.default_rng(cfg.seed)
    U = (rng.standard_normal((n_users, cfg.dim)) * cfg.init_std).astype(np.float32)
    V = (rng.standard_normal((n_items, cfg.dim)) * cfg.init_std).astype(np.float32)
    gU, gV = np.zeros_like(U), np.zeros_like(V)
    state = [np.zeros_like(x) for x in (U, U, V, V)]  # Adam m, v for users then items
    log.info(
        "ultragcn: %d users, %d items, %d train pairs; %s", n_users, n_items, n_pairs, asdict(cfg)
    )

    best = (-np.inf, 0, U.copy(), V.copy())
    curve, step, best_step = [], 0, 0
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(n_pairs)
        users, items = pair_users[order], pair_items[order]
        negs = _sample_negatives(
            A.indptr, A.indices, users, rng.random((n_pairs, cfg.negative_num)), n_items
        )
        total, step = _epoch((U, V), (gU, gV), state, (users, items, negs), constraints, cfg, step)
        if not (np.isfinite(total) and np.isfinite(U).all() and np.isfinite(V).all()):
            raise InputError(f"ultragcn diverged at epoch {epoch} (loss {total}); lower lr")
        recall = validator(U, V, "dot") if use_valid else float("nan")
        curve.append((epoch, total / n_pairs, recall))
        log.info(
            "ultragcn epoch %d/%d: loss %.5f, valid recall@%d %.5f",
            epoch,
            cfg.epochs,
            total / n_pairs,
            cfg.k,
            recall,
        )
        if not use_valid or recall > best[0]:
            best, best_step = (recall, epoch, U.copy(), V.copy()), step
        elif step - best_step >= cfg.patience_steps:
            log.info("ultragcn: early stop; best epoch %d (recall %.5f)", best[1], best[0])
            break
    frame = pl.DataFrame(
        curve,
        schema={"epoch": pl.Int64, "loss": pl.Float64, "valid_recall": pl.Float64},
        orient="row",
    )
    return best[2], best[3], frame


def fit(data, settings):
    """The registry's fit: UltraGCN vectors of the best validation epoch, scored by dot."""
    params = {k: v for k, v in settings.items() if k not in ("kind", "lambda")}
    cfg = UltraGCNConfig(**params, lambda_=settings["lambda"], k=data.validation_k)
    users, items, curve = train_ultragcn(data.train, data.n_users, data.n_items, data.valid, cfg)
    return Embeddings(users, items, "dot", curve)
