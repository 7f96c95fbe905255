"""Tests of mp2v4rec.recommend: brute-force agreement, masking, chunking, edge cases."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mp2v4rec.io import InputError
from mp2v4rec.recommend import (
    embedding_scorer,
    merge_recs,
    popularity_fallback,
    recommend_top_k,
    recs_frame,
    seen_matrix,
    split_recs,
    user_block,
)


def brute_force(U, V, users, k, score, seen=None):
    """Full sort per user in float64: best score first, lower item first on ties; items with a
    zero vector (unknown to the model) are never listed."""
    U, V = U.astype(np.float64), V.astype(np.float64)
    if score == "cosine":
        U = U / np.where((n := np.linalg.norm(U, axis=1, keepdims=True)) == 0, 1, n)
        V = V / np.where((n := np.linalg.norm(V, axis=1, keepdims=True)) == 0, 1, n)
    items = np.full((len(users), k), -1, dtype=np.int64)
    scores = np.full((len(users), k), -np.inf)
    for row, user in enumerate(users):
        s = V @ U[user]
        known = V.any(axis=1)
        candidates = [i for i in range(len(V)) if known[i] and (seen is None or not seen[user, i])]
        ranked = sorted(candidates, key=lambda i: (-s[i], i))[:k]
        items[row, : len(ranked)] = ranked
        scores[row, : len(ranked)] = s[ranked]
    return items, scores


def interactions(pairs):
    return pl.DataFrame(
        {
            "user": pl.Series([u for u, _ in pairs], dtype=pl.Int32),
            "item": pl.Series([i for _, i in pairs], dtype=pl.Int32),
            "weight": pl.Series([1.0] * len(pairs), dtype=pl.Float32),
            "timestamp": pl.Series([0] * len(pairs), dtype=pl.Int64),
        }
    )


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(7)
    U = rng.normal(size=(40, 8)).astype(np.float32)
    V = rng.normal(size=(300, 8)).astype(np.float32)
    seen = sp.random(40, 300, density=0.1, random_state=3, format="csr").astype(bool)
    return U, V, seen


@pytest.mark.parametrize("score", ["cosine", "dot"])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_brute_force_on_random_vectors(gaussian, score, masked):
    U, V, seen = gaussian
    seen = seen if masked else None
    users = np.array([5, 0, 39, 5, 17])
    items, scores = recommend_top_k(U, V, users, k=25, score=score, seen=seen, chunk_size=2)
    want_items, want_scores = brute_force(
        U, V, users, 25, score, seen.toarray() if masked else None
    )
    assert items.dtype == np.int32 and scores.dtype == np.float32
    assert items.shape == scores.shape == (5, 25)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)


def test_chunk_size_does_not_change_the_result(gaussian):
    U, V, seen = gaussian
    users = np.arange(40)
    for score in ("cosine", "dot"):
        ref = recommend_top_k(U, V, users, k=10, score=score, seen=seen, chunk_size=2048)
        for chunk_size in (1, 3, 16, 39):
            got = recommend_top_k(U, V, users, k=10, score=score, seen=seen, chunk_size=chunk_size)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, atol=1e-7)


def test_chunk_rows_are_capped_by_the_score_budget(gaussian, monkeypatch, caplog):
    """A large catalogue shrinks the chunk (memory ~ rows * n_items), never the result."""
    U, V, seen = gaussian
    users = np.arange(40)
    ref = recommend_top_k(U, V, users, k=10, seen=seen)
    monkeypatch.setattr("mp2v4rec.recommend.MAX_CHUNK_CELLS", 3 * 300 + 299)  # 3 rows of 300
    with caplog.at_level(logging.INFO, logger="mp2v4rec.recommend"):
        got = recommend_top_k(U, V, users, k=10, seen=seen, chunk_size=2048)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, atol=1e-7)
    done = [r.args[0] for r in caplog.records if r.name == "mp2v4rec.recommend"]  # so far
    assert done == [*range(3, 40, 3), 40]


def test_ties_are_broken_by_lower_item_and_zero_vectors_are_never_listed():
    U = np.array([[0, 0], [1, 0]], dtype=np.float32)
    V = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32)
    items, scores = recommend_top_k(U, V, np.array([0, 1]), k=4, score="cosine")
    assert not np.isnan(scores).any()
    assert items[0].tolist() == [1, 2, 3, 4]  # zero user: every score 0, lowest items first
    np.testing.assert_array_equal(scores[0], 0.0)
    assert items[1].tolist() == [1, 2, 4, 3]  # cosine 1, 1, 1, then 0; items 0, 5 are unknown
    np.testing.assert_allclose(scores[1], [1, 1, 1, 0])
    items, scores = recommend_top_k(U, V, np.array([1]), k=3, score="dot")
    assert items[0].tolist() == [2, 1, 4]
    np.testing.assert_array_equal(scores[0], [2, 1, 1])
    # a model that knows fewer items than k gives short lists
    items, _ = recommend_top_k(U, V, np.array([1]), k=6, score="dot")
    assert items[0].tolist() == [2, 1, 4, 3, -1, -1]


def test_many_ties_in_long_lists_follow_item_order():
    # few distinct integer scores over 200 items: every cut and every sort meets long tie runs
    rng = np.random.default_rng(1)
    U = rng.integers(-1, 2, size=(10, 2)).astype(np.float32)
    V = rng.integers(-1, 2, size=(200, 2)).astype(np.float32)
    seen = sp.random(10, 200, density=0.2, random_state=5, format="csr").astype(bool)
    users = np.arange(10)
    items, scores = recommend_top_k(U, V, users, k=70, score="dot", seen=seen, chunk_size=4)
    want_items, want_scores = brute_force(U, V, users, 70, "dot", seen.toarray())
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(scores, want_scores)


def test_k_larger_than_catalogue_is_an_input_error():
    U, V = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(InputError, match=r"recommend\.k.*4 items"):
        recommend_top_k(U, V, np.array([0]), k=5)
    recommend_top_k(U, V, np.array([0]), k=4)  # k == n_items is fine


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"score": "euclid"}, "unknown score"),
        ({"k": 0}, r"recommend\.k"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"users": np.array([2])}, "user index 2"),
        ({"item_vectors": np.ones((4, 2), np.float32)}, "dimension"),
        ({"item_vectors": np.full((4, 3), np.nan, np.float32)}, "NaN"),
        ({"seen": sp.csr_matrix((3, 4), dtype=bool)}, "seen matrix"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {
        "user_vectors": np.ones((2, 3), np.float32),
        "item_vectors": np.ones((4, 3), np.float32),
        "users": np.array([0, 1]),
        "k": 2,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        recommend_top_k(
            args.pop("user_vectors"), args.pop("item_vectors"), args.pop("users"), **args
        )


def test_fewer_unseen_items_than_k_gives_short_lists():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    seen = seen_matrix(interactions([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 0)]), 3, 5)
    items, scores = recommend_top_k(U, V, np.array([0, 1, 2]), k=5, seen=seen)
    assert items[0].tolist() == [4, -1, -1, -1, -1]
    assert np.isneginf(scores[0, 1:]).all() and np.isfinite(scores[0, 0])
    assert sorted(items[1, :4].tolist()) == [1, 2, 3, 4] and items[1, 4] == -1
    assert sorted(items[2].tolist()) == [0, 1, 2, 3, 4]
    frame = recs_frame(np.array([0, 1, 2]), items, scores)
    assert frame.group_by("user").len().sort("user")["len"].to_list() == [1, 4, 5]
    assert frame["score"].is_finite().all()


def test_explicit_false_entries_of_seen_are_not_masked():
    U, V = np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32)
    seen = sp.csr_matrix((np.array([False, True]), np.array([0, 1]), np.array([0, 2])), (1, 2))
    items, _ = recommend_top_k(U, V, np.array([0]), k=2, seen=seen)
    assert items[0].tolist() == [0, -1]


def test_recs_frame_schema_and_ranks():
    items = np.array([[3, 1, 2], [0, -1, -1]], dtype=np.int32)
    scores = np.array([[0.9, 0.5, 0.1], [0.3, -np.inf, -np.inf]], dtype=np.float32)
    frame = recs_frame(np.array([7, 8]), items, scores)
    assert frame.schema == {
        "user": pl.Int32,
        "rank": pl.Int16,
        "item": pl.Int32,
        "score": pl.Float32,
    }
    assert frame.rows() == [
        (7, 1, 3, pytest.approx(0.9)),
        (7, 2, 1, pytest.approx(0.5)),
        (7, 3, 2, pytest.approx(0.1)),
        (8, 1, 0, pytest.approx(0.3)),
    ]
    empty = recs_frame(np.array([], np.int32), np.empty((0, 3), np.int32), np.empty((0, 3)))
    assert empty.height == 0 and empty.schema == frame.schema
    with pytest.raises(InputError):
        recs_frame(np.array([7]), items, scores)


def test_seen_matrix():
    seen = seen_matrix(interactions([(1, 2), (0, 0), (1, 2), (2, 3)]), 4, 5)
    assert isinstance(seen, sp.csr_matrix) and seen.dtype == bool and seen.shape == (4, 5)
    assert seen.nnz == 3
    rows, cols = seen.toarray().nonzero()
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [0, 2, 3]
    assert seen_matrix(interactions([]), 2, 2).nnz == 0
    with pytest.raises(InputError, match="row 1"):
        seen_matrix(interactions([(0, 0), (0, 5)]), 4, 5)


def test_progress_is_logged(gaussian, caplog):
    U, V, _ = gaussian
    with caplog.at_level(logging.INFO, logger="mp2v4rec.recommend"):
        recommend_top_k(U, V, np.arange(40), k=3, chunk_size=16)
    assert [r.getMessage() for r in caplog.records] == [
        "recommend: 16/40 users scored",
        "recommend: 32/40 users scored",
        "recommend: 40/40 users scored",
    ]


@st.composite
def small_problems(draw):
    n_users, n_items, dim = (
        draw(st.integers(1, 6)),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 4)),
    )
    ints = st.integers(-3, 3)  # small integers: exact float32 dot products with many ties
    U = draw(hnp.arrays(np.float32, (n_users, dim), elements=ints))
    V = draw(hnp.arrays(np.float32, (n_items, dim), elements=ints))
    seen = draw(hnp.arrays(np.bool_, (n_users, n_items)))
    users = np.array(draw(st.lists(st.integers(0, n_users - 1), min_size=1, max_size=8)))
    k = draw(st.integers(1, n_items))
    return U, V, seen, users, k, draw(st.integers(1, 4)), draw(st.sampled_from(["cosine", "dot"]))


@settings(max_examples=150, deadline=None)
@given(small_problems())
def test_masked_items_never_appear(problem):
    U, V, seen, users, k, chunk_size, score = problem
    items, scores = recommend_top_k(
        U, V, users, k=k, score=score, seen=sp.csr_matrix(seen), chunk_size=chunk_size
    )
    assert not np.isnan(scores).any()
    for row, user in enumerate(users):
        listed = items[row][items[row] >= 0]
        n_unseen = int((~seen[user] & V.any(axis=1)).sum())  # zero vectors: unknown items
        assert len(listed) == min(k, n_unseen)
        assert (items[row, len(listed) :] == -1).all()
        assert np.isneginf(scores[row, len(listed) :]).all()
        assert not seen[user, listed].any()
        assert len(set(listed.tolist())) == len(listed)
        assert (np.diff(scores[row, : len(listed)]) <= 0).all()
    if score == "dot":  # exact integer scores: identical to the full sort, ties included
        want_items, want_scores = brute_force(U, V, users, k, score, seen)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_array_equal(scores, want_scores)


def pairs_frame(matrix):
    """A (user, item) interaction table of a boolean matrix's nonzero cells."""
    users, items = np.nonzero(np.asarray(matrix))
    return interactions(list(zip(users.tolist(), items.tolist(), strict=True)))


