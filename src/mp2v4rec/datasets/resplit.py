"""Fresh splits of a KuaiRec-layout archive: new evaluation users with new hold-outs, for
confirming a frozen selection on data the selection never scored.

The development archives (``../shared/data``, read their README) were made from a rating log:
``big_matrix`` holds the train history, ``small_matrix`` each evaluation user's last 20 % of
ratings by time plus 100 never-rated items as sampled negatives. :func:`fresh_split` pools the
real ratings again (every big-matrix row; the small-matrix rows whose ``watch_ratio`` is a
rating / 2, i.e. not a sampled negative), draws new evaluation users among those with at least
``min_ratings`` ratings who are not the archive's evaluation users (disjoint across re-splits),
and rebuilds the two matrices the same way (last ``holdout`` share by time, ties by item;
``negatives`` sampled never-rated items per user). Friend lists and item categories are copied
unchanged. Deterministic in ``seed``.

What "fresh" means here: no held-out label of a re-split was ever scored during selection
(its users were not evaluation users), but their ratings were part of the selection split's
train history, since the archive trains on every rating of the users it does not evaluate.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from mp2v4rec.datasets.synthetic import MATRIX_COLUMNS, PREFIX
from mp2v4rec.io import InputError, atomic_path

DATA = PREFIX
COLUMNS = MATRIX_COLUMNS


def _member(archive: zipfile.ZipFile, name: str) -> pl.DataFrame:
    try:
        return pl.read_csv(archive.read(DATA + name), infer_schema_length=0)
    except KeyError as exc:
        raise InputError(f"{archive.filename}: no member {DATA + name}") from exc


def real_ratings(small: pl.DataFrame) -> pl.Series:
    """Rows of a small matrix that are real ratings, not sampled negatives: a rating r of
    0.5..5 stars in half-star steps is stored as watch_ratio r / 2 (play_duration rounded to
    the millisecond, so within 1e-4 of a quarter step for videos of 5 s or more), a sampled
    negative as a uniform draw from 0.05 to 1 (which lands that close to a quarter step with
    probability ~0.08 %; such a row is a rating below 2 stars either way, never a positive)."""
    quarters = small["watch_ratio"].cast(pl.Float64) * 4
    return ((quarters - quarters.round()).abs() < 4e-4) & (quarters.round() >= 1)


def fresh_split(
    archive: str | os.PathLike,
    output: str | os.PathLike,
    *,
    part: int,
    parts: int,
    seed: int = 0,
    n_eval: int | None = None,
    min_ratings: int = 10,
    holdout: float = 0.2,
    negatives: int = 100,
) -> dict:
    """Write re-split ``part`` of ``parts`` (0-based) of ``archive`` to ``output``: the eligible
    users who are not the archive's evaluation users are shuffled once (``seed``) and cut into
    ``parts`` disjoint slices, so the re-splits share no evaluation user with each other or with
    the archive. ``n_eval``: users per re-split (default: the archive's count, or as many as a
    slice holds). Returns counts (users drawn, eligible pool, held-out rows)."""
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
    if not 0 <= part < parts:
        raise InputError(f"re-split part {part} is not one of 0..{parts - 1}")
    fresh = np.setdiff1d(eligible, old_eval.cast(pl.Int64).to_numpy())
    rng = np.random.default_rng(seed)
    slices = np.array_split(rng.permutation(fresh), parts)
    n_eval = min(int(old_eval.len() if n_eval is None else n_eval), min(map(len, slices)))
    if n_eval < 1:
        raise InputError(
            f"{archive}: {fresh.size} users with >= {min_ratings} ratings besides the archive's "
            f"evaluation users: too few for {parts} disjoint re-splits"
        )
    chosen = np.sort(slices[part][:n_eval])
    rng = np.random.default_rng([seed, part])  # the negatives of this part
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
    return {"users": int(chosen.size), "pool": int(fresh.size), "held_out": held.height}


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


VERSION = 2  # of the re-split rule: cached archives of another version are not reused


def fresh_archive(
    archive: str | os.PathLike, folder: str | os.PathLike, part: int, parts: int
) -> Path:
    """Re-split ``part`` of ``parts`` of ``archive`` in ``folder`` (made once, then reused)."""
    path = Path(folder) / f"{Path(archive).stem}.v{VERSION}.part{part}of{parts}.zip"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh_split(archive, path, part=part, parts=parts)
    return path
