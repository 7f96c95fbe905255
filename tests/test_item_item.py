"""Tests of the item-item kinds (EASE, RP3beta, ItemKNN) and their model type."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from planted import frame, planted

from mp2v4rec.baselines import ease, itemknn, rp3beta
from mp2v4rec.config import defaults
from mp2v4rec.io import InputError
from mp2v4rec.models import FitData, ItemItem, load_item_item
from mp2v4rec.protocols import seeded_lists
from mp2v4rec.recommend import rank_users, seen_matrix

# users' items: 0 {0, 1}, 1 {0, 1, 2}, 2 {1}, 3 {2}; item columns i0 = u{0,1}, i1 = u{0,1,2},
# i2 = u{1,3}: |i0| = |i2| = sqrt 2, |i1| = sqrt 3; i0.i1 = 2, i0.i2 = i1.i2 = 1
TOY = frame([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (3, 2)])
X = seen_matrix(TOY, 4, 3)


def dense(W):
    return W.toarray() if sp.issparse(W) else np.asarray(W)


# ---------------------------------------------------------------- ItemKNN


def test_itemknn_hand_computed_with_shrink_and_one_neighbour():
    s01 = 2 / (math.sqrt(6) + 1)  # cosine(i0, i1) with shrink 1
    s02 = 1 / (2 + 1)  # cosine(i0, i2)
    s12 = 1 / (math.sqrt(6) + 1)  # cosine(i1, i2)
    full = dense(itemknn.cosine_weights(X, k_neighbors=None, shrink=1.0))
    np.testing.assert_allclose(full, [[0, s01, s02], [s01, 0, s12], [s02, s12, 0]], rtol=1e-6)
    # one neighbour per target item (column): i1 for i0, i0 for i1, i0 for i2 (1/3 > s12)
    W = dense(itemknn.cosine_weights(X, k_neighbors=1, shrink=1.0))
    np.testing.assert_allclose(W, [[0, s01, s02], [s01, 0, 0], [0, 0, 0]], rtol=1e-6)


def test_itemknn_scores_and_neighbours():
    model = itemknn.fit(FitData(TOY, 4, 3), {"k_neighbors": 1, "shrink": 1.0})
    s01 = 2 / (math.sqrt(6) + 1)
    scores = model.scorer(TOY, 4, 3)(np.array([2, 3]))
    np.testing.assert_allclose(scores, [[s01, 0, 0], [0, 0, 0]], rtol=1e-6)
    idx, vals = model.neighbours(np.array([0, 2]), 2)
    # i0's row: i1 then i2; i2's row is empty (no kept weight): no neighbours, not zeros
    np.testing.assert_array_equal(idx, [[1, 2], [-1, -1]])
    assert vals[0, 0] == pytest.approx(s01) and np.isneginf(vals[1]).all()


# ---------------------------------------------------------------- RP3beta


def test_rp3beta_hand_computed():
    """P_iu rows: i0 (u0, u1) 1/2 each, i1 (u0, u1, u2) 1/3, i2 (u1, u3) 1/2; P_ui rows: u0 1/2,
    u1 1/3, u2 and u3 1. (P_iu P_ui) rows: i0 [5/12, 5/12, 1/6], i1 [5/18, 11/18, 1/9],
    i2 [1/6, 1/6, 2/3]; columns divided by popularity ** 0.5 (2, 3, 2); diagonal zeroed."""
    W = dense(rp3beta.rp3beta_weights(X, alpha=1.0, beta=0.5, k_neighbors=None))
    r2, r3 = math.sqrt(2), math.sqrt(3)
    want = [[0, 5 / 12 / r3, 1 / 6 / r2], [5 / 18 / r2, 0, 1 / 9 / r2], [1 / 6 / r2, 1 / 6 / r3, 0]]
    np.testing.assert_allclose(W, want, rtol=1e-6)
    # alpha 2 squares the transition probabilities: i2 -> u1 -> i0 is (1/2)^2 (1/3)^2
    W2 = dense(rp3beta.rp3beta_weights(X, alpha=2.0, beta=0.0, k_neighbors=None))
    assert W2[2, 0] == pytest.approx(0.25 / 9)
    # alpha 0 keeps only the pattern: weights count co-rating users (i0, i1 share u0 and u1)
    W0 = dense(rp3beta.rp3beta_weights(X, alpha=0.0, beta=0.0, k_neighbors=None))
    assert (W0[0, 1], W0[2, 0], W0[2, 1]) == (2.0, 1.0, 1.0)
    # top-1 per row keeps each source item's largest target
    W1 = dense(rp3beta.rp3beta_weights(X, alpha=1.0, beta=0.5, k_neighbors=1))
    np.testing.assert_array_equal(W1 > 0, [[0, 1, 0], [1, 0, 0], [1, 0, 0]])


# ---------------------------------------------------------------- EASE


def test_ease_equals_a_direct_ridge_solve_per_item():
    """Each column of B is the ridge regression of that item on all the others (own weight
    constrained to 0): b_j = (X_-j^T X_-j + l2 I)^-1 X_-j^T x_j, solved directly."""
    rng = np.random.default_rng(0)
    Xd = (rng.random((30, 8)) < 0.35).astype(np.float64)
    B = ease.ease_weights(sp.csr_matrix(Xd), l2=3.0)
    for j in range(8):
        others = [i for i in range(8) if i != j]
        A = Xd[:, others]
        b = np.linalg.solve(A.T @ A + 3.0 * np.eye(7), A.T @ Xd[:, j])
        np.testing.assert_allclose(B[others, j], b, rtol=1e-4, atol=1e-6)
        assert B[j, j] == 0
    B32 = ease.ease_weights(sp.csr_matrix(Xd), l2=3.0, dtype="float32")
    np.testing.assert_allclose(B32, B, atol=1e-5)
    # a cold item (no positive) changes nothing and gets zero weights both ways
    Bc = ease.ease_weights(sp.csr_matrix(np.c_[Xd[:, :3], np.zeros(30), Xd[:, 3:]]), l2=3.0)
    np.testing.assert_allclose(np.delete(np.delete(Bc, 3, 0), 3, 1), B, atol=1e-6)
    assert not Bc[3].any() and not Bc[:, 3].any()


def test_ease_refuses_a_large_catalogue_with_the_memory_it_needs():
    X = sp.csr_matrix(np.ones((2, 20_000)))
    with pytest.raises(InputError, match=r"20,000 items.*6\.0 GiB in float64.*max_items = 10,000"):
        ease.ease_weights(X, l2=1.0, max_items=10_000)
    assert defaults("ease")["max_items"] == 30000


# ---------------------------------------------------------------- the model type


@pytest.mark.parametrize("kind", ["ease", "rp3b", "itemknn"])
def test_item_item_kinds_rank_planted_communities_and_round_trip(kind, tmp_path):
    """On planted communities every item-item kind beats popularity on validation, and its
    weights survive the file (dense or sparse) unchanged."""
    from mp2v4rec.kinds import KINDS
    from mp2v4rec.validation import Validator

    train, valid, n_users, n_items = planted()
    settings = defaults(kind)
    model = KINDS[kind].fit_function()(FitData(train, n_users, n_items), settings)
    users = np.unique(valid["user"].to_numpy())
    seen = seen_matrix(train, n_users, n_items)
    ((items, _),) = rank_users(
        model.scorer(train, n_users, n_items), users, n_users, n_items, k=20, seen=seen
    )
    truth = seen_matrix(valid, n_users, n_items)[users]
    hits = np.take_along_axis(truth.toarray(), np.maximum(items, 0), axis=1).sum(axis=1)
    recall = float(np.mean(hits / np.diff(truth.indptr)))
    pop = Validator(valid, seen, k=20)(
        np.ones((n_users, 1)),
        np.bincount(train["item"].to_numpy(), minlength=n_items)[:, None].astype(np.float32),
        "dot",
    )
    assert recall > pop + 0.05, (kind, recall, pop)
    model.save(tmp_path / "w.npz")
    again = load_item_item(tmp_path / "w.npz")
    np.testing.assert_array_equal(dense(again.weights), dense(model.weights))


def test_cold_items_are_never_recommended():
    """An item without train positives scores -inf, even under EASE's negative weights."""
    train = frame([(0, 0), (0, 1), (1, 1), (1, 2)])  # item 3: no train positive
    model = ease.fit(FitData(train, 2, 4), {"l2": 1.0, "dtype": "float64", "max_items": 10})
    scores = model.scorer(train, 2, 4)(np.array([0, 1]))
    assert np.isneginf(scores[:, 3]).all() and np.isfinite(scores[:, :3]).all()


