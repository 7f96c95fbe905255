"""KuaiRec preprocessing, following the MP2V-4-Rec protocol.

train = big-matrix rows with watch_ratio >= threshold (weight = watch_ratio); evaluation = the
fully observed small matrix, whose positives are split per user into validation and test;
social = the follow lists. Members are streamed from the zip in chunks of whole lines, so memory
stays bounded by the positives kept, not by the 12.5M-row big matrix.

Value rules (a bad value stops with an InputError naming the member, column and row):
watch_ratio must be a finite number >= 0 (a negative, NaN or infinite ratio is an error, not a
non-positive); an empty or NaN timestamp is missing (kept, null time), an infinite or
out-of-range one is an error. Duplicate (user, item) positives are merged (max weight, earliest
time) and counted (``duplicate_positive_rows``, ``small_duplicate_positive_rows``).
Small-matrix positives that are also train positives are dropped and counted
(``eval_pairs_in_train``): a known positive cannot be a held-out one. Small-matrix positives of
users or items without any train positive (cold) are kept and counted (``eval_cold_users``,
``eval_cold_items``, ``eval_cold_pairs``, ``eval_cold_share``); the evaluation scores them as their
own cohort (``evaluate.cold``). Small-matrix users without any positive have an empty test set,
are counted (``eval_users_without_positives``) and are left out of the metrics (the metrics
average over users with held-out positives).
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import polars as pl

from mp2v4rec.config import defaults
from mp2v4rec.datasets.common import (
    INTERACTION_SCHEMA,
    ITEM_SCHEMA,
    SOCIAL_SCHEMA,
    USER_SCHEMA,
    Prepared,
    check_fraction,
    cold_counts,
)
from mp2v4rec.io import InputError

log = logging.getLogger(__name__)

DEFAULTS = defaults("dataset", "preprocess")  # the config schema's
BIG, SMALL = "data/big_matrix.csv", "data/small_matrix.csv"
SOCIAL, CATEGORIES = "data/social_network.csv", "data/item_categories.csv"
MATRIX_DTYPES = {
    "user_id": pl.Int64,
    "video_id": pl.Int64,
    "timestamp": pl.Float64,  # seconds, may be empty
    "watch_ratio": pl.Float64,
}
MATRIX_REQUIRED = ("user_id", "video_id", "watch_ratio")  # must not be empty
SOCIAL_DTYPES = {"user_id": pl.Int64, "friend_list": pl.String}
CATEGORY_DTYPES = {"video_id": pl.Int64, "feat": pl.String}
CHUNK_BYTES = 64 << 20  # uncompressed bytes parsed at a time
MAX_TIMESTAMP_S = 7.3e9  # seconds: the year 2200; larger values are in another unit
ID_LIST = r"^\s*\[\s*(\d{1,18}\s*(,\s*\d{1,18}\s*)*)?\]\s*$"  # "[4202, 7126]", "[]"; int64

# the study's counts on the real archive, logged next to ours for comparison
STUDY_COUNTS = {
    "big_matrix_rows": 12_530_806,
    "users": 7_176,
    "items": 10_728,
    "positives": 936_568,
    "social_edges": 670,
    "social_rows": 472,
    "small_matrix_users": 1_411,
    "small_matrix_items": 3_327,
}


@dataclass
class MatrixScan:
    """What one pass over a matrix member keeps: its size, its ids and its positive rows."""

    rows: int
    users: np.ndarray  # distinct raw user ids
    items: np.ndarray  # distinct raw video ids
    positives: pl.DataFrame  # user_id, video_id, watch_ratio, timestamp (ms)


# ---- reading members ------------------------------------------------------------------------


def find_member(zf: zipfile.ZipFile, archive: str, suffix: str) -> str:
    """The one member whose path ends with ``suffix`` (any folder prefix, macOS forks skipped)."""
    names = [
        n
        for n in zf.namelist()
        if (n == suffix or n.endswith("/" + suffix)) and not n.startswith("__MACOSX/")
    ]
    if not names:
        raise InputError(
            f"{archive}: no member '*/{suffix}' in the archive; use the KuaiRec 2.0 zip "
            "(download it again if this copy is incomplete or repacked)"
        )
    if len(names) > 1:
        raise InputError(f"{archive}: several members match '*/{suffix}': {names}")
    return names[0]


def read_header(stream: IO[bytes], member: str, columns: list[str]) -> bytes:
    """The header line (without a byte-order mark); every needed column must be in it."""
    line = stream.readline().removeprefix(b"\xef\xbb\xbf")
    header = next(csv.reader([line.decode("utf-8-sig").strip("\r\n")]), [])
    for column in columns:
        if column not in header:
            raise InputError(
                f"{member}: missing column '{column}' (header has {header}); rename the "
                "column back or use the unmodified KuaiRec 2.0 archive"
            )
    return line


def bad_value_error(data: bytes, member: str, dtypes: dict, row_offset: int) -> InputError | None:
    """Re-read a chunk as text to name the first cell that does not parse, or None."""
    text = pl.read_csv(data, columns=list(dtypes), infer_schema=False)
    for column, dtype in dtypes.items():
        raw = text[column]
        bad = (raw.cast(dtype, strict=False).is_null() & raw.is_not_null()).arg_true()
        if len(bad):
            row = row_offset + int(bad[0]) + 1
            return InputError(
                f"{member}: column '{column}' row {row} (file line {row + 1}): "
                f"cannot read {raw[int(bad[0])]!r} as {dtype}; fix the file or download it again"
            )
    return None


def parse_chunk(data: bytes, member: str, dtypes: dict, required, row_offset: int):
    """Parse CSV bytes (header included) to the typed columns; say where a value is bad."""
    try:
        df = pl.read_csv(data, columns=list(dtypes), schema_overrides=dtypes, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        error = bad_value_error(data, member, dtypes, row_offset)
        message = f"{member}: unreadable CSV near row {row_offset + 1}: {exc}"
        raise (error or InputError(message)) from exc
    for column in required:
        empty = df[column].is_null().arg_true()
        if len(empty):
            row = row_offset + int(empty[0]) + 1
            raise InputError(
                f"{member}: column '{column}' row {row} (file line {row + 1}) is empty"
            )
    return df


def iter_member(
    zf: zipfile.ZipFile, member: str, dtypes: dict, required=()
) -> Iterator[pl.DataFrame]:
    """Typed chunks of a CSV member, streamed (never the whole member in memory)."""
    label = f"{zf.filename}: {member}"  # for messages
    try:
        with zf.open(member) as stream:
            header = read_header(stream, label, list(dtypes))
            rows = 0
            while block := stream.read(CHUNK_BYTES):
                if not block.endswith(b"\n"):
                    block += stream.readline()  # finish the last line
                df = parse_chunk(header + block, label, dtypes, required, rows)
                rows += df.height
                yield df
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged compressed data
        raise InputError(
            f"{label}: the member is corrupt ({exc}); download the archive again"
        ) from exc


def read_member(zf: zipfile.ZipFile, member: str, dtypes: dict, required=()) -> pl.DataFrame:
    chunks = list(iter_member(zf, member, dtypes, required))
    return pl.concat(chunks) if chunks else pl.DataFrame(schema=dtypes)


def check_matrix_values(df: pl.DataFrame, member: str, row_offset: int) -> pl.DataFrame:
    """Refuse a negative, NaN or infinite watch_ratio and an infinite or out-of-range timestamp;
    a NaN timestamp becomes missing (null). ``row_offset``: data rows before this chunk."""

    def fail(column: str, index: int, problem: str) -> InputError:
        row = row_offset + index + 1
        return InputError(
            f"{member}: column '{column}' row {row} (file line {row + 1}): "
            f"{df[column][index]!r} {problem}; fix or drop the row, or download the archive again"
        )

    ratio = df["watch_ratio"]
    bad = (ratio.is_nan() | ratio.is_infinite() | (ratio < 0)).arg_true()
    if len(bad):
        raise fail("watch_ratio", int(bad[0]), "is not a finite number >= 0")
    df = df.with_columns(pl.col("timestamp").fill_nan(None))
    bad = (df["timestamp"].abs() >= MAX_TIMESTAMP_S).arg_true()
    if len(bad):
        value = abs(float(df["timestamp"][int(bad[0])]))
        looks = next(
            (
                f"; it looks like epoch {name}: KuaiRec's timestamp column is in seconds, divide "
                f"the column by {factor:,}"
                for name, factor in (("milliseconds", 1000), ("microseconds", 10**6))
                if value / factor < MAX_TIMESTAMP_S
            ),
            "",
        )
        raise fail("timestamp", int(bad[0]), f"is not a time in seconds since the epoch{looks}")
    return df


def scan_matrix(zf: zipfile.ZipFile, member: str, threshold: float) -> MatrixScan:
    """One pass over a matrix: count rows, collect distinct ids, keep the positive rows."""
    rows, users, items, positives = 0, [], [], []
    for df in iter_member(zf, member, MATRIX_DTYPES, MATRIX_REQUIRED):
        df = check_matrix_values(df, f"{zf.filename}: {member}", rows)
        rows += df.height
        users.append(df["user_id"].unique().to_numpy())
        items.append(df["video_id"].unique().to_numpy())
        positives.append(
            df.filter(pl.col("watch_ratio") >= threshold).with_columns(
                timestamp=(pl.col("timestamp") * 1000).round().cast(pl.Int64)
            )
        )
    schema = {**MATRIX_DTYPES, "timestamp": pl.Int64}
    return MatrixScan(
        rows=rows,
        users=np.unique(np.concatenate([np.zeros(0, np.int64), *users])),
        items=np.unique(np.concatenate([np.zeros(0, np.int64), *items])),
        positives=pl.concat(positives) if positives else pl.DataFrame(schema=schema),
    )


def parse_id_lists(values: pl.Series, member: str, column: str) -> pl.Series:
    """'[4202, 7126]' strings to lists of Int64 (vectorised); a malformed list is an error."""
    ok = values.fill_null("[]").str.contains(ID_LIST)
    if not ok.all():
        i = int((~ok).arg_true()[0])
        raise InputError(
            f"{member}: column '{column}' row {i + 1} (file line {i + 2}): {values[i]!r} "
            "is not a bracketed list of integer ids like '[4202, 7126]'; fix the row or "
            "download the archive again"
        )
    text = values.fill_null("[]").str.strip_chars()  # any whitespace, then the brackets
    inner = text.str.strip_prefix("[").str.strip_suffix("]").str.split(",")
    ids = inner.list.eval(pl.element().str.strip_chars()).list.eval(
        pl.element().filter(pl.element() != "").cast(pl.Int64)
    )
    return ids.alias(column)


# ---- building the tables --------------------------------------------------------------------


def to_index(sorted_ids: np.ndarray, raw: np.ndarray | pl.Series) -> np.ndarray:
    """Dense int32 index of each raw id (all must be present in sorted_ids)."""
    return np.searchsorted(sorted_ids, np.asarray(raw)).astype(np.int32)


def known(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Which raw ids occur in sorted_ids."""
    pos = np.minimum(np.searchsorted(sorted_ids, raw), max(len(sorted_ids) - 1, 0))
    return (sorted_ids[pos] == raw) if len(sorted_ids) else np.zeros(len(raw), bool)


