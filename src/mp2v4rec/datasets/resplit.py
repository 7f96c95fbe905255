"""Fresh splits of a KuaiRec-layout archive: new evaluation users with new hold-outs, for
confirming a frozen selection on data the selection never scored.

The development archives (``../shared/data``, read their README) were made from a rating log:
``big_matrix`` holds the train history, ``small_matrix`` each evaluation user's last 20 % of
ratings by time plus 100 never-rated items as sampled negatives. :func:`fresh_split` pools the
real ratings again (every big-matrix row; the small-matrix rows whose ``watch_ratio`` is a
rating / 2, i.e. not a sampled negative), draws ``n_eval`` new evaluation users among those with
at least ``min_ratings`` ratings, avoiding the archive's own evaluation users while enough
others are eligible, and rebuilds the two matrices the same way (last ``holdout`` share by time,
ties by item; ``negatives`` sampled never-rated items per user). Friend lists and item
categories are copied unchanged. Deterministic in ``seed``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from mp2v4rec.io import InputError, atomic_path

DATA = "KuaiRec 2.0/data/"
COLUMNS = [
    "user_id",
    "video_id",
    "play_duration",
    "video_duration",
    "time",
    "date",
    "timestamp",
    "watch_ratio",
]


def _member(archive: zipfile.ZipFile, name: str) -> pl.DataFrame:
    try:
        return pl.read_csv(archive.read(DATA + name), infer_schema_length=0)
    except KeyError as exc:
        raise InputError(f"{archive.filename}: no member {DATA + name}") from exc


def real_ratings(small: pl.DataFrame) -> pl.Series:
    """Rows of a small matrix that are real ratings (watch_ratio = rating / 2 for a rating of
    1..5), not sampled negatives (watch_ratio drawn uniformly below 1)."""
    twice = small["watch_ratio"].cast(pl.Float64) * 2
    return ((twice - twice.round()).abs() < 1e-3) & (twice.round() >= 1)


def fresh_split(
    archive: str | os.PathLike,
    output: str | os.PathLike,
    *,
    seed: int,
    n_eval: int | None = None,
    min_ratings: int = 10,
    holdout: float = 0.2,
    negatives: int = 100,
) -> dict:
    """Write a re-split copy of ``archive`` to ``output`` (see the module docstring); returns
    counts (users drawn, of them also evaluated in the archive, held-out rows)."""
    with zipfile.ZipFile(archive) as z:
        big, small = _member(z, "big_matrix.csv"), _member(z, "small_matrix.csv")
        others = {n: z.read(DATA + n) for n in ("social_network.csv", "item_categories.csv")}
    old_eval = small["user_id"].unique()
    ratings = pl.concat([big, small.filter(real_ratings(small))]).select(COLUMNS)
    ratings = ratings.with_columns(
        pl.col("user_id").cast(pl.Int64).alias("_u"),
        pl.col("video_id").cast(pl.Int64).alias("_i"),
        pl.col("timestamp").cast(pl.Float64).alias("_t"),
    ).sort("_u", "_t", "_i")
    counts = ratings.group_by("_u").len()
    eligible = counts.filter(pl.col("len") >= min_ratings)["_u"].sort().to_numpy()
    n_eval = int(old_eval.len() if n_eval is None else n_eval)
    fresh = np.setdiff1d(eligible, old_eval.cast(pl.Int64).to_numpy())
    pool = fresh if fresh.size >= n_eval else eligible
    rng = np.random.default_rng(seed)
    if pool.size < n_eval:
        raise InputError(f"{archive}: only {pool.size} users have >= {min_ratings} ratings")
    chosen = np.sort(rng.choice(pool, size=n_eval, replace=False))
    ranked = ratings.with_columns(
        pl.int_range(pl.len()).over("_u").alias("_r"), pl.len().over("_u").alias("_n")
    )
    cut = (pl.col("_n") * (1 - holdout)).ceil()
    is_held = pl.col("_u").is_in(pl.Series(chosen).implode()) & (pl.col("_r") >= cut)
    held, train = ranked.filter(is_held), ranked.filter(~is_held)
    sampled = _negatives(ratings, held, chosen, negatives, rng)
    small_new = pl.concat([held.select(COLUMNS), sampled]).sort("user_id", "timestamp")
    with atomic_path(output, suffix=".tmp.zip") as tmp, zipfile.ZipFile(tmp, "w") as out:
        for name, frame in (
            ("big_matrix.csv", train.select(COLUMNS)),
            ("small_matrix.csv", small_new),
        ):
            buffer = io.BytesIO()
            frame.write_csv(buffer)
            out.writestr(DATA + name, buffer.getvalue())
        for name, raw in others.items():
            out.writestr(DATA + name, raw)
    overlap = int(np.isin(chosen, old_eval.cast(pl.Int64).to_numpy()).sum())
    return {"users": int(chosen.size), "also_evaluated_before": overlap, "held_out": held.height}


def _negatives(ratings, held, chosen, per_user, rng) -> pl.DataFrame:
    """``per_user`` never-rated items per chosen user, in the matrix layout (watch_ratio drawn
    uniformly from 0.05 to 1, at the user's last held-out time)."""
    items = np.unique(ratings["_i"].to_numpy())
    durations = dict(ratings.group_by("_i").agg(pl.col("video_duration").first()).iter_rows())
    last = held.group_by("_u").agg(pl.col(c).last() for c in ("time", "date", "timestamp"))
    last = {row[0]: row[1:] for row in last.iter_rows()}
    rated = ratings.group_by("_u").agg(pl.col("_i")).filter(pl.col("_u").is_in(chosen))
    rated = dict(rated.iter_rows())
    rows = []
    for user in chosen:
        unseen = np.setdiff1d(items, rated[user])
        for item in rng.choice(unseen, size=min(per_user, unseen.size), replace=False):
            ratio = float(rng.uniform(0.05, 1.0))
            duration = int(durations[item])
            time, date, stamp = last[user]
            rows.append(
                (
                    str(user),
                    str(item),
                    str(round(ratio * duration)),
                    str(duration),
                    time,
                    date,
                    stamp,
                    repr(ratio),
                )
            )
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def fresh_archive(archive: str | os.PathLike, folder: str | os.PathLike, seed: int) -> Path:
    """The fresh split of ``archive`` with ``seed`` in ``folder`` (made once, then reused)."""
    path = Path(folder) / f"{Path(archive).stem}.resplit{seed}.zip"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh_split(archive, path, seed=seed)
    return path
