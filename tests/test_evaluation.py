"""mp2v4rec.evaluation on hand-computed cases: cold pairs, per-split lists, cohorts."""

import numpy as np
import polars as pl
import pytest

from mp2v4rec.evaluation import (
    evaluate_protocols,
    evaluate_run,
    headline_truths,
    split_cold,
    summary_table,
)
from mp2v4rec.io import InputError


def pairs(rows):
    return pl.DataFrame(
        {"user": [u for u, _ in rows], "item": [i for _, i in rows]},
        schema={"user": pl.Int32, "item": pl.Int32},
    ).with_columns(weight=pl.lit(1.0, pl.Float32), timestamp=pl.lit(0, pl.Int64))


def lists(split, by_user):
    rows = [(split, u, r + 1, i) for u, items in by_user.items() for r, i in enumerate(items)]
    return pl.DataFrame(rows, schema=["split", "user", "rank", "item"], orient="row").with_columns(
        pl.col("user", "item").cast(pl.Int32), score=pl.lit(0.0)
    )


# users 0, 1 have train positives, user 2 none; item 5 has none (user 3 is not evaluated)
TRAIN = pairs([(0, 0), (0, 1), (1, 1), (1, 2), (3, 3), (3, 4)])
TRUTHS = {
    "valid": pairs([(0, 2)]),
    "test": pairs([(0, 3), (0, 5), (1, 4), (2, 3)]),  # (0, 5) cold item, (2, 3) cold user
}
RECS = pl.concat(
    [
        lists("test", {0: [3, 4, 5], 1: [0, 4, 3], 2: [1, 3, 0]}),
        lists("valid", {0: [2, 3, 4], 1: [0, 3, 4], 2: [1, 2, 0]}),
    ]
)
ITEMS = pl.DataFrame({"item": list(range(6)), "category": [0, 0, 1, 1, 2, 2]})


def value(table, split, cohort, metric, k):
    row = table.filter(
        (pl.col("split") == split)
        & (pl.col("cohort") == cohort)
        & (pl.col("metric") == metric)
        & (pl.col("k") == k)
    )
    assert row.height == 1, row
    return row["value"][0], row["n_users"][0]


def test_split_cold_separates_pairs_of_users_or_items_without_train_positives():
    warm, cold = split_cold(TRUTHS["test"], TRAIN)
    assert sorted(warm.select("user", "item").rows()) == [(0, 3), (1, 4)]
    assert sorted(cold.select("user", "item").rows()) == [(0, 5), (2, 3)]


def test_cold_pairs_are_their_own_cohort_and_out_of_the_headline():
    table, per_user = evaluate_run(RECS, TRUTHS, TRAIN, ITEMS, [1, 3], per_user_ks=[1], n_boot=50)
    # headline: user 0 finds 3 at rank 1; user 1 finds 4 at rank 2; user 2 has no warm pair
    assert value(table, "test", "all", "recall", 1) == (0.5, 2)
    assert value(table, "test", "all", "recall", 3) == (1.0, 2)
    ndcg = (1.0 + 1 / np.log2(3)) / 2
    assert value(table, "test", "all", "ndcg", 3)[0] == pytest.approx(ndcg)
    # cold cohort: user 0's item 5 at rank 3, user 2's item 3 at rank 2
    assert value(table, "test", "cold", "recall", 1) == (0.0, 2)
    assert value(table, "test", "cold", "recall", 3) == (1.0, 2)
    assert value(table, "valid", "all", "recall", 1) == (1.0, 1)
    assert set(per_user.filter(pl.col("split") == "test")["user"]) == {0, 1}


def test_include_keeps_cold_pairs_in_the_headline_as_the_study_did():
    table, _ = evaluate_run(RECS, TRUTHS, TRAIN, ITEMS, [1, 3], cold="include", n_boot=50)
    # user 0: 1 of {3, 5} at rank 1; user 1: none at rank 1; user 2: none at rank 1
    assert value(table, "test", "all", "recall", 1) == (pytest.approx(0.5 / 3), 3)
    assert value(table, "test", "all", "recall", 3) == (1.0, 3)
    assert value(table, "test", "cold", "recall", 3) == (1.0, 2)  # still reported apart