@pytest.fixture(scope="module")
def held_out(gaussian):
    """Disjoint valid and test pairs outside the seen ones, users 0..39."""
    _, _, seen = gaussian
    rng = np.random.default_rng(5)
    free = ~seen.toarray() & (rng.random(seen.shape) < 0.04)
    valid = free & (rng.random(seen.shape) < 0.5)
    return {"valid": pairs_frame(valid), "test": pairs_frame(free & ~valid)}


def block_recs(U, V, seen, users, n_blocks, held_out):
    """Lists recommended block by block, as the recommend jobs do, in block order."""
    train = pairs_frame(seen.toarray())
    return [
        split_recs(
            embedding_scorer(U, V, score="cosine"),
            user_block(users, b, n_blocks),
            train,
            held_out,
            *seen.shape,
            splits=["valid", "test"],
            k=10,
        )
        for b in range(n_blocks)
    ]


@pytest.mark.parametrize("n_blocks", [1, 2, 7, 45])
def test_user_blocks_merge_to_the_single_job_lists(gaussian, held_out, n_blocks):
    U, V, seen = gaussian
    users = np.random.default_rng(0).permutation(40)[:37]  # unsorted, not every user
    [whole] = block_recs(U, V, seen, np.sort(users), 1, held_out)
    blocks = [user_block(users, b, n_blocks) for b in range(n_blocks)]
    assert np.array_equal(np.concatenate(blocks), np.sort(users))  # a partition, in order
    assert max(b.size for b in blocks) - min(b.size for b in blocks) <= 1
    frames = block_recs(U, V, seen, users, n_blocks, held_out)
    merged = merge_recs(frames[::-1], users)  # the gather order does not matter
    assert merged.equals(whole.sort("split", "user", "rank"))