def test_seeded_continuation_scores_seeds_by_their_rows():
    """The seeded list of an item-item model is seeds @ W: user 2's last item i1 continues with
    i0 (W[1, 0] = s01); user 3's seed i2 has an empty row, so it gets the popularity list."""
    model = itemknn.fit(FitData(TOY, 4, 3), {"k_neighbors": 1, "shrink": 1.0})
    recs, counts = seeded_lists(
        model, TOY, np.array([2, 3]), n_users=4, n_items=3, seed_items=1, k=2
    )
    lists = {u: recs.filter(user=u).sort("rank")["item"].to_list() for u in (2, 3)}
    assert lists[2][0] == 0
    assert counts == {"users": 2, "by_model": 1, "by_popularity": 1}
    assert lists[3] == [1, 0]  # popularity (i1 3 users, i0 2), its train item i2 masked


def test_item_item_weights_are_checked():
    with pytest.raises(InputError, match="square"):
        ItemItem(np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        ItemItem(np.array([[0.0, np.nan], [1.0, 0.0]]))


def test_item_space_is_chosen_on_validation_seeded_recall():
    """User 0's seed is i0. Context table (dot): i2 is closest to i0; input table (cosine): i1
    is. Validation item i1 -> the input table wins; i2 -> context; a model without an input
    table keeps its own."""
    from mp2v4rec.models import Embeddings
    from mp2v4rec.protocols import choose_item_space

    context = np.array([[1, 0], [0, 1], [1, 0.1], [0.5, 0.5]], np.float32)
    inputs = np.array([[1, 0], [1, 0.05], [0, 1], [0, -1]], np.float32)
    model = Embeddings(np.ones((2, 2), np.float32), context, "dot", item_input_vectors=inputs)
    train = frame([(0, 0), (1, 1), (1, 2), (1, 3)])
    for target, want in ((1, "input"), (2, "context")):
        valid = frame([(0, target)])
        space, recall = choose_item_space(
            model, train, valid, np.array([0]), n_users=2, n_items=4, seed_items=1, k=1
        )
        assert space == want and recall[want] == 1.0 and sum(recall.values()) == 1.0
    plain = Embeddings(model.user_vectors, context, "dot")
    assert choose_item_space(
        plain, train, valid, np.array([0]), n_users=2, n_items=4, seed_items=1, k=1
    ) == ("own", {})
