"""Synthetic SoundCloud-style event logs with planted communities (demo, tests, scaling).

Users, artists and tracks each belong to one latent community; every community has a main
genre that most of its artists play. Each artist owns at least one track, prolific artists many
(Zipf-like). Every event draws a user by Zipf-like activity and a track by Zipf-like popularity,
from the user's community with probability ``in_community`` and from the whole catalogue
otherwise. Most events are plays (count = 1 + Poisson, more repeats in-community); likes and
reposts are much likelier for in-community tracks. Each user follows ~Poisson(follows_per_user)
others, inside its community with probability ``homophily``. Event times increase with the
event index over ``days`` days; the last ``eval_fraction`` of that span goes to
``eval_events.parquet``.

Events are drawn in fixed blocks of BLOCK events, each from its own seeded generator, and written
``chunk_events`` rows at a time: the files depend only on the seed and the sizes, never on
``chunk_events``, and memory does not grow with ``n_events``. Raw ids are gapped and shuffled.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mp2v4rec.datasets.synthetic import _group_layout, _raw_ids
from mp2v4rec.io import InputError, atomic_path

START_S = 1_704_067_200  # 2024-01-01 00:00 UTC, in seconds (the adapter's default unit)
BLOCK = 1 << 16  # events per seeded random block
EVENT_NAMES = ("play", "like", "repost")
P_LIKE = {True: 0.10, False: 0.02}  # by whether the track is in the user's community
P_REPOST = {True: 0.04, False: 0.005}
EXTRA_PLAYS = {True: 1.0, False: 0.2}  # Poisson mean of count - 1 on play rows
GENRE_MAIN = 0.8  # share of a community's artists in its main genre
EVENT_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event", pa.string()),
        ("timestamp", pa.int64()),  # seconds since the epoch
        ("count", pa.int32()),
    ]
)


@dataclass
class EventWorld:
    """The planted structure (indices; raw ids alongside) and the samplers' tables."""

    user_raw: np.ndarray
    item_raw: np.ndarray
    artist_raw: np.ndarray
    user_comm: np.ndarray
    item_comm: np.ndarray
    item_artist: np.ndarray  # artist index of each track
    artist_genre: np.ndarray
    user_cdf: np.ndarray  # activity CDF over users
    item_cdf: np.ndarray  # popularity CDF over tracks
    local_cdf: np.ndarray  # community c's popularity CDF lives in [c, c + 1]
    item_order: np.ndarray  # tracks sorted by community (local_cdf's order)
    starts: np.ndarray  # each community's first position in item_order
    sizes: np.ndarray  # tracks per community
    follows: np.ndarray  # (n, 2) follower, followee indices


