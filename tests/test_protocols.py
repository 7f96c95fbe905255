"""Tests of mp2v4rec.protocols (and the candidates/item_bias options of recommend_top_k):
hand-computed candidate sets, sampled ranks, popblend, graded NDCG, AUC and GAUC."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from mp2v4rec.io import InputError
from mp2v4rec.protocols import (
    Block,
    blend_bias,
    block_auc,
    block_items,
    graded_metrics,
    item_popularity,
    resolve_score,
    sample_negatives,
    sampled_metrics,
    sampled_ranks,
    score_items,
    select_blend_beta,
)
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix


def pairs(rows, weights=None):
    """Interaction table from (user, item) pairs."""
    return pl.DataFrame(
        {
            "user": pl.Series([u for u, _ in rows], dtype=pl.Int32),
            "item": pl.Series([i for _, i in rows], dtype=pl.Int32),
            "weight": pl.Series(weights or [1.0] * len(rows), dtype=pl.Float32),
            "timestamp": pl.Series([0] * len(rows), dtype=pl.Int64),
        }
    )


def value(table, metric, k):
    return table.filter((pl.col("metric") == metric) & (pl.col("k") == k))["value"][0]


# 1-D "embeddings": user 0 scores items 0..5 as 5, 4, 3, 2, 1, 0 (dot); user 1 the reverse sign
U1 = np.array([[1.0], [-1.0]], dtype=np.float32)
V1 = np.array([[5.0], [4.0], [3.0], [2.0], [1.0], [0.5]], dtype=np.float32)


# ---- candidate sets -------------------------------------------------------------------------


def test_all_and_block_candidates_on_a_tiny_example():
    seen = seen_matrix(pairs([(0, 0)]), 2, 6)  # user 0 trained on item 0
    users = np.array([0])
    items, scores = recommend_top_k(U1, V1, users, k=3, score="dot", seen=seen)
    assert items.tolist() == [[1, 2, 3]] and scores.tolist() == [[4, 3, 2]]
    block = block_items(pairs([(0, 5), (1, 3)]), pairs([(0, 1), (0, 3)]))
    assert block.tolist() == [1, 3, 5]
    items, scores = recommend_top_k(U1, V1, users, k=3, score="dot", seen=seen, candidates=block)
    assert items.tolist() == [[1, 3, 5]] and scores.tolist() == [[4, 2, 0.5]]
    # fewer unseen candidates than k: padded; seen items inside the block are masked
    seen = seen_matrix(pairs([(0, 0), (0, 1)]), 2, 6)
    items, scores = recommend_top_k(U1, V1, users, k=4, score="dot", seen=seen, candidates=block)
    assert items.tolist() == [[3, 5, -1, -1]] and scores.tolist() == [[2, 0.5, -np.inf, -np.inf]]


def test_block_never_recommends_outside_the_block_and_matches_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n_items = int(rng.integers(5, 40))
        U = rng.normal(size=(6, 3)).astype(np.float32)
        V = np.round(rng.normal(size=(n_items, 3)), 1).astype(np.float32)  # some ties
        block = rng.choice(n_items, size=int(rng.integers(1, n_items)), replace=False)
        seen = sp.csr_matrix(rng.random((6, n_items)) < 0.3)
        bias = rng.normal(size=n_items).astype(np.float32) if trial % 2 else None
        k = int(rng.integers(1, n_items + 1))
        score = ("cosine", "dot")[trial % 3 == 0]
        items, scores = recommend_top_k(
            U,
            V,
            np.arange(6),
            k=k,
            score=score,
            seen=seen,
            candidates=block,
            item_bias=bias,
            chunk_size=4,
        )
        assert np.isin(items[items >= 0], block).all()
        full = score_items(U, V, np.arange(6), score=score, item_bias=bias)
        for u in range(6):
            allowed = [i for i in sorted(block) if not seen[u, i]]
            want = sorted(allowed, key=lambda i: (-full[u, i], i))[:k]
            assert items[u, : len(want)].tolist() == want
            assert (items[u, len(want) :] == -1).all()


def test_candidate_and_bias_arguments_are_checked():
    with pytest.raises(InputError, match="candidate item 6"):
        recommend_top_k(U1, V1, np.array([0]), k=1, candidates=np.array([1, 6]))
    with pytest.raises(InputError, match="candidates"):
        recommend_top_k(U1, V1, np.array([0]), k=1, candidates=np.array([], dtype=int))
    with pytest.raises(InputError, match="item_bias"):
        recommend_top_k(U1, V1, np.array([0]), k=1, item_bias=np.zeros(5))


# ---- sampled protocol -----------------------------------------------------------------------


def test_sampled_ranks_and_metrics_by_hand():
    # user 0: positive 3 (score 2) vs negatives 1, 4, 5 (4, 1, 0) -> rank 2
    #         positive 1 (score 4) vs negatives 2, 3, 4 (3, 2, 1) -> rank 1
    # user 1: positive 5 (score 0) vs negatives 0, 1, 2 (-5, -4, -3) -> rank 1
    users, positives = np.array([0, 0, 1]), np.array([3, 1, 5])
    negatives = np.array([[1, 4, 5], [2, 3, 4], [0, 1, 2]])
    ranks = sampled_ranks(U1, V1, users, positives, negatives, score="dot")
    assert ranks.tolist() == [2, 1, 1]
    table = sampled_metrics(users, ranks, [1, 2])
    # per user first (user 0: mean of its two positives), then over users
    assert value(table, "hitrate", 1) == pytest.approx((0.5 + 1) / 2)
    assert value(table, "hitrate", 2) == pytest.approx(1.0)
    assert value(table, "ndcg", 1) == pytest.approx(0.75)
    assert value(table, "ndcg", 2) == pytest.approx((0.8154648767857288 + 1) / 2)
    assert table["n_users"].to_list() == [2] * 4


def test_sampled_ties_are_pessimistic():
    ranks = sampled_ranks(np.zeros((1, 2)), np.ones((4, 2)), [0], [0], [[1, 2, 3]])
    assert ranks.tolist() == [4]


def test_sample_negatives_exclusions_reproducibility_and_uniformity():
    n_items, rng = 30, np.random.default_rng(1)
    train = pairs([(u, int(i)) for u in range(40) for i in rng.choice(n_items, 8, replace=False)])
    truth = pairs([(u, int(i)) for u in range(40) for i in rng.choice(n_items, 3, replace=False)])
    valid = pairs([(u, (u + 1) % n_items) for u in range(40)])
    kw = dict(n_negatives=6, seed=3, exclude=[valid])
    users, pos, neg = sample_negatives(train, truth, n_items, **kw)
    forbidden = {
        (r["user"], r["item"]) for t in (train, truth, valid) for r in t.iter_rows(named=True)
    }
    assert not any((u, i) in forbidden for u, row in zip(users, neg, strict=True) for i in row)
    assert all(len(set(row)) == 6 for row in neg)
    assert {(u, i) for u, i in zip(users, pos, strict=True)} == {
        (r["user"], r["item"]) for r in truth.iter_rows(named=True)
    }
    again = sample_negatives(train, truth, n_items, **kw)
    assert all(np.array_equal(a, b) for a, b in zip((users, pos, neg), again, strict=True))
    other = sample_negatives(train, truth, n_items, **{**kw, "seed": 4})[2]
    assert not np.array_equal(neg, other)
    # the pool restricts the negatives
    pool = np.arange(0, n_items, 2)
    assert np.isin(sample_negatives(train, truth, n_items, n_negatives=2, pool=pool)[2], pool).all()
    # uniform over the allowed items: one user, 4000 positives, allowed = {0, 2, 5}
    train = pairs([(0, 1), (0, 3), (0, 4)])
    truth = pairs([(0, i) for i in range(6, 4006)])
    neg = sample_negatives(train, truth, 4006, n_negatives=1, seed=0)[2]
    assert set(np.unique(neg)) == {0, 2, 5}
    assert np.allclose(np.bincount(neg.ravel(), minlength=6)[[0, 2, 5]] / 4000, 1 / 3, atol=0.04)


def test_sample_negatives_with_exactly_n_allowed_items():
    train, truth = pairs([(0, 0), (0, 2)]), pairs([(0, 4)])
    users, pos, neg = sample_negatives(train, truth, 6, n_negatives=3, seed=9)
    assert users.tolist() == [0] and pos.tolist() == [4] and sorted(neg[0]) == [1, 3, 5]
    with pytest.raises(InputError, match="user 0 has only 3 items"):
        sample_negatives(train, truth, 6, n_negatives=4)


# ---- popblend -------------------------------------------------------------------------------


def test_popblend_zero_beta_is_cosine_and_large_beta_is_popularity_order():
    rng = np.random.default_rng(2)
    U, V = rng.normal(size=(7, 4)), rng.normal(size=(8, 4))
    train = pairs([(u, i) for i in range(8) for u in range(3 * i % 8)] + [(0, 1), (0, 1)])
    pop = item_popularity(train, 8)
    assert pop.tolist() == [0, 3, 6, 1, 4, 7, 2, 5]  # distinct users: the repeat counts once
    cosine = recommend_top_k(U, V, np.arange(7), k=8)
    base, bias = resolve_score("popblend", beta=0.0, popularity=pop)
    zero = recommend_top_k(U, V, np.arange(7), k=8, score=base, item_bias=bias)
    assert np.array_equal(cosine[0], zero[0]) and np.allclose(cosine[1], zero[1])
    items, _ = recommend_top_k(U, V, np.arange(7), k=8, item_bias=blend_bias(pop, 1e3))
    assert (items == [5, 2, 7, 4, 1, 6, 3, 0]).all()  # popularity descending for every user
    assert resolve_score("dot") == ("dot", None)
    with pytest.raises(InputError, match="popularity"):
        resolve_score("popblend", beta=0.1)


def test_select_blend_beta_picks_the_best_validation_recall():
    # cosines: user 0 -> item 0: 1.0, item 1: 0.8; user 1 -> item 2: 1.0, item 1: 0.6.
    # item 1 has 7 train users (log 8 = 2.079), the others none. Valid: user 0 -> 1, user 1 -> 2.
    # beta > 0.096 moves item 1 above item 0 for user 0; beta > 0.192 above item 2 for user 1.
    U = np.array([[1, 0], [0, 1]] + [[1, 1]] * 7, dtype=np.float32)
    V = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    # users 0 and 1 also watched item 3 (masked), so neither gets the cold-user fallback
    train = pairs([(u, 1) for u in range(2, 9)] + [(0, 3), (1, 3)])
    valid = pairs([(0, 1), (1, 2)])
    beta, table = select_blend_beta(U, V, train, valid, 4, grid=[0, 0.05, 0.1, 0.2, 0.5], k=1)
    assert beta == 0.1
    assert table["recall"].to_list() == [0.5, 0.5, 1.0, 0.5, 0.5]
    beta, _ = select_blend_beta(U, V, train, valid, 4, grid=[0.2, 0.0, 0.5], k=1)
    assert beta == 0.0  # all tie at 0.5: the smallest beta


# ---- graded relevance -----------------------------------------------------------------------


def recs(rows):
    """recs table from (user, rank, item) rows."""
    users, ranks, items = (np.array(c) for c in zip(*rows, strict=True))
    return recs_frame(users, items[:, None], np.zeros((len(rows), 1))).with_columns(
        rank=pl.Series(ranks, dtype=pl.Int16)
    )


def test_graded_ndcg_by_hand():
    # block gains 3, 0, 1, 2 for items 0..3; recs 0, 1, 2 -> gains [3, 0, 1]; ideal [3, 2, 1]
    block = pairs([(0, 0), (0, 1), (0, 2), (0, 3)], [3.0, 0.0, 1.0, 2.0])
    table = graded_metrics(recs([(0, 1, 0), (0, 2, 1), (0, 3, 2)]), block, [1, 2, 3])
    assert table["metric"].to_list() == ["graded_ndcg"] * 3
    assert table["value"].to_list() == pytest.approx([1.0, 0.7039180890341347, 0.7350069851388743])
    # an item outside the block keeps its rank with gain 0
    table = graded_metrics(recs([(0, 1, 0), (0, 2, 9), (0, 3, 2)]), block, [3])
    assert table["value"][0] == pytest.approx(0.7350069851388743)


def test_graded_cap_and_which_users_count():
    # cap 2: gains 2, 0, 1, 2 (weight 9 capped); DCG@3 = 2 + 1/2, IDCG@3 = 2 + 2/log2(3) + 1/2.
    # user 1 (a positive, no recs) counts 0; user 2 (all gains 0) is not evaluated.
    block = pairs(
        [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1)], [3.0, 0.0, 1.0, 9.0, 1.0, 0, 0]
    )
    table = graded_metrics(recs([(0, 1, 0), (0, 2, 1), (0, 3, 2), (2, 1, 0)]), block, [3], cap=2)
    assert table["value"][0] == pytest.approx(0.6645649565734895 / 2)
    assert table["n_users"][0] == 2


def test_graded_block_is_prepared_once_and_a_block_without_gain_is_refused():
    block = Block.of(pairs([(0, 0), (0, 1), (0, 2), (0, 3)], [3.0, 0.0, 1.0, 2.0]))
    first = graded_metrics(recs([(0, 1, 0), (0, 2, 1), (0, 3, 2)]), block, [3])
    again = graded_metrics(recs([(0, 1, 0), (0, 2, 1), (0, 3, 2)]), block, [3])
    assert first.equals(again) and list(block._ideal) == [(5.0, 3)]  # cached per (cap, K)
    for weights in ([0.0, 0.0], []):
        empty = pairs([(0, 0), (0, 1)][: len(weights)], weights)
        with pytest.raises(InputError, match="no positive gain"):
            graded_metrics(recs([(0, 1, 0)]), empty, [1])


# ---- AUC / GAUC -----------------------------------------------------------------------------


def test_auc_perfect_and_constant_scores():
    block = pairs([(0, 0), (0, 1), (0, 2), (0, 3)], [3.0, 2.0, 1.0, 0.0])  # items 0, 1 positive
    V = np.array([[3.0], [2.0], [1.0], [0.0]])
    assert block_auc(np.ones((1, 1)), V, block, score="dot")["auc"] == 1.0
    flat = block_auc(np.zeros((1, 1)), V, block, score="dot")
    assert flat["auc"] == 0.5 and flat["gauc"] == 0.5


def test_auc_gauc_with_a_tie_by_hand():
    # item scores 3, 1, 1, 0, 2 (dot); user 1 scores their negatives
    # user 0: positives items 0, 1 (3, 1), negatives 2, 3, 4 (1, 0, 2): (3 + 1.5) / 6 = 0.75
    # user 1: positive item 0 (-3), negative item 3 (0): AUC 0
    # user 2: positive item 4 (2) only: in the pooled AUC, not in GAUC
    # pooled: 4 positives (3, 1, -3, 2) x 4 negatives (1, 0, 2, 0): (4 + 2.5 + 0 + 3.5) / 16
    # GAUC by impressions: (0.75 * 5 + 0 * 2) / 7
    block = pairs(
        [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 3), (2, 4)],
        [5.0, 2.0, 1.9, 0.0, 1.0, 2.5, 0.5, 3.0],
    )
    U = np.array([[1.0], [-1.0], [1.0]])
    V = np.array([[3.0], [1.0], [1.0], [0.0], [2.0]])
    for chunk_size in (1, 2, 256):
        out = block_auc(U, V, block, score="dot", threshold=2.0, chunk_size=chunk_size)
        assert out["auc"] == pytest.approx(0.625)
        assert out["gauc"] == pytest.approx(0.5357142857142857)
        assert (out["n_users"], out["n_positives"], out["n_negatives"]) == (2, 4, 4)
    bias = np.array([0, 0, 0, 0, -10.0])  # item 4 to the bottom: user 0 AUC (3 + 2.5) / 6
    out = block_auc(U, V, block, score="dot", item_bias=bias, chunk_size=1)
    assert out["gauc"] == pytest.approx(5.5 / 6 * 5 / 7)


def test_auc_matches_pairwise_count_on_random_data():
    rng = np.random.default_rng(5)
    U, V = rng.normal(size=(12, 3)), np.round(rng.normal(size=(15, 3)), 0)  # many ties
    keep = rng.random((12, 15)) < 0.7
    u, i = np.nonzero(keep)
    w = rng.choice([0.0, 1.0, 2.0, 3.0], size=u.size)
    block = pairs(list(zip(u.tolist(), i.tolist(), strict=True)), w.tolist())
    out = block_auc(U, V, block, score="cosine", chunk_size=5)
    S = score_items(U, V, np.arange(12)).astype(np.float64)
    per, weights = [], []
    s, p = S[u, i], w >= 2
    cmp = (s[p][:, None] > s[~p][None, :]) + 0.5 * (s[p][:, None] == s[~p][None, :])
    for user in range(12):
        su, pu = S[user, i[u == user]], p[u == user]
        if pu.any() and (~pu).any():
            c = (su[pu][:, None] > su[~pu]) + 0.5 * (su[pu][:, None] == su[~pu])
            per.append(c.mean())
            weights.append(pu.size)
    assert out["auc"] == pytest.approx(cmp.mean())
    assert out["gauc"] == pytest.approx(np.average(per, weights=weights))
    assert out["n_users"] == len(per)
    # row order does not matter; a repeated pair keeps its largest weight
    shuffled = pl.concat([block, block.head(3).with_columns(weight=pl.lit(-1.0, pl.Float32))])
    again = block_auc(U, V, shuffled.sample(fraction=1.0, shuffle=True, seed=1), chunk_size=5)
    assert again == out


@pytest.mark.parametrize("rows_per_user", [1, 60])  # gathered scores / dense rows per user
def test_sampled_ranks_match_brute_force(rows_per_user):
    rng = np.random.default_rng(rows_per_user)
    U, V = rng.normal(size=(50, 4)), np.round(rng.normal(size=(300, 4)), 1)
    users = np.repeat(np.arange(50 // rows_per_user + 1), rows_per_user)[:50]
    items = rng.integers(0, 300, size=(50, 4))
    bias = rng.normal(size=300)
    ranks = sampled_ranks(U, V, users, items[:, 0], items[:, 1:], score="dot", item_bias=bias)
    S = (U[users, None, :] * V[items]).sum(-1) + bias[items]
    assert ranks.tolist() == (1 + (S[:, 1:] >= S[:, :1]).sum(1)).tolist()
