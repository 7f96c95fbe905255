"""The synthetic KuaiRec generator: format, determinism, the small block and the planted signal."""

import io
import re
import zipfile

import numpy as np
import polars as pl
import pytest

from mp2v4rec.datasets import synthetic
from mp2v4rec.datasets.synthetic import generate_synthetic_kuairec, write_synthetic_kuairec
from mp2v4rec.io import InputError

SMALL = dict(
    n_users=120,
    n_items=200,
    n_communities=4,
    interactions_per_user=25,
    small_users=20,
    small_items=30,
)
MATRIX_HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio"
TIMED_ROW = re.compile(
    r"^\d+,\d+,\d+,\d+,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3},\d{8},\d{10}\.\d{3},\d+\.\d{10}$"
)
UNTIMED_ROW = re.compile(r"^\d+,\d+,\d+,\d+,,,,\d+\.\d{10}$")
LIST_ROW = re.compile(r'^\d+,(\[\d+\]|"\[\d+(, \d+)+\]")$')
MEMBERS = [
    "KuaiRec 2.0/data/big_matrix.csv",
    "KuaiRec 2.0/data/small_matrix.csv",
    "KuaiRec 2.0/data/social_network.csv",
    "KuaiRec 2.0/data/item_categories.csv",
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("syn") / "KuaiRec.zip"
    counts = write_synthetic_kuairec(path, **SMALL, seed=3)
    with zipfile.ZipFile(path) as zf:
        texts = {name.rsplit("/", 1)[1]: zf.read(name).decode() for name in zf.namelist()}
        names = zf.namelist()
    return path, counts, names, texts


@pytest.fixture(scope="module")
def tables():
    return generate_synthetic_kuairec(**SMALL, seed=5)


def matrix(text: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(text), schema_overrides={"date": pl.String})


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"
    write_synthetic_kuairec(a, **SMALL, seed=1)
    write_synthetic_kuairec(b, **SMALL, seed=1)
    write_synthetic_kuairec(c, **SMALL, seed=2)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_writing_in_slices_changes_nothing(tmp_path, monkeypatch):
    write_synthetic_kuairec(tmp_path / "a.zip", **SMALL)
    monkeypatch.setattr(synthetic, "WRITE_ROWS", 7)
    write_synthetic_kuairec(tmp_path / "b.zip", **SMALL)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_members_headers_and_formats(archive):
    _, _, names, texts = archive
    assert names == MEMBERS
    big = texts["big_matrix.csv"].splitlines()
    small = texts["small_matrix.csv"].splitlines()
    assert big[0] == small[0] == MATRIX_HEADER
    assert all(TIMED_ROW.match(line) for line in big[1:])
    untimed = [line for line in small[1:] if not TIMED_ROW.match(line)]
    assert all(UNTIMED_ROW.match(line) for line in untimed)
    assert 0 < len(untimed) < 0.06 * (len(small) - 1)  # about 2% lack a time
    social = texts["social_network.csv"].splitlines()
    cats = texts["item_categories.csv"].splitlines()
    assert social[0] == "user_id,friend_list" and cats[0] == "video_id,feat"
    assert all(LIST_ROW.match(line) for line in social[1:] + cats[1:])
    assert any('"' in line for line in social[1:])  # multi-friend lists are quoted
    n_feats = [line.count(",") for line in cats[1:]]  # id column + 0..2 more categories
    assert min(n_feats) == 1 and max(n_feats) == 3


def test_time_columns_agree_and_ratio_is_play_over_duration(archive):
    df = matrix(archive[3]["big_matrix.csv"])
    local = pl.from_epoch((pl.col("timestamp") * 1000).round().cast(pl.Int64), "ms")
    local = local + pl.duration(hours=8)  # KuaiRec's time column is Beijing time
    check = df.select(
        time=local.dt.strftime("%Y-%m-%d %H:%M:%S%.3f") == pl.col("time"),
        date=local.dt.strftime("%Y%m%d") == pl.col("date"),
        summer=pl.col("date").is_between(pl.lit("20200705"), pl.lit("20200904")),
        ratio=(pl.col("watch_ratio") - pl.col("play_duration") / pl.col("video_duration")).abs()
        < 1e-9,
    )
    assert check.select(pl.all().all()).row(0) == (True, True, True, True)


def test_counts_and_gapped_unsorted_raw_ids(archive, tables):
    _, counts, _, texts = archive
    assert counts["big_matrix_rows"] == texts["big_matrix.csv"].count("\n") - 1
    assert counts["social_rows"] == texts["social_network.csv"].count("\n") - 1
    assert counts["users"] == SMALL["n_users"] and counts["items"] == SMALL["n_items"]
    users = tables.user_community["user_id"].to_numpy()
    assert not np.array_equal(users, np.arange(len(users)))
    assert not np.array_equal(np.sort(users), np.arange(len(users)))  # gapped, not just shuffled


def test_small_block_complete_and_disjoint_from_big(archive):
    texts = archive[3]
    big, small = matrix(texts["big_matrix.csv"]), matrix(texts["small_matrix.csv"])
    assert small.height == SMALL["small_users"] * SMALL["small_items"]
    assert small.select("user_id", "video_id").n_unique() == small.height
    assert small["user_id"].n_unique() == SMALL["small_users"]
    assert small["video_id"].n_unique() == SMALL["small_items"]
    assert big.join(small, on=["user_id", "video_id"], how="semi").height == 0
    # small-block users still have big-matrix rows with other items
    assert small["user_id"].is_in(big["user_id"].implode()).all()


def test_planted_watch_ratio_signal(tables):
    rows = pl.concat([tables.big, tables.small]).select("user_id", "video_id", "watch_ratio")
    rows = rows.join(tables.user_community, on="user_id").join(
        tables.item_community, on="video_id", suffix="_item"
    )
    by = rows.group_by(same=pl.col("community") == pl.col("community_item")).agg(
        mean=pl.col("watch_ratio").mean(), positive=(pl.col("watch_ratio") >= 2).mean()
    )
    same, other = (
        by.filter("same").row(0, named=True),
        by.filter(~pl.col("same")).row(0, named=True),
    )
    assert same["mean"] > 2 > other["mean"]
    assert same["positive"] > 0.6 and other["positive"] < 0.2


def test_big_matrix_prefers_own_community_and_popular_items(tables):
    big = tables.big.join(tables.user_community, on="user_id").join(
        tables.item_community, on="video_id", suffix="_item"
    )
    assert (big["community"] == big["community_item"]).mean() > 0.5  # chance: 1/4
    counts = big["video_id"].value_counts()["count"].sort(descending=True)
    assert counts[0] > 5 * counts.median()  # Zipf popularity: a heavy head


def test_friendships_mostly_within_community(tables):
    edges = tables.social.with_columns(
        friend=pl.col("friend_list").str.strip_chars("[]").str.split(", ").cast(pl.List(pl.Int64))
    ).explode("friend")
    comm = tables.user_community
    edges = edges.join(comm, on="user_id").join(
        comm.rename({"user_id": "friend"}), on="friend", suffix="_friend"
    )
    assert edges.height >= 0.3 * SMALL["n_users"]
    assert (edges["community"] == edges["community_friend"]).mean() > 0.75
    assert (edges["user_id"] != edges["friend"]).all()
    assert tables.social.height == round(0.3 * SMALL["n_users"])


def test_first_category_is_the_community_category(tables):
    first = tables.categories.select(
        "video_id", first=pl.col("feat").str.extract(r"^\[(\d+)").cast(pl.Int64)
    ).join(tables.item_community, on="video_id")
    per_community = first.group_by("community").agg(pl.col("first").n_unique(), main="first")
    assert (per_community["first"] == 1).all()
    assert per_community["main"].list.first().n_unique() == SMALL["n_communities"]


@pytest.mark.parametrize(
    "bad",
    [dict(small_users=500), dict(homophily=1.5), dict(n_communities=0), dict(zipf=0)],
)
def test_bad_parameters_raise_input_error(tmp_path, bad):
    with pytest.raises(InputError):
        write_synthetic_kuairec(tmp_path / "x.zip", **{**SMALL, **bad})
    assert not (tmp_path / "x.zip").exists()