def interactions(positives: pl.DataFrame, user_ids, item_ids) -> tuple[pl.DataFrame, int]:
    """Positive rows as indexed interactions, one per (user, item): max weight, first time.

    Returns the table sorted by (user, timestamp, item), nulls last, and the duplicate count.
    """
    df = pl.DataFrame(
        {
            "user": to_index(user_ids, positives["user_id"].to_numpy()),
            "item": to_index(item_ids, positives["video_id"].to_numpy()),
            "weight": positives["watch_ratio"],
            "timestamp": positives["timestamp"],
        }
    )
    agg = df.group_by("user", "item").agg(pl.col("weight").max(), pl.col("timestamp").min())
    agg = agg.with_columns(pl.col("weight").cast(pl.Float32)).select(list(INTERACTION_SCHEMA))
    return agg.sort(["user", "timestamp", "item"], nulls_last=True), df.height - agg.height


def split_eval(
    pairs: pl.DataFrame, valid_fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-user random split: round(fraction * n) to validation, at least one in each when n >= 2.

    A user with a single positive keeps it for test. Deterministic by seed.
    """
    df = pairs.sort("user", "item")
    rng = np.random.default_rng(seed)
    df = df.with_columns(key=pl.Series(rng.random(df.height)))
    df = df.sort("user", "key").with_columns(
        rank=pl.int_range(pl.len()).over("user"), n=pl.len().over("user")
    )
    n_valid = (pl.col("n") * valid_fraction + 0.5).floor()
    if valid_fraction > 0:
        n_valid = pl.when(pl.col("n") >= 2).then(n_valid.clip(1, pl.col("n") - 1)).otherwise(0)
    is_valid = pl.col("rank") < n_valid
    order = ["user", "timestamp", "item"]
    valid = df.filter(is_valid).select(list(INTERACTION_SCHEMA)).sort(order, nulls_last=True)
    test = df.filter(~is_valid).select(list(INTERACTION_SCHEMA)).sort(order, nulls_last=True)
    return valid, test


def social_edges(social: pl.DataFrame, user_ids: np.ndarray, member: str) -> tuple:
    """Directed user -> friend index edges; unknown ids dropped, duplicates and self-loops too."""
    lists = parse_id_lists(social["friend_list"], member, "friend_list")
    edges = pl.DataFrame({"user_id": social["user_id"], "friend": lists}).explode("friend")
    edges = edges.drop_nulls()
    users, friends = edges["user_id"].to_numpy(), edges["friend"].to_numpy()
    keep = known(user_ids, users) & known(user_ids, friends)
    df = pl.DataFrame(
        {"user": to_index(user_ids, users[keep]), "friend": to_index(user_ids, friends[keep])},
        schema=SOCIAL_SCHEMA,
    )
    kept = df.filter(pl.col("user") != pl.col("friend")).unique(maintain_order=True)
    counts = {
        "social_listed_edges": edges.height,
        "social_dropped": int((~keep).sum()),
        "social_self_or_duplicate": df.height - kept.height,
    }
    return kept, counts


def item_table(categories: pl.DataFrame, item_ids: np.ndarray, member: str) -> tuple:
    """items.parquet: index, raw id, first category (-1 if none) and the category list."""
    feats = parse_id_lists(categories["feat"], member, "feat").cast(pl.List(pl.Int32))
    cats = pl.DataFrame({"raw_id": categories["video_id"], "categories": feats})
    cats = cats.unique("raw_id", keep="first", maintain_order=True)
    items = pl.DataFrame(
        {"item": np.arange(len(item_ids), dtype=np.int32), "raw_id": item_ids},
        schema={"item": pl.Int32, "raw_id": pl.Int64},
    ).join(cats, on="raw_id", how="left")
    items = items.with_columns(
        pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.Int32)))
    ).with_columns(category=pl.col("categories").list.first().fill_null(-1).cast(pl.Int32))
    items = items.sort("item").select(list(ITEM_SCHEMA))
    counts = {
        "category_rows": categories.height,
        "category_rows_dropped": int((~known(item_ids, cats["raw_id"].to_numpy())).sum()),
        "items_without_category": int((items["category"] == -1).sum()),
        "categories": int(items["categories"].explode().drop_nulls().n_unique()),
    }
    return items, counts


# ---- the whole preprocessing ----------------------------------------------------------------


def _check_params(positive_threshold: float, valid_fraction: float) -> None:
    if not (np.isfinite(positive_threshold) and positive_threshold > 0):
        raise InputError(
            f"preprocess.positive_threshold={positive_threshold} must be a number > 0: watch "
            "ratios are >= 0, so a threshold <= 0 makes every watched video a positive"
        )
    check_fraction("preprocess.valid_fraction", valid_fraction)


def _check_not_empty(archive: str, members: dict, big: MatrixScan, small: MatrixScan) -> None:
    """Refuse a matrix member without rows: the train history or the evaluation block would be
    silently empty."""
    for key, scan, role in ((BIG, big, "train history"), (SMALL, small, "evaluation block")):
        if scan.rows == 0:
            raise InputError(
                f"{archive}: {members[key]} has a header but no rows, so the {role} would be "
                "empty; use the complete KuaiRec 2.0 archive (download it again)"
            )


def _log_stats(stats: dict) -> None:
    for key, value in stats.items():
        study = STUDY_COUNTS.get(key)
        note = f" (study, real KuaiRec: {study:,})" if study is not None else ""
        log.info("%s = %s%s", key, f"{value:,}" if isinstance(value, int) else value, note)


def _matrix_counts(big, small) -> dict[str, int]:
    return {
        "big_matrix_rows": big.rows,
        "big_matrix_users": len(big.users),
        "big_matrix_items": len(big.items),
        "small_matrix_rows": small.rows,
        "small_matrix_users": len(small.users),
        "small_matrix_items": len(small.items),
        "big_matrix_positive_rows": big.positives.height,
    }


def _read_archive(archive: str, positive_threshold: float):
    """The archive's four members: the big matrix's positives, every small-matrix row, the
    friend lists and the categories (with the member names found)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {
                key: find_member(zf, archive, key) for key in (BIG, SMALL, SOCIAL, CATEGORIES)
            }
            log.info("reading %s from %s", members[BIG], archive)
            big = scan_matrix(zf, members[BIG], positive_threshold)
            log.info("big matrix: %d rows, %d positives", big.rows, big.positives.height)
            small = scan_matrix(zf, members[SMALL], 0.0)  # every row: the observed block
            _check_not_empty(archive, members, big, small)
            social = read_member(zf, members[SOCIAL], SOCIAL_DTYPES, ("user_id",))
            categories = read_member(zf, members[CATEGORIES], CATEGORY_DTYPES, ("video_id",))
    except FileNotFoundError as exc:
        raise InputError(f"{archive}: archive not found; download it or fix the path") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(f"{archive}: not a readable zip ({exc}); download it again") from exc
    return members, big, small, social, categories


def preprocess_kuairec(
    archive: str | os.PathLike,
    *,
    positive_threshold: float = DEFAULTS["positive_threshold"],
    valid_fraction: float = DEFAULTS["valid_fraction"],
    seed: int = DEFAULTS["seed"],
) -> Prepared:
    """Read the KuaiRec 2.0 zip and build the prepared tables (see the module docstring)."""
    _check_params(positive_threshold, valid_fraction)
    archive = os.fspath(archive)
    members, big, small, social, categories = _read_archive(archive, positive_threshold)
    user_ids = np.union1d(big.users, small.users)
    item_ids = np.union1d(big.items, small.items)
    users = pl.DataFrame(
        {
            "user": np.arange(len(user_ids), dtype=np.int32),
            "raw_id": user_ids,
            "evaluated": known(small.users, user_ids),
        },
        schema=USER_SCHEMA,
    )
    items, item_counts = item_table(categories, item_ids, f"{archive}: {members[CATEGORIES]}")
    train, duplicates = interactions(big.positives, user_ids, item_ids)
    block, _ = interactions(small.positives, user_ids, item_ids)
    small_positives = small.positives.filter(pl.col("watch_ratio") >= positive_threshold)
    eval_pairs, eval_duplicates = interactions(small_positives, user_ids, item_ids)
    fresh = eval_pairs.join(train, on=["user", "item"], how="anti")  # known positives: dropped
    in_train, eval_pairs = eval_pairs.height - fresh.height, fresh
    for table, member, what in ((train, BIG, "train"), (eval_pairs, SMALL, "held-out")):
        if not table.height:
            raise InputError(
                f"{archive}: no {what} positive: no row of {members[member]} has watch_ratio >= "
                f"preprocess.positive_threshold={positive_threshold}"
                + (" that is not already a train positive" if member == SMALL else "")
                + "; lower the threshold or check the archive"
            )
    valid, test = split_eval(eval_pairs, valid_fraction, seed)
    social_df, social_counts = social_edges(social, user_ids, f"{archive}: {members[SOCIAL]}")

    stats = {
        **_matrix_counts(big, small),
        "users": len(user_ids),
        "items": len(item_ids),
        "duplicate_positive_rows": duplicates,
        "positives": train.height,
        "train_users": train["user"].n_unique(),
        "train_items": train["item"].n_unique(),
        "train_missing_timestamps": train["timestamp"].null_count(),
        "small_matrix_positive_rows": small_positives.height,
        "block_pairs": block.height,
        "small_duplicate_positive_rows": eval_duplicates,
        "valid_pairs": valid.height,
        "test_pairs": test.height,
        "evaluated_users": len(small.users),
        "eval_users_without_positives": len(small.users) - eval_pairs["user"].n_unique(),
        "eval_pairs_in_train": in_train,
        **cold_counts(eval_pairs, train),
        "social_rows": social.height,
        "social_edges": social_df.height,
        "social_users": social_df["user"].n_unique(),
        **social_counts,
        **item_counts,
        "positive_threshold": float(positive_threshold),
        "valid_fraction": float(valid_fraction),
        "seed": int(seed),
    }
    _log_stats(stats)
    return Prepared(
        train=train,
        valid=valid,
        test=test,
        social=social_df,
        users=users,
        items=items,
        stats=stats,
        block=block.select("user", "item", "weight"),
    )