def test_each_split_is_scored_on_its_own_lists():
    # the valid lists put item 2 first for user 0; the test lists do not hold it at all
    table, _ = evaluate_run(RECS, {"valid": TRUTHS["valid"]}, TRAIN, ITEMS, [1], n_boot=50)
    assert value(table, "valid", "all", "recall", 1) == (1.0, 1)
    swapped = RECS.with_columns(split=pl.col("split").replace({"test": "valid", "valid": "test"}))
    table, _ = evaluate_run(swapped, {"valid": TRUTHS["valid"]}, TRAIN, ITEMS, [1], n_boot=50)
    assert value(table, "valid", "all", "recall", 1) == (0.0, 1)


def test_bad_cold_mode_and_lists_without_splits_are_refused():
    with pytest.raises(InputError, match="evaluate.cold must be one of"):
        headline_truths(TRUTHS, TRAIN, "drop")
    with pytest.raises(InputError, match="no 'split' column.*rerun the recommend jobs"):
        evaluate_run(RECS.drop("split"), TRUTHS, TRAIN, ITEMS, [1], n_boot=50)


def test_summary_chooses_the_baseline_on_validation_never_on_test():
    def table(valid, test):
        rows = [("valid", valid), ("test", test)]
        return pl.DataFrame(
            {
                "split": [s for s, _ in rows],
                "cohort": "all",
                "metric": "recall",
                "k": 1,
                "value": [v for _, v in rows],
                "ci_low": 0.0,
                "ci_high": 1.0,
                "n_users": 2,
            }
        )

    def per_user(values):
        return pl.DataFrame(
            {"user": [0, 1], "split": "test", "metric": "recall", "k": 1, "value": values}
        )

    tables = {"a": table(0.9, 0.1), "b": table(0.2, 0.8), "m": table(0.5, 0.5)}
    values = {"a": per_user([0.0, 0.2]), "b": per_user([1.0, 0.6]), "m": per_user([0.5, 0.5])}
    summary, best = summary_table(tables, values, ["a", "b"], ks=[1], select_k=1, n_boot=50)
    assert best == "a"  # the better validation recall, although b is far better on test
    m = summary.filter(pl.col("run") == "m").row(0, named=True)
    assert m["baseline"] == "a" and m["diff_vs_baseline"] == pytest.approx(0.4)  # 0.5 - 0.1


def test_protocols_score_the_default_lists_the_recommend_rule_wrote():
    """Graded NDCG of the default protocol reads the given lists; the other protocols rank."""
    rng = np.random.default_rng(0)
    U = rng.normal(size=(4, 3)).astype(np.float32)
    V = rng.normal(size=(6, 3)).astype(np.float32)
    block = TRUTHS["test"].select("user", "item", weight=pl.lit(3.0, pl.Float32))
    kw = dict(
        splits=["test"],
        candidate_sets=["all", "block"],
        scores=["cosine"],
        ks=[1, 3],
        k=3,
        cold="exclude",
        n_negatives=2,
        blend_grid=(0.0,),
        graded_cap=5.0,
        threshold=2.0,
        n_boot=20,
        seed=0,
    )
    args = (U, V, "cosine", TRAIN, TRUTHS, ITEMS, block, np.array([0, 1, 2]))
    ranked = evaluate_protocols(*args, **kw)
    given = evaluate_protocols(*args, **kw, recs=RECS)

    def graded(table, candidates):
        rows = table.filter(
            (pl.col("metric") == "graded_ndcg") & (pl.col("candidates") == candidates)
        )
        return rows.sort("k")["value"].to_list()

    # RECS' test lists put user 0's relevant item 3 at rank 1 and user 1's item 4 at rank 2
    assert graded(given, "all") == pytest.approx([0.5, (1 + 1 / np.log2(3)) / 2])
    assert graded(given, "block") == graded(ranked, "block")  # ranked either way
