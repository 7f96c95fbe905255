"""User cohorts, bootstrap confidence intervals and paired comparisons of per-user values.

Per-user arrays are ``[n_users]`` or ``[n_users, m]`` (one column per K); NaN marks a user for
whom a measure is undefined and is left out of every mean. Resamples are drawn over users with
replacement; the same seed gives the same resamples for every metric (common random numbers).
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import scipy.stats

from mp2v4rec.io import InputError
from mp2v4rec.metrics import _columns

COHORTS = ("low", "medium", "high")
_CHUNK_CELLS = 1 << 22  # resample-weight cells per chunk (32 MB of float64)

SUMMARY_SCHEMA = {
    "metric": pl.String,
    "k": pl.Int64,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_users": pl.Int64,
}


def activity_cohorts(train: pl.DataFrame, users: np.ndarray) -> pl.DataFrame:
    """``user, cohort, n_train``: ``users`` split into terciles of their train row count.

    Users are ordered by (n_train, user index) and cut by position, so the three cohorts differ
    in size by at most one (the larger ones first) and ties are broken by the lower user index
    (tied users may fall on both sides of a cut). Users absent from ``train`` count 0.
    """
    users = np.asarray(users, dtype=np.int64)
    if users.ndim != 1 or np.unique(users).size != users.size:
        raise InputError("activity_cohorts needs a 1-D array of distinct user indices")
    t = _columns(train, "train", ("user",))["user"].to_numpy()
    uniq, cnt = np.unique(t, return_counts=True)  # sorted train users, their row counts
    pos = np.searchsorted(uniq, users).clip(max=max(uniq.size - 1, 0))
    n_train = np.where(uniq[pos] == users, cnt[pos], 0) if uniq.size else np.zeros_like(users)
    order = np.lexsort((users, n_train))
    cohort = np.empty(users.size, dtype=np.int64)
    cohort[order] = np.arange(users.size) * 3 // max(users.size, 1)
    return pl.DataFrame(
        {
            "user": users.astype(np.int32),
            "cohort": np.asarray(COHORTS, dtype=object)[cohort].tolist(),
            "n_train": n_train,
        },
        schema={"user": pl.Int32, "cohort": pl.String, "n_train": pl.Int64},
    )


def bootstrap_means(
    per_user: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(point, boot)``: the mean over users (``[m]``) and ``n_boot`` resampled means
    (``[n_boot, m]``); a 1-D input is treated as one column.

    Each resample is a row of counts (how often each user is drawn) and the means are one matrix
    product per chunk of resamples, so memory stays at about ``_CHUNK_CELLS`` cells.
    """
    x = np.asarray(per_user, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise InputError(f"per-user values must be [n_users] or [n_users, m], got {x.shape}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise InputError(f"n_boot must be a positive integer, got {n_boot!r}")
    n, m = x.shape
    ok = ~np.isnan(x)
    x0 = np.ascontiguousarray(np.where(ok, x, 0.0).T)  # [m, n]: x0 @ w.T is the fast layout
    with np.errstate(invalid="ignore", divide="ignore"):
        point = x0.sum(axis=1) / ok.sum(axis=0)
    if n == 0:
        return point, np.full((n_boot, m), np.nan)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    boot = np.empty((n_boot, m))
    has_nan = not ok.all()
    okt = np.ascontiguousarray(ok.T, dtype=np.float64) if has_nan else None
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(b, n))
        draws += np.arange(b)[:, None] * n
        w = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        denom = (okt @ w.T).T if has_nan else n
        with np.errstate(invalid="ignore", divide="ignore"):
            boot[start : start + b] = (x0 @ w.T).T / denom
    return point, boot


def bootstrap_ci(
    per_user: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple:
    """Percentile bootstrap over users: ``(mean, low, high)`` (floats for a 1-D input, arrays
    ``[m]`` for ``[n_users, m]``); NaN values are skipped, all NaN when no value is left."""
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    point, boot = bootstrap_means(per_user, n_boot=n_boot, seed=seed)
    with warnings.catch_warnings():  # a column without any value gives NaN bounds, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    if np.ndim(per_user) == 1:
        return float(point[0]), float(low[0]), float(high[0])
    return point, low, high


SIGN_FLIPS = 100_000  # random sign flips of a paired test (exact enumeration below 2^17 users)


def sign_flip_test(d: np.ndarray, *, n_flips: int = SIGN_FLIPS, seed: int = 0) -> tuple:
    """Two-sided paired permutation test of ``mean(d) = 0``: under the null every per-user
    difference is as likely negated, so the p-value is the share of sign assignments whose mean
    is at least as far from 0 as the observed one. Exact (all ``2^n`` assignments) when
    ``2^n <= n_flips``, else ``n_flips`` seeded random assignments with the +1 correction.

    Returns ``(p_value, floor)``: ``floor`` is the smallest p-value the test can resolve
    (``2 / 2^n`` exact, ``1 / (n_flips + 1)`` sampled); report a p-value at the floor as
    "p < floor" or "p <= floor", never as measured below it."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    if n == 0:
        return float("nan"), float("nan")
    observed = abs(d.sum()) * (1 - 1e-12)  # ties within rounding count as "at least as far"
    if n < 63 and 2**n <= n_flips:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        sums = np.abs(signs @ d)
        return float(np.count_nonzero(sums >= observed) / 2**n), 2.0 / 2**n
    rng = np.random.default_rng(seed)
    total, extreme, done, chunk = d.sum(), 0, 0, max(1, (1 << 22) // n)
    while done < n_flips:
        m = min(chunk, n_flips - done)
        # one random bit per user and assignment (1: negated): sum = total - 2 * flipped part
        raw = np.frombuffer(rng.bytes(m * n // 8 + 1), dtype=np.uint8)
        bits = np.unpackbits(raw, count=m * n).reshape(m, n)
        sums = total - 2.0 * (bits.astype(np.float64) @ d)
        extreme += int(np.count_nonzero(np.abs(sums) >= observed))
        done += m
    return (extreme + 1) / (n_flips + 1), 1.0 / (n_flips + 1)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error):
    the i-th smallest is multiplied by ``(m - i)``, then made monotone and capped at 1; NaN
    entries are left out of the family and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def holm_bounds(p_values, censored) -> np.ndarray:
    """Which of :func:`holm`'s adjusted values are only upper bounds: ``censored`` marks
    p-values that are bounds themselves (a sampled test at its floor: the true p may be
    smaller). An adjusted value is a running maximum over the smaller p-values; it is a bound
    when every term reaching that maximum is censored (a measured term equal to it would hold
    it there). NaN entries give False."""
    p = np.asarray(p_values, dtype=np.float64)
    censored = np.asarray(censored, dtype=bool)
    out = np.zeros(p.shape, dtype=bool)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    terms = np.minimum(p[order] * (order.size - np.arange(order.size)), 1.0)
    reached = np.maximum.accumulate(terms)
    measured = np.maximum.accumulate(np.where(censored[order], -np.inf, terms))
    out[order] = measured < reached * (1 - 1e-12)
    return out


def format_p(p: float, floor: float) -> str:
    """A p-value as text: ``"< floor"`` when it is at the test's floor (it was not measured
    below it), else three significant digits."""
    if np.isnan(p):
        return "n/a"
    if p <= floor * (1 + 1e-9):
        return f"<= {floor:.2g}" if floor >= 1e-3 else f"< {floor * 1.0001:.1e}"
    return f"{p:.3g}"


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    n_flips: int = SIGN_FLIPS,
) -> dict[str, float]:
    """Paired comparison of two methods' per-user values (same users, same order).

    ``diff`` = mean(a - b) with its percentile bootstrap CI (``low``, ``high``, ``n_boot``
    resamples); ``p_value`` is the two-sided sign-flip permutation test of the mean difference
    (:func:`sign_flip_test`, ``n_flips`` assignments) and ``p_floor`` the smallest p-value it can
    resolve. ``t_statistic`` and ``t_p_value`` come from the paired t-test (scipy.stats.ttest_rel;
    a constant non-zero difference gives inf and 0). Pairs with a NaN side are dropped;
    ``n_users`` counts the rest.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise InputError(
            f"paired_test needs two 1-D arrays over the same users, got {a.shape} and {b.shape}"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    nan = float("nan")
    out = {"diff": nan, "low": nan, "high": nan, "p_value": nan, "p_floor": nan}
    out |= {"t_statistic": nan, "t_p_value": nan, "n_users": int(d.size)}
    if d.size == 0:
        return out
    point, boot = bootstrap_means(d, n_boot=n_boot, seed=seed)
    diff, boot = float(point[0]), boot[:, 0]
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    out |= {"diff": diff, "low": float(low), "high": float(high)}
    out["p_value"], out["p_floor"] = sign_flip_test(d, n_flips=n_flips, seed=seed)
    spread = np.ptp(d)
    if d.size > 1 and spread > 1e-12 * max(1.0, float(np.abs(d).max())):
        t = scipy.stats.ttest_rel(a, b)
        out |= {"t_statistic": float(t.statistic), "t_p_value": float(t.pvalue)}
    elif d.size > 1:  # constant difference: the t statistic is infinite (or undefined at 0)
        out["t_statistic"] = float(np.sign(diff) * np.inf) if diff != 0 else nan
        out["t_p_value"] = 0.0 if diff != 0 else 1.0
    return out


def summarise(
    per_user: dict,
    ks: list[int] | None = None,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pl.DataFrame:
    """Tidy ``metric, k, value, ci_low, ci_high, n_users`` from per-user values.

    ``per_user`` maps ``(metric, k)`` to ``[n_users]`` arrays (``beyond.beyond_accuracy``) or
    ``metric`` to ``[n_users, len(ks)]`` arrays (``metrics.per_user_metrics``, with ``ks``).
    ``value`` is the mean over users with a value; ``n_users`` counts them.
    """
    cols: list[tuple[str, int, np.ndarray]] = []
    for key, arr in per_user.items():
        arr = np.asarray(arr, dtype=np.float64)
        if isinstance(key, tuple):
            cols.append((str(key[0]), int(key[1]), arr))
        else:
            if ks is None or arr.ndim != 2 or arr.shape[1] != len(ks):
                raise InputError(
                    f"per-user values of {key!r} need ks and shape [n_users, len(ks)], "
                    f"got {arr.shape}"
                )
            cols.extend((str(key), int(k), arr[:, j]) for j, k in enumerate(ks))
    rows: list = [None] * len(cols)
    for n in {c[2].size for c in cols}:  # one bootstrap per user count: shared resamples
        idx = [i for i, c in enumerate(cols) if c[2].size == n]
        x = np.column_stack([cols[i][2] for i in idx]) if n else np.empty((0, len(idx)))
        mean, low, high = bootstrap_ci(x, n_boot=n_boot, alpha=alpha, seed=seed)
        counts = np.count_nonzero(~np.isnan(x), axis=0)
        for j, i in enumerate(idx):
            rows[i] = (*cols[i][:2], mean[j], low[j], high[j], int(counts[j]))
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")
