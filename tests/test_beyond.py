"""Tests of mp2v4rec.beyond: hand-computed cases, limits and a brute-force per-user reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from mp2v4rec import beyond
from mp2v4rec.beyond import (
    beyond_accuracy,
    category_diversity_per_user,
    coverage_at,
    gini,
    gini_at,
    ild_per_user,
    lorenz_curve,
    new_share_per_user,
    novelty_per_user,
    rec_matrix,
)
from mp2v4rec.io import InputError


def recs_from_lists(lists: dict[int, list[int]]) -> pl.DataFrame:
    rows = [(u, r + 1, i) for u, items in lists.items() for r, i in enumerate(items)]
    return pl.DataFrame(
        rows, schema={"user": pl.Int32, "rank": pl.Int16, "item": pl.Int32}, orient="row"
    ).with_columns(score=pl.lit(0.0, dtype=pl.Float32))


def pairs(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user": pl.Int32, "item": pl.Int32}, orient="row")


def value(frame: pl.DataFrame, metric: str, k: int) -> float:
    return frame.filter((pl.col("metric") == metric) & (pl.col("k") == k))["value"].item()


# Two users over 5 items. Vectors: 0 = [1, 0], 1 = [0, 1], 2 = [3, 3] (cosine 1/sqrt2 with
# both), 3 = zero vector, 4 = [1, 0]. Categories (lists): 0: {0, 1}, 1: {1}, 2: {2, 0}, 3: none,
# 4: {3}.
N_ITEMS, KS = 5, [1, 2, 3]
RECS = recs_from_lists({0: [0, 1, 2], 1: [2, 0, 3]})
VECTORS = np.array([[1, 0], [0, 1], [3, 3], [0, 0], [1, 0]], dtype=np.float32)
CATEGORIES = pl.DataFrame(
    {"item": [0, 1, 2, 3, 4], "categories": [[0, 1], [1], [2, 0], [], [3]]},
    schema={"item": pl.Int32, "categories": pl.List(pl.Int32)},
)
# 4 train users; distinct train users per item: 0 -> 3 (users 1, 2, 3; user 3 twice), 1 -> 2,
# 2 -> 0, 3 -> 0, 4 -> 1.
TRAIN = pairs([(0, 4), (1, 0), (1, 1), (2, 0), (3, 0), (3, 1), (3, 0)])
S2 = 1 / math.sqrt(2)
INFO = [math.log2(4 / 3), 1.0, 2.0, 2.0, 2.0]  # -log2 p(i); items 2, 3 unseen: count 1


def test_hand_values():
    frame, per_user = beyond_accuracy(
        RECS, TRAIN, N_ITEMS, KS, item_vectors=VECTORS, item_categories=CATEGORIES
    )
    assert frame.columns == ["metric", "k", "value"]
    # coverage: {0, 2}, {0, 1, 2}, {0, 1, 2, 3} of 5 items
    assert [value(frame, "coverage", k) for k in KS] == pytest.approx([0.4, 0.6, 0.8])
    # ILD user 0: [0, 1] orthogonal -> 1; [0, 1, 2]: cosines 0, s2, s2 -> 1 - 2 s2 / 3.
    # user 1: [2, 0] -> 1 - s2; [2, 0, 3]: s2, 0, 0 (zero vector) -> 1 - s2 / 3.
    assert per_user[("ild", 2)] == pytest.approx([1.0, 1 - S2])
    assert per_user[("ild", 3)] == pytest.approx([1 - 2 * S2 / 3, 1 - S2 / 3])
    assert value(frame, "ild", 3) == pytest.approx(1 - S2 / 2)
    assert ("ild", 1) not in per_user and frame.filter(metric="ild", k=1).height == 0
    # categories: user 0 {0,1}, {0,1}, {0,1,2}; user 1 {2,0}, {2,0,1}, {2,0,1}
    assert per_user[("category_diversity", 1)] == pytest.approx([2, 2])
    assert per_user[("category_diversity", 2)] == pytest.approx([2, 3])
    assert [value(frame, "category_diversity", k) for k in KS] == pytest.approx([2, 2.5, 3])
    # novelty: user 0 items 0, 1, 2; user 1 items 2, 0, 3
    nov0 = [INFO[0], (INFO[0] + 1) / 2, (INFO[0] + 3) / 3]
    nov1 = [2.0, (2 + INFO[0]) / 2, (4 + INFO[0]) / 3]
    for j, k in enumerate(KS):
        assert per_user[("novelty", k)] == pytest.approx([nov0[j], nov1[j]])
    assert value(frame, "novelty", 2) == pytest.approx(0.9575187496394219)
    # new share: user 0 saw item 4 only; user 1 saw items 0 and 1 (rank 2 is item 0)
    assert per_user[("new_share", 2)] == pytest.approx([1.0, 0.5])
    assert [value(frame, "new_share", k) for k in KS] == pytest.approx([1.0, 0.75, 5 / 6])
    # Gini: counts@1 [1,0,1,0,0] -> 0.6; counts@3 [2,1,2,1,0] -> 10 / 30
    assert value(frame, "gini", 1) == pytest.approx(0.6)
    assert value(frame, "gini", 3) == pytest.approx(1 / 3)
    assert set(frame["metric"]) == {
        "coverage",
        "ild",
        "category_diversity",
        "novelty",
        "new_share",
        "gini",
    }


def test_building_blocks_match():
    users, items = rec_matrix(RECS, 3)
    frame, per_user = beyond_accuracy(RECS, TRAIN, N_ITEMS, [3, 1, 2])  # unsorted cut-offs
    assert coverage_at(items, N_ITEMS, [3, 1]) == pytest.approx([0.8, 0.4])
    assert gini_at(items, N_ITEMS, [3, 1]) == pytest.approx([1 / 3, 0.6])
    nov = novelty_per_user(items, TRAIN, N_ITEMS, [3, 1])
    assert nov[:, 0] == pytest.approx(per_user[("novelty", 3)])
    assert nov[:, 1] == pytest.approx([INFO[0], 2.0])
    new = new_share_per_user(users, items, TRAIN, N_ITEMS, [2])
    assert new[:, 0] == pytest.approx([1.0, 0.5])
    assert frame["k"].to_list()[:3] == [1, 2, 3]  # rows sorted by metric, then k


def test_popcount_fallback(monkeypatch):
    x = np.array([[0, 1, 3, 2**63 + 5, 2**64 - 1]], dtype=np.uint64)
    expected = [[0, 1, 2, 3, 64]]
    assert beyond._popcount(x).tolist() == expected
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2
    assert beyond._popcount(x).tolist() == expected


def test_single_category_column_and_array():
    single = pl.DataFrame({"item": [0, 1, 2, 3, 4], "category": [0, 1, 2, -1, 3]})
    items = rec_matrix(RECS, 3)[1]
    expected = [[1, 2, 3], [1, 2, 2]]  # user 1: items 2, 0, then 3 (no category)
    assert category_diversity_per_user(items, single, N_ITEMS, KS).tolist() == expected
    array = np.array([0, 1, 2, -1, 3])
    assert category_diversity_per_user(items, array, N_ITEMS, KS).tolist() == expected


def test_reference_space_and_unnormalised_vectors():
    frame, per_user = beyond_accuracy(
        RECS, TRAIN, N_ITEMS, [3], item_vectors=VECTORS, reference_vectors=10 * VECTORS
    )
    assert per_user[("ild_reference", 3)] == pytest.approx(per_user[("ild", 3)])
    assert value(frame, "ild_reference", 3) == pytest.approx(1 - S2 / 2)


def test_ild_limits():
    items = np.array([[0, 1, 2], [3, 4, 5]])
    same = np.tile([[1.0, 2.0, -1.0]], (6, 1))
    assert ild_per_user(items, same, [2, 3]) == pytest.approx(np.zeros((2, 2)), abs=1e-12)
    assert ild_per_user(items, np.eye(6), [2, 3]) == pytest.approx(np.ones((2, 2)))
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]] * 2)
    assert ild_per_user(items, opposite, [2]).ravel() == pytest.approx([2.0, 2.0])  # cosine -1


@pytest.mark.parametrize("mask_words", [16, 0])  # bitmask and sort paths of category diversity
def test_against_brute_force(monkeypatch, mask_words):
    monkeypatch.setattr(beyond, "_MASK_WORDS", mask_words)
    rng = np.random.default_rng(7)
    n_users, n_items, ks = 30, 12, [1, 2, 4, 6]
    lists = {u: rng.permutation(n_items)[: rng.integers(0, 7)].tolist() for u in range(n_users)}
    lists = {u: items for u, items in lists.items() if items}  # users 0.. with >= 1 item
    recs = recs_from_lists(lists)
    vectors = rng.standard_normal((n_items, 3))
    vectors[[2, 5]] = 0
    cats = [rng.choice(70, size=rng.integers(0, 4), replace=False).tolist() for _ in range(n_items)]
    cat_frame = pl.DataFrame({"categories": cats}, schema={"categories": pl.List(pl.Int32)})
    train = pairs([(int(u), int(i)) for u, i in rng.integers(0, [40, n_items], size=(60, 2))])
    frame, per_user = beyond_accuracy(
        recs, train, n_items, ks, item_vectors=vectors, item_categories=cat_frame
    )

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
    seen = {(u, i) for u, i in train.iter_rows()}
    n_train_users = train["user"].n_unique()
    users_of = train.unique().group_by("item").len()
    count = dict(zip(users_of["item"], users_of["len"], strict=True))
    users = sorted(lists)
    for k in ks:
        ild, cat, nov, new = [], [], [], []
        for u in users:
            top = lists[u][:k]
            sims = [unit[a] @ unit[b] for a, b in itertools.combinations(top, 2)]
            ild.append(1 - np.mean(sims) if sims else np.nan)
            cat.append(len({c for i in top for c in cats[i]}))
            nov.append(np.mean([-math.log2(max(count.get(i, 0), 1) / n_train_users) for i in top]))
            new.append(np.mean([(u, i) not in seen for i in top]))
        if k >= 2:
            np.testing.assert_allclose(per_user[("ild", k)], ild, atol=1e-12)
            assert value(frame, "ild", k) == pytest.approx(np.nanmean(ild))
        np.testing.assert_allclose(per_user[("category_diversity", k)], cat)
        np.testing.assert_allclose(per_user[("novelty", k)], nov, rtol=1e-12)
        np.testing.assert_allclose(per_user[("new_share", k)], new)
        shown = [i for u in users for i in lists[u][:k]]
        assert value(frame, "coverage", k) == pytest.approx(len(set(shown)) / n_items)
        assert value(frame, "gini", k) == pytest.approx(gini(np.bincount(shown, minlength=n_items)))


def test_users_alignment_and_missing_user():
    users = np.array([7, 1, 0], dtype=np.int32)  # user 7 has no recs; user order is kept
    _, per_user = beyond_accuracy(
        RECS, TRAIN, N_ITEMS, [2], item_categories=CATEGORIES, users=users
    )
    nov = per_user[("novelty", 2)]
    assert np.isnan(nov[0]) and nov[1:] == pytest.approx([(2 + INFO[0]) / 2, (INFO[0] + 1) / 2])
    assert per_user[("category_diversity", 2)].tolist() == [0, 3, 2]
    shuffled = rec_matrix(RECS.sample(fraction=1.0, shuffle=True, seed=1), 3)
    for got, want in zip(shuffled, rec_matrix(RECS, 3), strict=True):
        np.testing.assert_array_equal(got, want)
    got_users, items = rec_matrix(RECS, 4, users)
    assert got_users.tolist() == [7, 1, 0]
    assert items.tolist() == [[-1] * 4, [2, 0, 3, -1], [0, 1, 2, -1]]


def test_gini_values():
    assert gini([0, 0, 1, 3]) == pytest.approx(0.625)  # sum|xi-xj| = 20, / (2 * 16 * 1)
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    for n in (2, 10, 1000):
        assert gini(np.r_[np.zeros(n - 1), 7]) == pytest.approx((n - 1) / n)


def test_lorenz_curve():
    curve = lorenz_curve(RECS, N_ITEMS, 3)  # counts [2, 1, 2, 1, 0] -> sorted 0 1 1 2 2 of 6
    assert curve["item_share"].to_list() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert curve["rec_share"].to_list() == pytest.approx([0, 0, 1 / 6, 2 / 6, 4 / 6, 1])

    rng = np.random.default_rng(3)
    n_items = 50
    items = rng.zipf(1.5, size=(40, 10)) % n_items
    recs = recs_from_lists({u: list(dict.fromkeys(row.tolist())) for u, row in enumerate(items)})
    curve = lorenz_curve(recs, n_items, 10)
    x, y = curve["item_share"].to_numpy(), curve["rec_share"].to_numpy()
    assert (x[0], y[0], x[-1], y[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(np.diff(y) / np.diff(x)) >= -1e-12)  # convex: slopes never decrease
    assert np.all(y <= x + 1e-12)
    frame, _ = beyond_accuracy(recs, pairs([]), n_items, [10])
    area = np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)
    assert value(frame, "gini", 10) == pytest.approx(1 - 2 * area)


def test_bad_input():
    with pytest.raises(InputError, match="repeats user 0 rank 1"):
        beyond_accuracy(recs_from_lists({0: [1]}).vstack(RECS), TRAIN, N_ITEMS, [1])
    with pytest.raises(InputError, match="outside the catalogue"):
        beyond_accuracy(RECS, TRAIN, 3, [3])  # item 3 at rank 3
    with pytest.raises(InputError, match="item_vectors"):
        beyond_accuracy(RECS, TRAIN, N_ITEMS, [2], item_vectors=VECTORS[:4])
    with pytest.raises(InputError, match="cut-offs"):
        beyond_accuracy(RECS, TRAIN, N_ITEMS, [0])