def _zipf(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Zipf-like weights 1 / rank^exponent in random order."""
    return (1.0 / np.arange(1, n + 1) ** exponent)[rng.permutation(n)]


def _follows(rng, user_comm: np.ndarray, per_user: float, homophily: float) -> np.ndarray:
    """(follower, followee) index pairs, sorted, distinct, no self-follows.

    Each user follows ~Poisson(per_user) others: a member of its own community with probability
    ``homophily`` (when it has other members), anyone else otherwise.
    """
    n = len(user_comm)
    src = np.repeat(np.arange(n), rng.poisson(per_user, n))
    order, starts, sizes = _group_layout(user_comm, int(user_comm.max()) + 1)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    c = user_comm[src]
    same = (rng.random(len(src)) < homophily) & (sizes[c] > 1)
    # draw among the other members (skipping oneself): inside the community, or anywhere
    local = np.floor(rng.random(len(src)) * (sizes[c] - 1)).astype(np.int64)
    local += local >= rank[src] - starts[c]
    anywhere = np.floor(rng.random(len(src)) * (n - 1)).astype(np.int64)
    anywhere += anywhere >= src
    dst = np.where(same, order[starts[c] + np.minimum(local, sizes[c] - 1)], anywhere)
    keys = np.sort(src * n + dst)  # distinct, sorted by (follower, followee)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]][: len(keys)]]
    return np.column_stack([keys // n, keys % n])


def _check(n_users, n_items, n_artists, n_genres, n_communities, probs, days, chunk) -> None:
    if not 1 <= n_communities <= n_artists <= n_items or n_users < max(2, n_communities):
        raise InputError(
            "synthetic events need n_items >= n_artists >= n_communities >= 1 and n_users >= "
            f"max(2, n_communities); got n_users={n_users}, n_items={n_items}, "
            f"n_artists={n_artists}, n_communities={n_communities}"
        )
    if n_genres < 1 or days <= 0 or chunk < 1:
        raise InputError(
            f"n_genres={n_genres}, days={days} and chunk_events={chunk} must be positive"
        )
    for name, value in probs.items():
        if not 0.0 <= value <= 1.0:
            raise InputError(f"synthetic events parameter {name}={value} must be in [0, 1]")


def plant_world(
    *,
    n_users: int,
    n_items: int,
    n_artists: int,
    n_genres: int,
    n_communities: int,
    follows_per_user: float,
    homophily: float,
    seed: int,
    user_zipf: float = 0.8,
    item_zipf: float = 1.0,
) -> EventWorld:
    """Communities, artists, genres, popularity and follows; deterministic by seed."""
    rng = np.random.default_rng([int(seed), 0])
    user_raw, item_raw, artist_raw = (_raw_ids(rng, n) for n in (n_users, n_items, n_artists))
    user_comm = rng.permutation(np.arange(n_users) % n_communities)
    artist_comm = rng.permutation(np.arange(n_artists) % n_communities)
    main_genre = rng.permutation(max(n_genres, n_communities))[:n_communities] % n_genres
    artist_genre = np.where(
        rng.random(n_artists) < GENRE_MAIN,
        main_genre[artist_comm],
        rng.integers(0, n_genres, n_artists),
    )
    # every artist owns a track; the other tracks go to artists by Zipf-like productivity
    productivity = _zipf(rng, n_artists, 1.0)
    extra = rng.choice(n_artists, n_items - n_artists, p=productivity / productivity.sum())
    item_artist = rng.permutation(np.concatenate([np.arange(n_artists), extra]))
    item_comm = artist_comm[item_artist]

    popularity = _zipf(rng, n_items, item_zipf)
    order, starts, sizes = _group_layout(item_comm, n_communities)
    pop = popularity[order]
    csum = np.cumsum(pop)
    before = np.concatenate([[0.0], csum])[starts]
    total = np.bincount(item_comm, popularity, minlength=n_communities)
    local_cdf = np.repeat(np.arange(n_communities), sizes) + (
        csum - np.repeat(before, sizes)
    ) / np.repeat(total, sizes)
    activity = _zipf(rng, n_users, user_zipf)

    follows = _follows(rng, user_comm, follows_per_user, homophily)
    return EventWorld(
        user_raw=user_raw,
        item_raw=item_raw,
        artist_raw=artist_raw,
        user_comm=user_comm,
        item_comm=item_comm,
        item_artist=item_artist,
        artist_genre=artist_genre,
        user_cdf=np.cumsum(activity) / activity.sum(),
        item_cdf=np.cumsum(popularity) / popularity.sum(),
        local_cdf=local_cdf,
        item_order=order,
        starts=starts,
        sizes=sizes,
        follows=follows,
    )


def _search(cdf: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """np.searchsorted(cdf, keys, "right"), clipped to the last index.

    The keys are searched in sorted order: ~3x faster (cache-friendly), same result.
    """
    order = np.argsort(keys)
    found = np.empty(len(keys), np.int64)
    found[order] = np.searchsorted(cdf, keys[order], side="right")
    return np.minimum(found, len(cdf) - 1)


def _block(world: EventWorld, b: int, n_events: int, span_s: int, in_community: float, seed):
    """Events [b * BLOCK, min((b + 1) * BLOCK, n_events)) as columns (indices, codes)."""
    rng = np.random.default_rng([int(seed), 1, b])
    first = b * BLOCK
    n = min(BLOCK, n_events - first)
    u = _search(world.user_cdf, rng.random(n))
    c = world.user_comm[u]
    local = _search(world.local_cdf, c + rng.random(n))
    local = np.clip(local, world.starts[c], world.starts[c] + world.sizes[c] - 1)
    anywhere = _search(world.item_cdf, rng.random(n))
    item = np.where(rng.random(n) < in_community, world.item_order[local], anywhere)
    match = world.item_comm[item] == c
    p_like = np.where(match, P_LIKE[True], P_LIKE[False])
    p_repost = np.where(match, P_REPOST[True], P_REPOST[False])
    r = rng.random(n)
    event = np.where(r < p_like, 1, np.where(r < p_like + p_repost, 2, 0)).astype(np.int8)
    extra = rng.poisson(np.where(match, EXTRA_PLAYS[True], EXTRA_PLAYS[False]))
    count = np.where(event == 0, 1 + extra, 1).astype(np.int32)
    # times grow with the event index: event i falls in [i, i + 1) / n_events of the span
    position = (first + np.arange(n) + rng.random(n)) / n_events
    timestamp = START_S + np.floor(position * span_s).astype(np.int64)
    return {"user": u, "item": item, "event": event, "timestamp": timestamp, "count": count}


def _table(world: EventWorld, cols: dict, mask: np.ndarray) -> pa.Table:
    codes = pa.array(cols["event"][mask])
    return pa.Table.from_arrays(
        [
            pa.array(world.user_raw[cols["user"][mask]]),
            pa.array(world.item_raw[cols["item"][mask]]),
            pa.DictionaryArray.from_arrays(codes, pa.array(EVENT_NAMES)).dictionary_decode(),
            pa.array(cols["timestamp"][mask]),
            pa.array(cols["count"][mask]),
        ],
        schema=EVENT_SCHEMA,
    )


def _event_chunks(world, n_events, chunk_events, span_s, in_community, seed):
    """The events in chunks of ``chunk_events`` rows (columns as arrays); each chunk is cut
    from the fixed-size seeded blocks it spans, so the events do not depend on the chunk size."""
    cached: tuple[int, dict] | None = None
    for a in range(0, n_events, chunk_events):
        z = min(a + chunk_events, n_events)
        parts = []
        for b in range(a // BLOCK, (z - 1) // BLOCK + 1):  # the blocks this chunk spans
            if cached is None or cached[0] != b:
                cached = (b, _block(world, b, n_events, span_s, in_community, seed))
            lo, hi = max(a - b * BLOCK, 0), min(z - b * BLOCK, BLOCK)
            parts.append({k: v[lo:hi] for k, v in cached[1].items()})
        yield {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _write_follows_and_items(world, n_genres: int, paths: dict) -> None:
    follows = pa.table(
        {
            "user_id": world.user_raw[world.follows[:, 0]],
            "followee_id": world.user_raw[world.follows[:, 1]],
        }
    )
    pq.write_table(follows, paths["follows"])
    genre_names = np.array([f"genre_{g:02d}" for g in range(n_genres)])
    items = pa.table(
        {
            "item_id": world.item_raw,
            "artist_id": world.artist_raw[world.item_artist],
            "genre": genre_names[world.artist_genre[world.item_artist]],
        }
    ).sort_by("item_id")
    pq.write_table(items, paths["items"])


def write_synthetic_events(
    outdir: str | os.PathLike,
    *,
    n_users: int = 2_000,
    n_items: int = 5_000,
    n_events: int = 200_000,
    n_artists: int = 800,
    n_genres: int = 12,
    n_communities: int = 8,
    follows_per_user: float = 10.0,
    homophily: float = 0.8,
    days: float = 365.0,
    seed: int = 0,
    eval_fraction: float = 0.1,
    chunk_events: int = 1_000_000,
    in_community: float = 0.8,
    user_zipf: float = 0.8,
    item_zipf: float = 1.0,
) -> dict:
    """Write events/eval_events/follows/items Parquet files into ``outdir``; return counts.

    The four files are renamed into place together at the end, so a failure leaves none of them.
    """
    probs = dict(homophily=homophily, eval_fraction=eval_fraction, in_community=in_community)
    _check(n_users, n_items, n_artists, n_genres, n_communities, probs, days, chunk_events)
    if n_events < 0 or follows_per_user < 0:
        raise InputError("n_events and follows_per_user must be >= 0")
    world = plant_world(
        n_users=n_users,
        n_items=n_items,
        n_artists=n_artists,
        n_genres=n_genres,
        n_communities=n_communities,
        follows_per_user=follows_per_user,
        homophily=homophily,
        seed=seed,
        user_zipf=user_zipf,
        item_zipf=item_zipf,
    )
    span_s = round(days * 86_400)
    cutoff_s = START_S + round((1.0 - eval_fraction) * span_s)
    counts = {"events": 0, "eval_events": 0, **{name: 0 for name in EVENT_NAMES}}
    outdir = os.fspath(outdir)
    with contextlib.ExitStack() as stack:
        paths = {
            name: stack.enter_context(atomic_path(os.path.join(outdir, f"{name}.parquet")))
            for name in ("events", "eval_events", "follows", "items")
        }
        writers = {
            name: stack.enter_context(pq.ParquetWriter(paths[name], EVENT_SCHEMA))
            for name in ("events", "eval_events")
        }
        for cols in _event_chunks(world, n_events, chunk_events, span_s, in_community, seed):
            late = cols["timestamp"] >= cutoff_s
            for name, mask in (("events", ~late), ("eval_events", late)):
                if mask.any():
                    writers[name].write_table(_table(world, cols, mask))
                    counts[name] += int(mask.sum())
            for code, name in enumerate(EVENT_NAMES):
                counts[name] += int((cols["event"] == code).sum())
        for writer in writers.values():
            writer.close()
        _write_follows_and_items(world, n_genres, paths)
    return {
        **counts,
        "follows": len(world.follows),
        "users": n_users,
        "items": n_items,
        "artists": n_artists,
        "genres": n_genres,
        "communities": n_communities,
        "start_timestamp": START_S,
        "cutoff_timestamp": cutoff_s,
        "end_timestamp": START_S + span_s,
    }
