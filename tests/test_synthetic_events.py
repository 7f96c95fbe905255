"""Synthetic event logs: determinism, chunk invariance, bounded memory, planted structure."""

import tracemalloc

import polars as pl
import pytest

from mp2v4rec.datasets.synthetic_events import (
    BLOCK,
    START_S,
    plant_world,
    write_synthetic_events,
)
from mp2v4rec.io import InputError

FILES = ("events", "eval_events", "follows", "items")
SMALL = dict(
    n_users=400,
    n_items=900,
    n_artists=120,
    n_genres=6,
    n_communities=4,
    follows_per_user=6,
    homophily=0.85,
    days=30,
    seed=11,
)


def read(folder) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(folder / f"{name}.parquet") for name in FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    counts = write_synthetic_events(out, n_events=40_000, chunk_events=7_000, **SMALL)
    return out, counts


def test_files_and_counts(small):
    folder, counts = small
    data = read(folder)
    assert list(data["events"].schema) == ["user_id", "item_id", "event", "timestamp", "count"]
    assert list(data["follows"].schema) == ["user_id", "followee_id"]
    assert list(data["items"].schema) == ["item_id", "artist_id", "genre"]
    assert data["events"].height == counts["events"]
    assert data["eval_events"].height == counts["eval_events"]
    assert counts["events"] + counts["eval_events"] == 40_000
    assert counts["play"] + counts["like"] + counts["repost"] == 40_000
    assert data["follows"].height == counts["follows"]
    # eval events: the last 10% of the span; times in seconds, increasing with the row
    cutoff = counts["cutoff_timestamp"]
    assert cutoff == START_S + round(0.9 * 30 * 86_400)
    assert data["events"]["timestamp"].max() < cutoff <= data["eval_events"]["timestamp"].min()
    assert data["events"]["timestamp"].is_sorted()
    assert 0.05 < counts["eval_events"] / 40_000 < 0.15
    assert (data["events"]["count"] >= 1).all()
    # raw ids: distinct, not dense
    items = data["items"]["item_id"]
    assert items.n_unique() == 900 and items.max() >= 900
    users = data["events"]["user_id"].unique()
    assert users.max() >= users.len()


def test_deterministic_and_chunk_invariant(small, tmp_path):
    folder, counts = small
    again = write_synthetic_events(tmp_path / "a", n_events=40_000, chunk_events=1_000, **SMALL)
    assert again == counts
    first, second = read(folder), read(tmp_path / "a")
    for name in FILES:
        assert first[name].equals(second[name]), name
    other = write_synthetic_events(
        tmp_path / "b", n_events=40_000, chunk_events=7_000, **{**SMALL, "seed": 12}
    )
    assert not read(tmp_path / "b")["events"].equals(first["events"])
    assert other["events"] + other["eval_events"] == 40_000


def test_memory_does_not_grow_with_events(tmp_path):
    def peak(n_events: int) -> int:
        tracemalloc.start()
        write_synthetic_events(
            tmp_path / str(n_events), n_events=n_events, chunk_events=10_000, **SMALL
        )
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    # a chunk can straddle two blocks, so compare sizes that both do
    two, five = peak(2 * BLOCK), peak(5 * BLOCK)
    assert five < 1.15 * two, (two, five)
    assert five < 40 << 20


def test_planted_structure(small):
    folder, _ = small
    world = plant_world(**{k: v for k, v in SMALL.items() if k != "days"})
    data = read(folder)
    user_comm = dict(zip(world.user_raw.tolist(), world.user_comm.tolist(), strict=True))
    item_comm = dict(zip(world.item_raw.tolist(), world.item_comm.tolist(), strict=True))
    ev = pl.concat([data["events"], data["eval_events"]]).with_columns(
        same=pl.col("user_id").replace_strict(user_comm)
        == pl.col("item_id").replace_strict(item_comm)
    )
    share = ev.group_by("event").agg(pl.col("same").mean()).sort("event")
    share = dict(share.iter_rows())
    assert share["play"] > 0.75  # in_community 0.8 plus chance hits
    assert share["like"] > share["play"] and share["repost"] > share["play"]
    f = data["follows"]
    same = f["user_id"].replace_strict(user_comm) == f["followee_id"].replace_strict(user_comm)
    assert 0.8 < same.mean() < 0.95  # homophily 0.85 plus chance
    assert (f["user_id"] != f["followee_id"]).all() and not f.is_duplicated().any()
    # power laws: the top 1% of tracks and users carry a large share of the events
    for column, n in (("item_id", 900), ("user_id", 400)):
        top = ev[column].value_counts(sort=True)["count"].head(max(n // 100, 1)).sum()
        assert top / ev.height > 0.1, column
    # artists own several tracks of one genre; a community's tracks mostly share one genre
    items = data["items"]
    per_artist = items.group_by("artist_id").agg(pl.len(), pl.col("genre").n_unique())
    assert per_artist["len"].max() > 5 and (per_artist["genre"] == 1).all()
    items = items.with_columns(c=pl.col("item_id").replace_strict(item_comm))
    main = (
        items.group_by("c", "genre")
        .len()
        .group_by("c")
        .agg(pl.col("len").max() / pl.col("len").sum())
    )
    assert (main["len"] > 0.5).all()


def test_bad_parameters(tmp_path):
    with pytest.raises(InputError, match="n_items >= n_artists"):
        write_synthetic_events(tmp_path, **{**SMALL, "n_artists": 2000}, n_events=10)
    with pytest.raises(InputError, match="homophily"):
        write_synthetic_events(tmp_path, **{**SMALL, "homophily": 1.5}, n_events=10)
    assert not list(tmp_path.iterdir())
