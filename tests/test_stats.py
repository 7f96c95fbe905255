"""Tests of mp2v4rec.stats: cohorts, bootstrap intervals, paired tests and the summary table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mp2v4rec.io import InputError
from mp2v4rec.stats import (
    SIGN_FLIPS,
    activity_cohorts,
    bootstrap_ci,
    format_p,
    holm,
    holm_bounds,
    paired_test,
    sign_flip_test,
    summarise,
)


def train_from_counts(counts: dict[int, int]) -> pl.DataFrame:
    users = np.repeat(list(counts), list(counts.values()))
    return pl.DataFrame({"user": users.astype(np.int32), "item": np.arange(users.size)})


def test_cohorts_hand_case():
    # 7 users; user 6 has no train row; users 2 and 4 tie at 3 (lower index first)
    train = train_from_counts({0: 5, 1: 1, 2: 3, 3: 9, 4: 3, 5: 2})
    users = np.array([6, 5, 4, 3, 2, 1, 0])
    got = activity_cohorts(train, users)
    assert got["user"].to_list() == users.tolist()  # rows follow the given users
    assert got["n_train"].to_list() == [0, 2, 3, 9, 3, 1, 5]
    # order by (count, user): 6, 1, 5 | 2, 4 | 0, 3
    cohort = dict(zip(got["user"], got["cohort"], strict=True))
    assert [cohort[u] for u in (6, 1, 5, 2, 4, 0, 3)] == ["low"] * 3 + ["medium"] * 2 + ["high"] * 2


@pytest.mark.parametrize("n_users", [1, 2, 3, 100, 301])
def test_cohorts_are_ordered_terciles(n_users):
    rng = np.random.default_rng(n_users)
    counts = {int(u): int(c) for u, c in enumerate(rng.geometric(0.1, n_users)) if u % 7}
    got = activity_cohorts(train_from_counts(counts), rng.permutation(n_users))
    sizes = got.group_by("cohort").len()["len"].to_list()
    assert sum(sizes) == n_users and max(sizes) - min(sizes) <= 1
    spans = got.group_by("cohort").agg(lo=pl.col("n_train").min(), hi=pl.col("n_train").max())
    spans = {r["cohort"]: (r["lo"], r["hi"]) for r in spans.iter_rows(named=True)}
    ordered = [spans[c] for c in ("low", "medium", "high") if c in spans]
    assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False))
    again = activity_cohorts(train_from_counts(counts), got["user"].to_numpy())
    assert again.equals(got)  # deterministic


def test_cohorts_reject_repeated_users():
    with pytest.raises(InputError):
        activity_cohorts(train_from_counts({0: 1}), np.array([0, 0]))


def test_bootstrap_covers_and_shrinks():
    rng = np.random.default_rng(1)
    small, large = rng.exponential(size=100), rng.exponential(size=10_000)
    widths = []
    for x in (small, large):
        mean, low, high = bootstrap_ci(x, n_boot=1000, seed=0)
        assert mean == pytest.approx(x.mean())
        assert low < mean < high
        widths.append(high - low)
    assert 7 < widths[0] / widths[1] < 14  # ~ sqrt(10_000 / 100)
    assert bootstrap_ci(small, seed=0) == bootstrap_ci(small, seed=0)  # reproducible
    assert bootstrap_ci(small, seed=0) != bootstrap_ci(small, seed=1)


def test_bootstrap_interval_coverage():
    # 95% percentile intervals of normal samples (n = 200) cover the true mean ~95% of the time
    rng = np.random.default_rng(2)
    hits = 0
    for rep in range(200):
        _, low, high = bootstrap_ci(rng.normal(3.0, 2.0, 200), n_boot=400, seed=rep)
        hits += low <= 3.0 <= high
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_matrix_nan_and_empty():
    rng = np.random.default_rng(4)
    x = rng.random((500, 3))
    mean, low, high = bootstrap_ci(x, n_boot=300, seed=5)
    for j in range(3):  # columns share the resamples: same answer one column at a time
        assert (mean[j], low[j], high[j]) == pytest.approx(
            bootstrap_ci(x[:, j], n_boot=300, seed=5)
        )
    y = x[:, 0].copy()
    y[::5] = np.nan
    m, lo, hi = bootstrap_ci(y, n_boot=300)
    assert m == pytest.approx(np.nanmean(y)) and lo < m < hi
    assert all(np.isnan(v) for v in bootstrap_ci(np.array([]), n_boot=10))
    with pytest.raises(InputError):
        bootstrap_ci(x[:, 0], alpha=1.5)


def test_paired_test_detects_shift_and_not_permutation():
    rng = np.random.default_rng(6)
    a = rng.beta(2, 5, size=2000)
    shifted = paired_test(a, a + 0.1, n_boot=1000, seed=0)
    assert shifted["diff"] == pytest.approx(-0.1)
    # no sign assignment reaches a constant shift: the p-value is the +1-corrected floor
    assert shifted["p_value"] == shifted["p_floor"] == 1 / (SIGN_FLIPS + 1)
    assert shifted["high"] < 0 and shifted["t_p_value"] < 1e-10
    noisy = paired_test(a + 0.1 + rng.normal(0, 0.05, a.size), a, n_boot=1000, seed=0)
    assert noisy["low"] > 0.09 and noisy["p_value"] < 1e-4 and noisy["t_p_value"] < 1e-10
    assert noisy["t_statistic"] > 0 and noisy["n_users"] == a.size

    same = paired_test(a, rng.permutation(a), n_boot=1000, seed=0)
    assert abs(same["diff"]) < 1e-12 and same["low"] < 0 < same["high"]
    assert same["p_value"] > 0.5 and same["t_p_value"] > 0.5
    b = rng.permutation(a)
    assert paired_test(a, b, n_boot=500, seed=3) == paired_test(a, b, n_boot=500, seed=3)
    flipped = paired_test(b, a, n_boot=500, seed=3)
    assert flipped["diff"] == pytest.approx(-paired_test(a, b, n_boot=500, seed=3)["diff"])


def test_paired_test_drops_nan_pairs_and_checks_shapes():
    a, b = np.array([0.1, np.nan, 0.3, 0.5]), np.array([0.0, 0.2, np.nan, 0.2])
    out = paired_test(a, b, n_boot=100)
    assert out["n_users"] == 2 and out["diff"] == pytest.approx(0.2)
    with pytest.raises(InputError):
        paired_test(a, b[:3])


def test_summarise_both_layouts():
    rng = np.random.default_rng(8)
    x = rng.random((300, 2))
    x[:10, 1] = np.nan
    by_key = summarise({("ild", 5): x[:, 0], ("ild", 10): x[:, 1]}, n_boot=200)
    by_metric = summarise({"ild": x}, [5, 10], n_boot=200)
    assert by_key.columns == ["metric", "k", "value", "ci_low", "ci_high", "n_users"]
    assert by_key.equals(by_metric)
    assert by_key["k"].to_list() == [5, 10] and by_key["n_users"].to_list() == [300, 290]
    assert by_key["value"].to_list() == pytest.approx([x[:, 0].mean(), np.nanmean(x[:, 1])])
    assert (by_key["ci_low"] < by_key["value"]).all() and (
        by_key["value"] < by_key["ci_high"]
    ).all()
    with pytest.raises(InputError):
        summarise({"ild": x}, [5], n_boot=10)


def test_sign_flip_test_exact_on_a_hand_case():
    """d = (1, 2, 3): the 8 sign assignments have |sum| 6, 4, 2, 0, 0, 2, 4, 6; two reach 6."""
    p, floor = sign_flip_test(np.array([1.0, 2.0, 3.0]))
    assert p == pytest.approx(2 / 8) and floor == pytest.approx(2 / 8)
    p, _ = sign_flip_test(np.array([1.0, -1.0, 2.0, -2.0]))  # sum 0: every assignment counts
    assert p == 1.0
    # sampled: close to the exact value, and never below its floor
    rng = np.random.default_rng(0)
    d = rng.normal(0.05, 1.0, 40)
    p_mc, floor = sign_flip_test(d, n_flips=20_000, seed=1)
    t_p = paired_test(d, np.zeros_like(d))["t_p_value"]
    assert floor == 1 / 20_001 and p_mc >= floor and abs(p_mc - t_p) < 0.05


def test_holm_adjusts_step_down_and_keeps_nan():
    """p = (0.01, 0.04, 0.03, nan): sorted 0.01*3, 0.03*2, 0.04*1 -> 0.03, 0.06, 0.06 (monotone)."""
    got = holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(got[:3], [0.03, 0.06, 0.06])
    assert np.isnan(got[3])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 0.5 * 2 = 1, then monotone


def test_format_p_never_reports_below_the_floor():
    assert format_p(1 / 100_001, 1 / 100_001) == "< 1.0e-05"
    assert format_p(0.25, 0.25) == "<= 0.25"
    assert format_p(0.0123, 1e-5) == "0.0123"


def test_holm_bounds_follow_the_running_maximum():
    """Sorted p: 1e-5 (censored) x 4 = 4e-5; 2e-5 x 3 = 6e-5 (measured, above); 0.01 x 2;
    0.3. Then a censored floor whose Holm term outweighs a measured one behind it, and an
    exact floor (not censored) that is a measurement."""
    p = [0.3, 1e-5, 0.01, 2e-5, np.nan]
    got = holm_bounds(p, [False, True, False, False, False])
    assert got.tolist() == [False, True, False, False, False]
    # 1e-5 x 3 = 3e-5 > 1.5e-5 x 2 = 3e-5? equal: a measured term holds the maximum
    assert holm_bounds([1e-5, 1.5e-5, 0.5], [True, False, False]).tolist() == [True, False, False]
    # 1e-5 x 3 = 3e-5 > 1.2e-5 x 2 = 2.4e-5: the second value is the first's bound
    assert holm_bounds([1e-5, 1.2e-5, 0.5], [True, False, False]).tolist() == [True, True, False]
    assert not holm_bounds([0.25, 0.5], [False, False]).any()  # exact tests: measured
