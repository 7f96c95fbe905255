"""A synthetic KuaiRec-format archive with planted community structure (demo, tests, scaling).

Users and items each belong to one latent community. Users mostly watch popular items of their
own community, and watch them longer (watch_ratio >= 2 on most same-community pairs, < 2 on most
others); friendships mostly stay inside a community. The zip mirrors the real archive's member
paths, columns and value formats, so the KuaiRec preprocessing runs on it unchanged.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np
import polars as pl

from mp2v4rec.arrays import sorted_unique
from mp2v4rec.io import InputError, atomic_path

PREFIX = "KuaiRec 2.0/data/"
MATRIX_COLUMNS = [
    "user_id",
    "video_id",
    "play_duration",
    "video_duration",
    "time",
    "date",
    "timestamp",
    "watch_ratio",
]
N_CATEGORIES = 31
START_MS = 1_593_878_400_000  # 2020-07-05 00:00 +08:00 (Beijing time, as in KuaiRec)
END_MS = 1_599_235_200_000  # 2020-09-05 00:00 +08:00
MISSING_TIME_FRACTION = 0.02  # small-matrix rows with empty time, date and timestamp
REWATCH_FRACTION = 0.02  # big-matrix pairs watched twice
TOP_UP_ROUNDS = 6  # rounds of redrawing to reach each user's activity in distinct items
RATIO_SIGMA = 0.5  # spread of log watch_ratio around the medians below
WRITE_ROWS = 500_000  # rows formatted and written at a time
ZIP_DATE = (2020, 9, 5, 0, 0, 0)  # fixed member timestamps: same seed, same bytes


@dataclass
class SyntheticKuaiRec:
    """The four KuaiRec tables plus the planted communities (by raw id).

    The matrices keep the time as ``ms`` (int64 ms since the epoch, null when missing); the
    time, date and timestamp text columns are formatted slice by slice while writing.
    """

    big: pl.DataFrame
    small: pl.DataFrame
    social: pl.DataFrame
    categories: pl.DataFrame
    user_community: pl.DataFrame  # user_id, community
    item_community: pl.DataFrame  # video_id, community


def _check_params(n_users, n_items, n_communities, small_users, small_items, probs, zipf):
    if n_communities < 1 or n_users < max(2, n_communities) or n_items < n_communities:
        raise InputError(
            f"synthetic KuaiRec needs n_users >= max(2, n_communities) and n_items >= "
            f"n_communities >= 1; got n_users={n_users}, n_items={n_items}, "
            f"n_communities={n_communities}"
        )
    if not (0 <= small_users <= n_users and 0 <= small_items <= n_items):
        raise InputError(
            f"small_users={small_users} / small_items={small_items} must lie within "
            f"0..n_users={n_users} / 0..n_items={n_items}"
        )
    for name, value in probs.items():
        if not 0.0 <= value <= 1.0:
            raise InputError(f"synthetic KuaiRec parameter {name}={value} must be in [0, 1]")
    if zipf <= 0:
        raise InputError(f"synthetic KuaiRec parameter zipf={zipf} must be > 0")


def _raw_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct, gapped, unsorted raw ids, so that preprocessing must really remap them."""
    return rng.choice(n + n // 2 + 10, size=n, replace=False).astype(np.int64)


def _balanced_communities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Community of each of n nodes; every community gets n // k or n // k + 1 nodes."""
    return rng.permutation(np.arange(n) % k)


def _group_layout(groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members sorted by group, each group's start offset in that order, and group sizes."""
    order = np.argsort(groups, kind="stable")
    sizes = np.bincount(groups, minlength=k)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return order, starts, sizes


def _sample_popular(
    rng: np.random.Generator,
    popularity: np.ndarray,
    community: np.ndarray,
    row_community: np.ndarray,
    in_community: np.ndarray,
) -> np.ndarray:
    """One item per row, popularity-weighted: within the row's community, or globally."""
    n, k = len(popularity), int(community.max()) + 1
    order, starts, sizes = _group_layout(community, k)
    pop = popularity[order]
    # community c's CDF lives in [c, c + 1], so one searchsorted serves every community
    csum = np.cumsum(pop)
    before = np.concatenate([[0.0], csum])[starts]  # mass before each community's block
    total = np.bincount(community, popularity, minlength=k)
    within = (csum - np.repeat(before, sizes)) / np.repeat(total, sizes)
    cdf_local = np.repeat(np.arange(k), sizes) + within
    c = row_community
    local = np.searchsorted(cdf_local, c + rng.random(len(c)), side="right")
    local = np.clip(local, starts[c], starts[c] + sizes[c] - 1)
    cdf_global = np.cumsum(popularity) / popularity.sum()
    global_pick = np.minimum(np.searchsorted(cdf_global, rng.random(len(c)), side="right"), n - 1)
    return np.where(in_community, order[local], global_pick)


def _play_ms(
    rng, matching, video_ms, appeal_of, match_ratio: float, other_ratio: float
) -> np.ndarray:
    """Play duration (int ms): video length times a log-normal watch ratio whose median is
    ``match_ratio`` on same-community pairs and ``other_ratio`` elsewhere, times the item's
    appeal (1 for every item unless ``appeal`` > 0)."""
    mu = np.log(np.where(matching, match_ratio, other_ratio) * appeal_of)
    return np.rint(np.exp(rng.normal(mu, RATIO_SIGMA)) * video_ms).astype(np.int64)


def _time_columns() -> list[pl.Expr]:
    """KuaiRec's time (Beijing, ms precision), date (yyyymmdd) and timestamp (s.mmm) columns."""
    local = pl.from_epoch(pl.col("ms"), time_unit="ms") + pl.duration(hours=8)
    return [
        local.dt.strftime("%Y-%m-%d %H:%M:%S%.3f").alias("time"),
        local.dt.strftime("%Y%m%d").alias("date"),
        (
            (pl.col("ms") // 1000).cast(pl.String)
            + "."
            + (pl.col("ms") % 1000).cast(pl.String).str.zfill(3)
        ).alias("timestamp"),
    ]


def _matrix(user_raw, item_raw, users, items, ms, play, video_ms, missing=None) -> pl.DataFrame:
    """A big/small-matrix table in KuaiRec's column order, sorted by user then time.

    Rows flagged in ``missing`` get empty time, date and timestamp.
    """
    ms = pl.Series(ms).set(pl.Series(missing), None) if missing is not None else ms
    df = pl.DataFrame(
        {
            "user_id": user_raw[users],
            "video_id": item_raw[items],
            "play_duration": play,
            "video_duration": video_ms[items],
            "ms": ms,
            "watch_ratio": play / video_ms[items],
        }
    )
    return df.sort(["user_id", "ms", "video_id"], nulls_last=True)


def matrix_csv_columns(df: pl.DataFrame) -> pl.DataFrame:
    """A matrix slice in KuaiRec's CSV columns (time text derived from ``ms``)."""
    return df.with_columns(_time_columns()).select(MATRIX_COLUMNS)


def _id_list(values: pl.Expr) -> pl.Expr:
    """Format a list column as KuaiRec does: "[4202, 7126]"."""
    return "[" + values.list.eval(pl.element().cast(pl.String)).list.join(", ") + "]"


def _big_rows(rng, user_comm, item_comm, popularity, interactions_per_user, in_community):
    """User and item of every big-matrix row (before removing the small block).

    Each user watches ~lognormal(interactions_per_user) distinct items (drawn in a few top-up
    rounds, since popular items repeat), plus a few re-watches that make duplicate rows.
    """
    n_users, n_items = len(user_comm), len(item_comm)
    sigma = 0.6  # spread of user activity
    mean_log = np.log(interactions_per_user) - sigma**2 / 2
    activity = np.rint(rng.lognormal(mean_log, sigma, n_users)).astype(np.int64)
    activity = np.clip(activity, 1, n_items)
    keys = np.zeros(0, dtype=np.int64)  # user * n_items + item, distinct
    for _ in range(TOP_UP_ROUNDS):
        deficit = activity - np.bincount(keys // n_items, minlength=n_users)
        if not deficit.any():
            break
        users = np.repeat(np.arange(n_users), deficit)
        inside = rng.random(len(users)) < in_community
        items = _sample_popular(rng, popularity, item_comm, user_comm[users], inside)
        keys = sorted_unique(np.concatenate([keys, users * n_items + items]))
    again = keys[rng.random(len(keys)) < REWATCH_FRACTION]
    keys = np.concatenate([keys, again])
    return keys // n_items, keys % n_items


def _friendships(rng, user_comm, social_users, friends_per_user, homophily) -> pl.DataFrame:
    """Directed (user, friend) index pairs: a fraction of users list ~friends_per_user friends."""
    n = len(user_comm)
    listers = rng.choice(n, size=round(social_users * n), replace=False)
    counts = 1 + rng.poisson(max(friends_per_user - 1.0, 0.0), len(listers))
    src = np.repeat(listers, counts)
    order, starts, sizes = _group_layout(user_comm, int(user_comm.max()) + 1)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c = user_comm[src]
    own = rank[src] - starts[c]  # position of the user inside its community
    same = (rng.random(len(src)) < homophily) & (sizes[c] > 1)
    # draw among the other members (skip over oneself), inside the community or globally
    j_local = np.floor(rng.random(len(src)) * (sizes[c] - 1)).astype(np.int64)
    j_local += j_local >= own
    j_global = np.floor(rng.random(len(src)) * (n - 1)).astype(np.int64)
    j_global += j_global >= src
    dst = np.where(same, order[starts[c] + np.minimum(j_local, sizes[c] - 1)], j_global)
    return pl.DataFrame({"user": src, "friend": dst}).unique(maintain_order=True)


def _social_table(rng, user_raw, user_comm, social_users, friends_per_user, homophily):
    """The friend lists in KuaiRec's layout (``user_id, friend_list``)."""
    edges = _friendships(rng, user_comm, social_users, friends_per_user, homophily)
    return (
        pl.DataFrame(
            {
                "user_id": user_raw[edges["user"].to_numpy()],
                "friend": user_raw[edges["friend"].to_numpy()],
            }
        )
        .group_by("user_id", maintain_order=True)
        .agg("friend")
        .sort("user_id")
        .select("user_id", _id_list(pl.col("friend")).alias("friend_list"))
    )


def _categories_table(rng, item_raw, item_comm, n_communities):
    """Each item's community's main category first, then 0-2 random others (``feat``)."""
    n_items = item_raw.size
    main = rng.permutation(N_CATEGORIES)[np.arange(n_communities) % N_CATEGORIES][item_comm]
    extra = rng.integers(0, N_CATEGORIES, (n_items, 2))
    n_cats = 1 + rng.integers(0, 3, n_items)
    cats = pl.DataFrame(
        {"video_id": item_raw, "feat": np.column_stack([main, extra]).tolist(), "n": n_cats}
    )
    feat = pl.col("feat").list.head(pl.col("n")).list.unique(maintain_order=True)
    return cats.sort("video_id").select("video_id", _id_list(feat).alias("feat"))


def generate_synthetic_kuairec(
    *,
    n_users: int = 600,
    n_items: int = 900,
    n_communities: int = 8,
    interactions_per_user: float = 60,
    small_users: int = 150,
    small_items: int = 300,
    social_users: float = 0.3,
    friends_per_user: float = 3,
    homophily: float = 0.9,
    in_community: float = 0.8,
    zipf: float = 1.1,
    match_ratio: float = 3.0,
    other_ratio: float = 0.8,
    appeal: float = 0.0,
    seed: int = 0,
) -> SyntheticKuaiRec:
    """Build the four KuaiRec tables with planted communities; deterministic by seed.

    ``match_ratio`` / ``other_ratio`` are the median watch ratios of same-community and other
    pairs: the closer ``other_ratio`` is to the positive threshold, the more cross-community
    positives the train set holds and the more the watch ratio (the weight) carries the signal.
    ``appeal`` couples quality to popularity, as in real logs: every watch ratio of an item is
    multiplied by ``(popularity / median popularity) ** appeal``, so popular items are liked
    more by everyone (and a most-popular list finds held-out positives); 0 leaves taste alone.
    """
    probs = dict(social_users=social_users, homophily=homophily, in_community=in_community)
    _check_params(n_users, n_items, n_communities, small_users, small_items, probs, zipf)
    if interactions_per_user <= 0:
        raise InputError(f"interactions_per_user={interactions_per_user} must be > 0")
    if not 0.0 <= appeal <= 1.0:
        raise InputError(f"synthetic KuaiRec parameter appeal={appeal} must be in [0, 1]")
    rng = np.random.default_rng(seed)
    user_raw, item_raw = _raw_ids(rng, n_users), _raw_ids(rng, n_items)
    user_comm = _balanced_communities(rng, n_users, n_communities)
    item_comm = _balanced_communities(rng, n_items, n_communities)
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf
    popularity = popularity[rng.permutation(n_items)]
    video_ms = np.clip(np.rint(rng.lognormal(np.log(15_000), 0.6, n_items)), 2_000, 300_000)
    video_ms = video_ms.astype(np.int64)

    # small matrix: a fully observed block of random users x random items
    is_small_user = np.zeros(n_users, bool)
    is_small_user[rng.choice(n_users, small_users, replace=False)] = True
    is_small_item = np.zeros(n_items, bool)
    is_small_item[rng.choice(n_items, small_items, replace=False)] = True
    su, si = np.meshgrid(np.flatnonzero(is_small_user), np.flatnonzero(is_small_item))
    su, si = su.ravel(), si.ravel()

    # big matrix: popularity-driven picks, minus every pair of the small block
    bu, bi = _big_rows(rng, user_comm, item_comm, popularity, interactions_per_user, in_community)
    keep = ~(is_small_user[bu] & is_small_item[bi])
    bu, bi = bu[keep], bi[keep]

    ratios = dict(match_ratio=match_ratio, other_ratio=other_ratio)
    appeal_of = (popularity / np.median(popularity)) ** appeal
    big_play = _play_ms(rng, user_comm[bu] == item_comm[bi], video_ms[bi], appeal_of[bi], **ratios)
    small_play = _play_ms(
        rng, user_comm[su] == item_comm[si], video_ms[si], appeal_of[si], **ratios
    )
    big_ms = rng.integers(START_MS, END_MS, len(bu))
    small_ms = rng.integers(START_MS, END_MS, len(su))
    small_missing = rng.random(len(su)) < MISSING_TIME_FRACTION
    big = _matrix(user_raw, item_raw, bu, bi, big_ms, big_play, video_ms)
    small = _matrix(user_raw, item_raw, su, si, small_ms, small_play, video_ms, small_missing)

    social = _social_table(rng, user_raw, user_comm, social_users, friends_per_user, homophily)
    categories = _categories_table(rng, item_raw, item_comm, n_communities)
    return SyntheticKuaiRec(
        big=big,
        small=small,
        social=social,
        categories=categories,
        user_community=pl.DataFrame({"user_id": user_raw, "community": user_comm}),
        item_community=pl.DataFrame({"video_id": item_raw, "community": item_comm}),
    )


def _write_member(zf: zipfile.ZipFile, name: str, df: pl.DataFrame, fmt=None) -> None:
    """Deflate one CSV member with fixed metadata; ``fmt`` formats each slice of rows."""
    info = zipfile.ZipInfo(PREFIX + name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    info._compresslevel = 1  # fast deflate (no public per-member level before Python 3.13)
    fmt = fmt or (lambda part: part)
    with zf.open(info, "w", force_zip64=True) as handle:
        fmt(df.head(0)).write_csv(handle)  # the header line
        for part in df.iter_slices(WRITE_ROWS):
            fmt(part).write_csv(handle, include_header=False, float_precision=10)


def write_synthetic_kuairec(path: str | os.PathLike, **params) -> dict[str, int]:
    """Write a KuaiRec-format zip (atomically) and return its counts.

    Keyword parameters are those of :func:`generate_synthetic_kuairec`.
    """
    data = generate_synthetic_kuairec(**params)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        _write_member(zf, "big_matrix.csv", data.big, matrix_csv_columns)
        _write_member(zf, "small_matrix.csv", data.small, matrix_csv_columns)
        _write_member(zf, "social_network.csv", data.social)
        _write_member(zf, "item_categories.csv", data.categories)
    n_edges = data.social["friend_list"].str.count_matches(",").sum() + data.social.height
    return {
        "big_matrix_rows": data.big.height,
        "small_matrix_rows": data.small.height,
        "small_matrix_users": data.small["user_id"].n_unique(),
        "small_matrix_items": data.small["video_id"].n_unique(),
        "users": data.user_community.height,
        "items": data.item_community.height,
        "social_rows": data.social.height,
        "social_edges": int(n_edges),
        "category_rows": data.categories.height,
    }
