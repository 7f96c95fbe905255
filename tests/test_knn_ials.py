"""Tests of the UserKNN and iALS baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from planted import frame, planted

from mp2v4rec.baselines.ials import confidence_matrix, train_ials
from mp2v4rec.baselines.simple import popularity_embeddings
from mp2v4rec.baselines.userknn import userknn_recommend
from mp2v4rec.io import InputError
from mp2v4rec.metrics import accuracy_metrics
from mp2v4rec.recommend import recs_frame, seen_matrix
from mp2v4rec.validation import Validator


@pytest.fixture(scope="module")
def planted_data():
    train, valid, n_users, n_items = planted()
    seen = seen_matrix(train, n_users, n_items)
    pop_u, pop_v, _ = popularity_embeddings(train, n_users, n_items)
    return train, valid, n_users, n_items, Validator(valid, seen, k=20)(pop_u, pop_v, "dot")


# ---------------------------------------------------------------- UserKNN

# users' items: 0 {0, 1}, 1 {0, 1, 2}, 2 {1, 3}, 3 {4}
HAND = frame([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 3), (3, 4)])
S01, S02 = 2 / math.sqrt(6), 0.5  # cosine(0, 1), cosine(0, 2); user 3 shares nothing


def test_userknn_hand_computed():
    items, scores = userknn_recommend(HAND, 4, 5, np.array([0, 3]), k_neighbors=2, k=3)
    np.testing.assert_array_equal(items, [[2, 3, 4], [0, 1, 2]])
    np.testing.assert_allclose(scores, [[S01, S02, 0.0], [0, 0, 0]], rtol=1e-6)
    assert items.dtype == np.int32 and scores.dtype == np.float32

    # one neighbour (user 1): items 3 and 4 tie at 0, lower index first
    items, scores = userknn_recommend(HAND, 4, 5, np.array([0]), k_neighbors=1, k=3)
    np.testing.assert_array_equal(items, [[2, 3, 4]])
    np.testing.assert_allclose(scores, [[S01, 0, 0]], rtol=1e-6)

    # no masking: item 1 = S01 + S02; items 0 and 2 tie at S01
    items, scores = userknn_recommend(HAND, 4, 5, np.array([0]), k=5, mask_seen=False)
    np.testing.assert_array_equal(items, [[1, 0, 2, 3, 4]])
    np.testing.assert_allclose(scores, [[S01 + S02, S01, S01, S02, 0]], rtol=1e-6)

    # user 3 has only 4 unseen items: padding
    items, scores = userknn_recommend(HAND, 4, 5, np.array([3]), k=5)
    np.testing.assert_array_equal(items, [[0, 1, 2, 3, -1]])
    assert scores[0, -1] == -np.inf


def brute_force_knn(R, users, k_neighbors, k, seen):
    """Dense reference: full similarity matrix, full sorts with lower-index tie-breaks."""
    norms = np.linalg.norm(R, axis=1)
    X = R / np.where(norms == 0, 1, norms)[:, None]
    sims = X @ X.T
    np.fill_diagonal(sims, 0)
    items = np.full((len(users), k), -1)
    scores = np.full((len(users), k), -np.inf)
    for row, u in enumerate(users):
        nbrs = sorted(range(len(R)), key=lambda v: (-sims[u, v], v))[:k_neighbors]
        s = sims[u, nbrs] @ R[nbrs]
        cand = [i for i in range(R.shape[1]) if seen is None or not seen[u, i]]
        ranked = sorted(cand, key=lambda i: (-s[i], i))[:k]
        items[row, : len(ranked)] = ranked
        scores[row, : len(ranked)] = s[ranked]
    return items, scores


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("mask_seen", [False, True])
def test_userknn_matches_brute_force(weighted, mask_seen):
    rng = np.random.default_rng(7)
    n_users, n_items = 40, 30
    dense = rng.random((n_users, n_items)) < 0.15
    dense[5] = False  # a user without interactions
    u, i = np.nonzero(dense)
    train = frame(
        list(zip(u.tolist(), i.tolist(), strict=True)), (rng.random(u.size) + 0.1).tolist()
    )
    R = np.zeros((n_users, n_items))
    R[u, i] = train["weight"].to_numpy() if weighted else 1.0
    users = np.array([3, 0, 5, 39, 3, 17, 22, 8, 31])
    got_items, got_scores = userknn_recommend(
        train,
        n_users,
        n_items,
        users,
        k_neighbors=6,
        k=10,
        mask_seen=mask_seen,
        weighted=weighted,
        chunk_size=4,
    )
    want_items, want_scores = brute_force_knn(R, users, 6, 10, dense if mask_seen else None)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)
    if weighted:  # continuous weights: no ties, so the lists must agree exactly
        np.testing.assert_array_equal(got_items[:, :5], want_items[:, :5])
    if mask_seen:
        assert not dense[users[:, None], np.maximum(got_items, 0)][got_items >= 0].any()


def test_userknn_masks_seen_and_beats_popularity(planted_data):
    train, valid, n_users, n_items, pop = planted_data
    users = np.unique(valid["user"].to_numpy())
    items, scores = userknn_recommend(train, n_users, n_items, users, k_neighbors=50, k=20)
    seen = seen_matrix(train, n_users, n_items).toarray()
    assert not seen[users[:, None], items].any()
    unmasked, _ = userknn_recommend(
        train, n_users, n_items, users, k_neighbors=50, k=20, mask_seen=False
    )
    assert seen[users[:, None], unmasked].any()
    recall = accuracy_metrics(recs_frame(users, items, scores), valid, [20])["value"][0]
    assert recall > pop + 0.08, (recall, pop)


def test_userknn_rejects_bad_arguments():
    with pytest.raises(InputError, match="k_neighbors"):
        userknn_recommend(HAND, 4, 5, np.array([0]), k_neighbors=0)
    with pytest.raises(InputError, match="catalogue"):
        userknn_recommend(HAND, 4, 5, np.array([0]), k=6)
    with pytest.raises(InputError, match="outside"):
        userknn_recommend(HAND, 4, 5, np.array([4]), k=2)


# ---------------------------------------------------------------- iALS


def test_confidence_matrix():
    train = frame([(0, 1), (1, 0), (0, 1)], [0.5, 2.0, 0.25])
    C = confidence_matrix(train, 2, 3, alpha=10.0).toarray()
    np.testing.assert_allclose(C, [[0, 1 + 10 * 0.75, 0], [1 + 10 * 2.0, 0, 0]])
    C = confidence_matrix(train, 2, 3, alpha=10.0, binary=True).toarray()
    np.testing.assert_allclose(C, [[0, 11, 0], [11, 0, 0]])


IALS = dict(factors=8, regularization=1.0, iterations=6, alpha=10.0, k=20, threads=1)


def test_ials_reproducible(planted_data):
    train, valid, n_users, n_items, _ = planted_data
    U1, V1, c1 = train_ials(train, n_users, n_items, valid, **{**IALS, "iterations": 2}, seed=3)
    U2, V2, c2 = train_ials(train, n_users, n_items, valid, **{**IALS, "iterations": 2}, seed=3)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)
    assert c1.equals(c2)
    assert U1.shape == (n_users, 8) and V1.shape == (n_items, 8) and U1.dtype == np.float32


def test_ials_beats_popularity_and_keeps_best_iteration(planted_data):
    train, valid, n_users, n_items, pop = planted_data
    U, V, curve = train_ials(train, n_users, n_items, valid, **IALS, seed=0)
    assert curve.columns == ["epoch", "loss", "valid_recall"]
    assert curve["epoch"].to_list() == list(range(1, IALS["iterations"] + 1))
    assert curve["loss"].is_finite().all()
    best = curve["valid_recall"].max()
    assert best > pop + 0.08, (best, pop)
    seen = seen_matrix(train, n_users, n_items)
    assert Validator(valid, seen, k=20)(U, V, "dot") == best


def test_ials_rejects_bad_arguments(planted_data):
    train, valid, n_users, n_items, _ = planted_data
    with pytest.raises(InputError, match="threads"):
        train_ials(train, n_users, n_items, valid, threads=0)