@pytest.mark.parametrize("score", ["cosine", "dot"])
def test_validation_lists_mask_train_and_test_lists_also_validation(gaussian, held_out, score):
    """The validation list of a user is the top-k with train masked; the test list never
    holds their validation positives: exactly the top-k with train and validation masked."""
    U, V, seen = gaussian
    users = np.arange(40)
    recs = split_recs(
        embedding_scorer(U, V, score=score),
        users,
        pairs_frame(seen.toarray()),
        held_out,
        *seen.shape,
        splits=["valid", "test"],
        k=25,
    )
    for split, earlier in (("valid", None), ("test", "valid")):
        mask = seen.toarray().copy()
        if earlier is not None:
            o = held_out[earlier]
            mask[o["user"].to_numpy(), o["item"].to_numpy()] = True
        want, _ = brute_force(U, V, users, 25, score, mask)
        got = recs.filter(pl.col("split") == split).sort("user", "rank")
        np.testing.assert_array_equal(got["item"].to_numpy().reshape(40, 25), want)
    # the validation positives do take slots when nothing but train is masked
    unmasked, _ = recommend_top_k(U, V, users, k=25, score=score, seen=seen)
    o = held_out["valid"]
    hit = unmasked[o["user"].to_numpy()] == o["item"].to_numpy()[:, None]
    assert hit.any()


