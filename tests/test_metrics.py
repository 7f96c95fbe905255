"""Tests of mp2v4rec.metrics: hand-computed cases, properties and a per-user reference."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mp2v4rec.io import InputError
from mp2v4rec.metrics import (
    DEFAULT_KS,
    METRICS,
    accuracy_metrics,
    hit_matrix,
    per_user_metrics,
)

A, B, C = 10, 11, 12


def recs_from_lists(lists: dict[int, list[int]]) -> pl.DataFrame:
    rows = [(u, r + 1, i) for u, items in lists.items() for r, i in enumerate(items)]
    return pl.DataFrame(
        rows,
        schema={"user": pl.Int32, "rank": pl.Int16, "item": pl.Int32},
        orient="row",
    ).with_columns(score=pl.lit(0.0, dtype=pl.Float32))


def truth_from_sets(sets: dict[int, list[int]]) -> pl.DataFrame:
    rows = [(u, i) for u, items in sets.items() for i in items]
    return pl.DataFrame(
        rows, schema={"user": pl.Int32, "item": pl.Int32}, orient="row"
    ).with_columns(weight=pl.lit(1.0, dtype=pl.Float32), timestamp=pl.lit(0, dtype=pl.Int64))


def lookup(table: pl.DataFrame, metric: str, k: int) -> float:
    return table.filter((pl.col("metric") == metric) & (pl.col("k") == k))["value"].item()


# user 1: relevant {A, B, C} (A listed twice), hits at ranks 1 and 4; user 2: no hit;
# user 3: no recommendations; user 4: recommendations but no truth (ignored).
HAND_RECS = recs_from_lists({1: [A, 20, 21, B, 22], 2: [1, 2, 3, 4, 5], 4: [A, B, C, 1, 2]})
HAND_TRUTH = truth_from_sets({1: [A, B, C, A], 2: [30], 3: [40, 41]})

# Expected values for user 1, computed by hand: 1/log2(3) = 0.6309297535714575,
# 1/log2(5) = 0.43067655807339306; IDCG@k>=3 = 1 + 0.63092975 + 0.5 = 2.1309297535714578.
USER1 = {
    "recall": [1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3],
    "precision": [1.0, 0.5, 1 / 3, 0.5, 0.4],
    "hitrate": [1.0, 1.0, 1.0, 1.0, 1.0],
    "ndcg": [
        1.0,
        0.6131471927654584,  # 1 / (1 + 0.6309297535714575)
        0.46927872602275644,  # 1 / 2.1309297535714578
        0.6713860725233041,  # 1.43067655807339306 / 2.1309297535714578
        0.6713860725233041,
    ],
}


def test_hit_matrix_hand_case():
    users, hits, n_rel = hit_matrix(HAND_RECS, HAND_TRUTH, max_k=5)
    assert users.tolist() == [1, 2, 3]
    assert n_rel.tolist() == [3, 1, 2]
    assert hits.tolist() == [
        [True, False, False, True, False],
        [False] * 5,
        [False] * 5,
    ]
    _, hits3, _ = hit_matrix(HAND_RECS, HAND_TRUTH, max_k=3)
    assert hits3.shape == (3, 3)


def test_per_user_hand_case():
    users, per_user = per_user_metrics(HAND_RECS, HAND_TRUTH, [1, 2, 3, 4, 5])
    assert users.tolist() == [1, 2, 3]
    for metric, expected in USER1.items():
        np.testing.assert_allclose(per_user[metric][0], expected, rtol=1e-12)
        np.testing.assert_array_equal(per_user[metric][1:], 0.0)


def test_accuracy_hand_case_is_mean_over_three_users():
    table = accuracy_metrics(HAND_RECS, HAND_TRUTH, [5, 1])
    assert table.schema == {
        "metric": pl.String,
        "k": pl.Int64,
        "value": pl.Float64,
        "n_users": pl.Int64,
    }
    assert table["metric"].to_list() == [m for m in METRICS for _ in (5, 1)]
    assert table["k"].to_list() == [5, 1] * 4
    assert table["n_users"].unique().to_list() == [3]
    assert lookup(table, "recall", 5) == pytest.approx(0.2222222222222222)  # (2/3) / 3
    assert lookup(table, "precision", 5) == pytest.approx(0.13333333333333333)  # 0.4 / 3
    assert lookup(table, "hitrate", 5) == pytest.approx(1 / 3)
    assert lookup(table, "ndcg", 5) == pytest.approx(0.22379535750776802)  # 0.67138607 / 3
    assert lookup(table, "precision", 1) == pytest.approx(1 / 3)
    assert lookup(table, "ndcg", 1) == pytest.approx(1 / 3)


def test_recall_is_not_capped_at_k():
    # 4 relevant, both top-2 slots hit: recall@2 = 2/4 (the study), not 2/min(2, 4)
    table = accuracy_metrics(recs_from_lists({0: [1, 2]}), truth_from_sets({0: [1, 2, 3, 4]}), [2])
    assert lookup(table, "recall", 2) == pytest.approx(0.5)
    assert lookup(table, "ndcg", 2) == pytest.approx(1.0)


def test_perfect_ranking():
    relevant = [7, 3, 9]
    recs = recs_from_lists({0: relevant + [1, 2, 4, 5]})
    _, per_user = per_user_metrics(recs, truth_from_sets({0: relevant}), [1, 2, 3, 5, 7])
    np.testing.assert_allclose(per_user["ndcg"][0], 1.0)
    assert per_user["recall"][0, 2] == 1.0  # recall@|rel|
    assert per_user["precision"][0].tolist() == [1.0, 1.0, 1.0, 0.6, 3 / 7]


def test_no_truth_is_an_error_and_ks_are_checked():
    empty = truth_from_sets({})
    with pytest.raises(InputError, match="no user"):
        accuracy_metrics(HAND_RECS, empty, [1])
    for ks in ([], [0, 1], [2, 2], [1.5]):
        with pytest.raises(InputError):
            accuracy_metrics(HAND_RECS, HAND_TRUTH, ks)


def test_bad_recs_are_refused():
    with pytest.raises(InputError, match="rank"):
        accuracy_metrics(HAND_RECS.drop("rank"), HAND_TRUTH, [1])
    dup_item = recs_from_lists({1: [A, A]})
    with pytest.raises(InputError, match="lists item 10 twice for user 1"):
        accuracy_metrics(dup_item, HAND_TRUTH, [2])
    dup_rank = pl.concat([recs_from_lists({1: [A]}), recs_from_lists({1: [B]})])
    with pytest.raises(InputError, match="repeats user 1 rank 1"):
        accuracy_metrics(dup_rank, HAND_TRUTH, [1])
    zero_rank = recs_from_lists({1: [A]}).with_columns(rank=pl.lit(0, dtype=pl.Int16))
    with pytest.raises(InputError, match="ranks start at 1"):
        accuracy_metrics(zero_rank, HAND_TRUTH, [1])
    with pytest.raises(InputError, match="truth table row 0 has item -1"):
        accuracy_metrics(HAND_RECS, truth_from_sets({1: [-1]}), [1])


def test_ranks_beyond_max_k_and_default_ks():
    recs = recs_from_lists({0: list(range(150))})
    truth = truth_from_sets({0: [0, 120]})
    table = accuracy_metrics(recs, truth, DEFAULT_KS)
    assert lookup(table, "recall", 100) == 0.5  # item 120 sits at rank 121
    assert table.height == len(DEFAULT_KS) * len(METRICS)


# ---- properties against a straightforward per-user reference -------------------------------


def reference(lists: dict[int, list[int]], sets: dict[int, list[int]], ks: list[int]):
    out = {m: {} for m in METRICS}
    for user, items in sets.items():
        relevant = set(items)
        if not relevant:
            continue
        ranking = lists.get(user, [])
        for metric in METRICS:
            out[metric][user] = []
        for k in ks:
            rel = [item in relevant for item in ranking[:k]]
            hits = sum(rel)
            dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(rel) if hit)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
            out["recall"][user].append(hits / len(relevant))
            out["precision"][user].append(hits / k)
            out["hitrate"][user].append(float(hits > 0))
            out["ndcg"][user].append(dcg / idcg)
    return out


@st.composite
def cases(draw):
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 6))
    lists, sets = {}, {}
    for user in range(n_users):
        if draw(st.booleans()):
            lists[user] = draw(st.permutations(range(n_items)))[: draw(st.integers(0, n_items))]
        sets[user] = draw(st.lists(st.integers(0, n_items - 1), max_size=2 * n_items))
    if not any(sets.values()):
        sets[0] = [0]
    ks = sorted(draw(st.sets(st.integers(1, n_items + 2), min_size=1, max_size=5)))
    return lists, sets, ks


@settings(max_examples=60, deadline=None)
@given(cases())
def test_matches_reference_and_properties(case):
    lists, sets, ks = case
    recs, truth = recs_from_lists(lists), truth_from_sets(sets)
    users, per_user = per_user_metrics(recs, truth, ks)
    expected = reference(lists, sets, ks)
    assert users.tolist() == sorted(expected["recall"])
    for metric in METRICS:
        want = np.array([expected[metric][u] for u in users.tolist()])
        np.testing.assert_allclose(per_user[metric], want, rtol=1e-12, atol=1e-15)
        assert ((per_user[metric] >= 0) & (per_user[metric] <= 1 + 1e-12)).all()
    assert (np.diff(per_user["recall"], axis=1) >= 0).all()  # ks sorted ascending
    table = accuracy_metrics(recs, truth, ks)
    for metric in METRICS:
        means = table.filter(pl.col("metric") == metric)["value"].to_numpy()
        np.testing.assert_allclose(means, per_user[metric].mean(axis=0))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n_rel: st.tuples(
            st.permutations(range(n_rel)),  # relevant items 0..n_rel-1 in any order
            st.permutations(range(n_rel, n_rel + 6)),
            st.sampled_from([1, 2, 3, 5, 10, 20]),
        )
    )
)
def test_any_permutation_of_relevant_first_has_ndcg_one(case):
    relevant, others, k = case
    recs = recs_from_lists({0: list(relevant) + list(others)})
    _, per_user = per_user_metrics(recs, truth_from_sets({0: list(relevant)}), [k])
    assert per_user["ndcg"][0, 0] == pytest.approx(1.0)
    assert per_user["recall"][0, 0] == pytest.approx(min(k, len(relevant)) / len(relevant))
