"""Tests of the numpy/numba UltraGCN: constraints, sampler, loss and gradient, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from planted import frame, planted

from mp2v4rec.baselines.simple import popularity_embeddings
from mp2v4rec.baselines.ultragcn import (
    UltraGCNConfig,
    build_constraints,
    item_item_constraints,
    sample_negatives,
    train_ultragcn,
    ultragcn_betas,
    ultragcn_loss_and_grads,
)
from mp2v4rec.io import InputError
from mp2v4rec.recommend import seen_matrix
from mp2v4rec.validation import Validator


@pytest.fixture(scope="module")
def planted_data():
    return planted()


def test_betas_hand_computed():
    # degrees: users 2, 1, 2; items 3, 1, 1 (the duplicate (0, 0) counts once)
    A = seen_matrix(frame([(0, 0), (0, 1), (1, 0), (2, 0), (2, 2), (0, 0)]), 3, 4)
    beta_user, beta_item = ultragcn_betas(A)
    np.testing.assert_allclose(beta_user, [math.sqrt(3) / 2, math.sqrt(2), math.sqrt(3) / 2])
    np.testing.assert_allclose(beta_item, [1 / 2, 1 / math.sqrt(2), 1 / math.sqrt(2), 1.0])
    # beta(u=0, i=1) = sqrt(d_u + 1) / d_u / sqrt(d_i + 1)
    assert beta_user[0] * beta_item[1] == pytest.approx(math.sqrt(3) / 2 / math.sqrt(2))


def test_item_item_weights_hand_computed():
    # items' users: 0 {0, 1}, 1 {0, 1, 2}, 2 {0, 3}, 3 {2}
    pairs = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 3), (3, 2)]
    A = seen_matrix(frame(pairs), 4, 4)
    # G (zero diagonal): G01 = 2, G02 = 1, G12 = 1, G13 = 1; row sums g = 3, 4, 2, 1
    g = [3, 4, 2, 1]

    def omega(i, j, gij):
        return gij * math.sqrt(g[i] + 1) / g[i] / math.sqrt(g[j] + 1)

    nbr, w = item_item_constraints(A, 2)
    np.testing.assert_array_equal(nbr, [[1, 2], [0, 3], [0, 1], [1, -1]])
    expected = [
        [omega(0, 1, 2), omega(0, 2, 1)],
        [omega(1, 0, 2), omega(1, 3, 1)],  # omega(1, 3) = 0.395 > omega(1, 2) = 0.323
        [omega(2, 0, 1), omega(2, 1, 1)],
        [omega(3, 1, 1), 0.0],
    ]
    np.testing.assert_allclose(w, expected)
    assert omega(1, 3, 1) > omega(1, 2, 1)

    # equal weights: lower item first; more neighbours than exist: padding
    nbr, w = item_item_constraints(seen_matrix(frame([(0, 0), (0, 1), (0, 2)]), 1, 3), 1)
    np.testing.assert_array_equal(nbr, [[1], [0], [0]])
    np.testing.assert_allclose(w, 0.5)
    nbr, w = item_item_constraints(seen_matrix(frame([(0, 0), (0, 1), (0, 2)]), 1, 4), 5)
    assert nbr.shape == (4, 5) and (nbr[3] == -1).all() and (w[3] == 0).all()
    np.testing.assert_array_equal(nbr[0], [1, 2, -1, -1, -1])


def test_item_item_matches_dense_computation():
    dense = np.random.default_rng(2).random((40, 30)) < 0.2
    dense[:, 7] = False  # an item nobody saw
    dense[3, :] = False  # a user who saw nothing
    A = sp.csr_matrix(dense)
    G = dense.T.astype(np.float64) @ dense
    np.fill_diagonal(G, 0)
    g = G.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        omega = G * (np.sqrt(g + 1) / g)[:, None] / np.sqrt(g + 1)[None, :]
    nbr, w = item_item_constraints(A, 6)
    for i in range(30):
        ranked = sorted((j for j in range(30) if G[i, j] > 0), key=lambda j: (-omega[i, j], j))
        ranked = ranked[:6]
        np.testing.assert_array_equal(nbr[i, : len(ranked)], ranked)
        np.testing.assert_allclose(w[i, : len(ranked)], omega[i, ranked], rtol=1e-12)
        assert (nbr[i, len(ranked) :] == -1).all() and (w[i, len(ranked) :] == 0).all()
    assert (nbr[7] == -1).all()


def test_negatives_never_positive():
    rng = np.random.default_rng(0)
    A = sp.random(30, 25, density=0.5, random_state=3, format="csr") > 0
    A = sp.csr_matrix(A)
    users = np.repeat(np.arange(30, dtype=np.int32), 200)
    neg = sample_negatives(A, users, 3, rng)
    dense = A.toarray()
    assert neg.shape == (6000, 3) and neg.min() >= 0
    assert not dense[users[:, None], neg].any()
    for u in range(30):  # every non-positive item is reachable
        assert set(np.unique(neg[users == u])) == set(np.flatnonzero(~dense[u]))
    full = sp.csr_matrix(np.ones((1, 4), dtype=bool))
    np.testing.assert_array_equal(sample_negatives(full, np.array([0]), 2, rng), [[-1, -1]])


def _problem():
    rng = np.random.default_rng(5)
    pairs = [(0, 0), (0, 1), (0, 3), (1, 1), (1, 2), (2, 0), (2, 4), (2, 5), (3, 6), (4, 3)]
    pairs += [(4, 5), (4, 1), (3, 5)]
    A = seen_matrix(frame(pairs), 5, 7)
    constraints = build_constraints(A, 3)
    U = rng.normal(0, 0.5, (5, 4))
    V = rng.normal(0, 0.5, (7, 4))
    users = np.array([0, 0, 1, 2, 4, 4, 3], dtype=np.int32)  # repeated users and items
    pos = np.array([1, 3, 2, 5, 3, 1, 6], dtype=np.int32)
    neg = sample_negatives(A, users, 2, rng)
    return (U, V), (users, pos, neg), constraints


CFG = dict(w1=0.7, w2=1.3, w3=0.4, w4=2.1, negative_weight=1.7, lambda_=0.6, gamma=0.3)


@pytest.mark.parametrize("scope", ["batch", "all"])
def test_loss_matches_formula(scope):
    (U, V), (users, pos, neg), c = _problem()
    cfg = UltraGCNConfig(**CFG, negative_num=2, l2_scope=scope)
    loss, _ = ultragcn_loss_and_grads((U, V), (users, pos, neg), c, cfg)

    def softplus(x):
        return np.log1p(np.exp(x))

    beta = c.beta_user[:, None] * c.beta_item[None, :]
    s_pos = np.sum(U[users] * V[pos], axis=1)
    s_neg = np.einsum("bd,bkd->bk", U[users], V[neg])
    expected = np.sum((0.7 + 1.3 * beta[users, pos]) * softplus(-s_pos))
    expected += 1.7 * np.sum(np.mean((0.4 + 2.1 * beta[users[:, None], neg]) * softplus(s_neg), 1))
    nbr, w = c.ii_neighbors[pos], c.ii_weights[pos]
    s_nbr = np.einsum("bd,bnd->bn", U[users], V[np.maximum(nbr, 0)])
    expected += 0.6 * np.sum(np.where(nbr >= 0, w * softplus(-s_nbr), 0.0))
    if scope == "batch":
        sq = np.sum(U[users] ** 2) + np.sum(V[pos] ** 2) + np.sum(V[neg] ** 2)
    else:
        sq = np.sum(U**2) + np.sum(V**2)
    expected += 0.3 * 0.5 * sq
    assert (c.ii_weights > 0).sum() > 5  # the item-item term is exercised
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scope", ["batch", "all"])
def test_gradient_finite_differences(scope):
    params, batch, c = _problem()
    cfg = UltraGCNConfig(**CFG, negative_num=2, l2_scope=scope)
    _, (gU, gV) = ultragcn_loss_and_grads(params, batch, c, cfg)
    analytic = np.concatenate([gU.ravel(), gV.ravel()])
    flat = np.concatenate([p.ravel() for p in params])
    n_u = params[0].size
    eps = 1e-6

    def loss_at(x):
        U, V = x[:n_u].reshape(params[0].shape), x[n_u:].reshape(params[1].shape)
        return ultragcn_loss_and_grads((U, V), batch, c, cfg)[0]

    numeric = np.empty_like(flat)
    for p in range(flat.size):
        step = np.zeros_like(flat)
        step[p] = eps
        numeric[p] = (loss_at(flat + step) - loss_at(flat - step)) / (2 * eps)
    assert np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric) < 1e-4
    assert np.count_nonzero(gV.any(axis=1)) >= 6  # most rows get gradient


def test_config_rejects_bad_values():
    with pytest.raises(InputError, match="negative_num"):
        UltraGCNConfig(negative_num=0)
    with pytest.raises(InputError, match="l2_scope"):
        UltraGCNConfig(l2_scope="none")
    with pytest.raises(InputError, match="lr"):
        UltraGCNConfig(lr=0.0)


def test_seeded_reproducibility(planted_data):
    train, valid, n_users, n_items = planted_data
    cfg = UltraGCNConfig(epochs=2, batch_size=1024, k=20, seed=4)
    U1, V1, c1 = train_ultragcn(train, n_users, n_items, valid, cfg)
    U2, V2, c2 = train_ultragcn(train, n_users, n_items, valid, cfg)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)
    assert c1.equals(c2)
    U3, _, _ = train_ultragcn(train, n_users, n_items, valid, UltraGCNConfig(epochs=2, seed=5))
    assert not np.array_equal(U1, U3)
    assert U1.dtype == np.float32 and U1.shape == (n_users, 50) and V1.shape == (n_items, 50)


def test_beats_popularity_and_keeps_best_epoch(planted_data):
    train, valid, n_users, n_items = planted_data
    seen = seen_matrix(train, n_users, n_items)
    pop_u, pop_v, _ = popularity_embeddings(train, n_users, n_items)
    pop = Validator(valid, seen, k=20)(pop_u, pop_v, "dot")

    steps_per_epoch = -(-train.height // 512)
    cfg = UltraGCNConfig(batch_size=512, epochs=60, patience_steps=3 * steps_per_epoch, k=20)
    U, V, curve = train_ultragcn(train, n_users, n_items, valid, cfg)
    assert curve.columns == ["epoch", "loss", "valid_recall"]
    assert curve["loss"][-1] < curve["loss"][0]
    best_row = int(curve["valid_recall"].arg_max())
    best = curve["valid_recall"][best_row]
    assert best > pop + 0.08, (best, pop)
    # the returned vectors are the best epoch's, and training stopped 3 epochs (of steps) later
    assert Validator(valid, seen, k=20)(U, V, "dot") == best
    assert curve.height == best_row + 1 + 3 < cfg.epochs


def test_patience_counts_optimiser_steps_not_epochs(planted_data, monkeypatch):
    """Two batches an epoch: early stopping waits patience_steps updates, not a few epochs."""
    train, valid, n_users, n_items = planted_data
    recalls = iter([0.5] + [0.1] * 100)  # epoch 1 is the best, then no progress
    monkeypatch.setattr(Validator, "__call__", lambda self, *args: next(recalls))
    cfg = UltraGCNConfig(batch_size=-(-train.height // 2), epochs=50, patience_steps=10, k=20)
    _, _, curve = train_ultragcn(train, n_users, n_items, valid, cfg)
    assert curve.height == 6  # best at step 2, stopped at step 12 = 2 + 10 (epoch 6)


def test_without_validation_runs_every_epoch(planted_data):
    train, _, n_users, n_items = planted_data
    U, V, curve = train_ultragcn(train, n_users, n_items, None, UltraGCNConfig(epochs=2))
    assert curve["epoch"].to_list() == [1, 2] and curve["valid_recall"].is_nan().all()
    assert np.isfinite(U).all() and np.isfinite(V).all()


def test_empty_train_is_refused():
    with pytest.raises(InputError, match="no interactions"):
        train_ultragcn(frame([]), 3, 3, None)