def test_validation_scores_never_depend_on_test_labels():
    """A scorer that puts every test positive first: its validation lists, and so its
    validation score, are the same whether the test split exists or not (under the old rule the
    test positives were masked from the validation lists, which lifted the validation score
    by reading test labels)."""
    from mp2v4rec.datasets.common import Prepared
    from mp2v4rec.evaluation import score_split

    rng = np.random.default_rng(3)
    n_users, n_items = 30, 60
    pairs = {(u, i) for u in range(n_users) for i in rng.choice(n_items, 12, replace=False)}
    rows = sorted(pairs)
    rng.shuffle(rows)
    train, valid, test = rows[: len(rows) // 2], rows[len(rows) // 2 : -60], rows[-60:]
    frames = [interactions(part) for part in (train, valid, test)]
    cheat = np.zeros((n_users, n_items), np.float32)
    cheat[[u for u, _ in test], [i for _, i in test]] = 10.0
    cheat += rng.random((n_users, n_items), dtype=np.float32)

    def scorer(chunk):
        return cheat[chunk].copy()

    def prepared(test_frame):
        users = pl.DataFrame({"user": np.arange(n_users, dtype=np.int32)})
        items = pl.DataFrame({"item": np.arange(n_items, dtype=np.int32)})
        return Prepared(frames[0], frames[1], test_frame, None, users, items, {})

    everyone = np.arange(n_users)
    with_test = score_split(scorer, prepared(frames[2]), everyone, split="valid", ks=[5, 20])
    without = score_split(scorer, prepared(frames[2].clear()), everyone, split="valid", ks=[5, 20])
    np.testing.assert_array_equal(with_test[0], without[0])
    for metric in with_test[1]:
        np.testing.assert_array_equal(with_test[1][metric], without[1][metric])


def test_users_without_train_positives_get_the_popularity_list(gaussian):
    U, V, _ = gaussian
    train = interactions([(0, 3), (1, 3), (2, 3), (0, 7), (1, 7), (2, 9)])
    fallback = popularity_fallback(train, 40, 300)
    assert fallback.users.tolist() == [False] * 3 + [True] * 37
    items, _ = recommend_top_k(U, V, np.array([1, 5]), k=4, seen=None, fallback=fallback)
    assert items[1].tolist() == [3, 7, 9, 0]  # by train count, ties by lower item
    assert items[0].tolist() != [3, 7, 9, 0]  # a user with train positives keeps their scores
    masked, _ = recommend_top_k(
        U, V, np.array([5]), k=3, seen=seen_matrix(train, 40, 300), fallback=fallback
    )
    assert masked[0].tolist() == [3, 7, 9]


def test_merge_recs_refuses_overlapping_or_foreign_blocks(gaussian, held_out):
    U, V, seen = gaussian
    users = np.arange(20)
    frames = block_recs(U, V, seen, users, 2, held_out)
    with pytest.raises(InputError, match=r"user 0 has lists in blocks \[0, 1\]"):
        merge_recs([frames[0], frames[0]], users)
    with pytest.raises(InputError, match=r"user 10 in block 1 is not an evaluated user"):
        merge_recs(frames, np.arange(10))
    with pytest.raises(InputError, match=r"user block 2 is outside 0..1"):
        user_block(users, 2, 2)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=30),
        elements=st.sampled_from([-np.inf, 0.0, 1.0, 2.0, 2.5]),
    ),
    st.integers(1, 35),
)
def test_selection_kernel_equals_a_stable_sort(scores, k):
    """topk.select_top_k: best first, ties by lower column, -inf never chosen, short rows padded."""
    from mp2v4rec.topk import select_top_k

    idx, vals = select_top_k(scores, k)
    for row, got_i, got_v in zip(scores, idx, vals, strict=True):
        order = [j for j in np.argsort(-row, kind="stable") if row[j] > -np.inf][:k]
        expect_i = np.full(k, -1)
        expect_i[: len(order)] = order
        assert got_i.tolist() == expect_i.tolist()
        assert got_v[: len(order)].tolist() == row[order].tolist()
        assert np.all(got_v[len(order) :] == -np.inf)
