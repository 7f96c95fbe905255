"""KuaiRec preprocessing: a hand-written archive with known answers, errors, synthetic data."""

import zipfile

import polars as pl
import pytest

from mp2v4rec.datasets import kuairec
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.datasets.synthetic import generate_synthetic_kuairec, write_synthetic_kuairec
from mp2v4rec.io import InputError

HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n"
# raw users 10, 20, 30 (big) and 20, 40, 50, 60 (small) -> indices 0..5 in sorted order;
# raw items 100, 200, 300, 500 (big) and 300, 700, 900 (small) -> indices 0..5
BIG = HEADER + (
    "30,500,5000,2000,2020-07-05 00:08:23.438,20200705,1593878903.438,2.5\n"
    "30,300,1000,1000,2020-07-05 00:08:30.000,20200705,1593878910.000,1.0\n"
    "30,100,3000,1000,2020-07-05 00:06:40.000,20200705,1593878800.000,3.0\n"
    "30,500,8000,2000,2020-07-05 00:10:00.100,20200705,1593879000.100,4.0\n"
    "10,300,2000,1000,2020-07-05 00:26:40.500,20200705,1593880000.500,2.0\n"
    "10,200,1990,1000,2020-07-05 00:26:41.000,20200705,1593880001.000,1.99\n"
    "20,200,5000,1000,,,,5.0\n"
    "20,100,2200,1000,2020-07-05 03:13:20.000,20200705,1593890000.000,2.2\n"
)
SMALL = HEADER + "".join(
    f"{u},{i},1,1,2020-07-06 00:00:00.000,20200706,{1593964800 + k}.000,{r}\n"
    for k, (u, i, r) in enumerate(
        [
            (20, 300, 3.0),
            (20, 900, 2.5),
            (20, 700, 0.5),
            (40, 300, 2.1),
            (40, 900, 0.1),
            (40, 700, 1.0),
            (50, 300, 2.0),
            (50, 700, 9.0),
            (50, 900, 4.0),
            (60, 300, 0.2),
            (60, 700, 0.3),
            (60, 900, 0.4),
        ]
    )
)
SOCIAL = 'user_id,friend_list\n10,"[20, 30]"\n20,[777]\n30,"[10, 888, 40]"\n999,[10]\n'
CATEGORIES = 'video_id,feat\n100,"[3, 7]"\n200,[5]\n300,[7]\n700,"[1, 2, 3]"\n900,[]\n999,[4]\n'
FILES = {
    "big_matrix.csv": BIG,
    "small_matrix.csv": SMALL,
    "social_network.csv": SOCIAL,
    "item_categories.csv": CATEGORIES,
}


def make_zip(path, prefix="KuaiRec 2.0/data/", **replace):
    """Write the tiny archive; ``replace`` swaps a member's text (None leaves it out)."""
    files = {**FILES, **{k.replace("_csv", ".csv"): v for k, v in replace.items()}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            if text is not None:
                zf.writestr(prefix + name, text)
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    archive = make_zip(tmp_path_factory.mktemp("tiny") / "tiny.zip", prefix="my copy/data/")
    return preprocess_kuairec(archive)


def rows(df: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in df.iter_rows()]


def test_schema_and_index_mapping(prepared):
    prepared.check()
    assert rows(prepared.users) == [
        (0, 10, False),
        (1, 20, True),
        (2, 30, False),
        (3, 40, True),
        (4, 50, True),
        (5, 60, True),
    ]
    assert prepared.items["raw_id"].to_list() == [100, 200, 300, 500, 700, 900]
    assert prepared.items["item"].to_list() == list(range(6))


def test_train_threshold_duplicates_and_time_order(prepared):
    train = prepared.train.with_columns(pl.col("weight").cast(pl.Float64).round(4))
    assert rows(train) == [
        (0, 2, 2.0, 1593880000500),  # exactly at the threshold: kept
        (1, 0, 2.2, 1593890000000),
        (1, 1, 5.0, None),  # no timestamp: last within its user
        (2, 0, 3.0, 1593878800000),  # earlier time sorts first
        (2, 3, 4.0, 1593878903438),  # two rows: max weight, earliest time
    ]
    assert prepared.stats["duplicate_positive_rows"] == 1
    assert prepared.stats["positives"] == 5
    assert prepared.stats["big_matrix_rows"] == 8
    assert prepared.stats["train_missing_timestamps"] == 1


def test_valid_test_split(prepared):
    valid, test = prepared.valid, prepared.test
    pairs = set(rows(valid.select("user", "item"))) | set(rows(test.select("user", "item")))
    assert pairs == {(1, 2), (1, 5), (3, 2), (4, 2), (4, 4), (4, 5)}  # small-matrix positives
    assert not set(rows(valid.select("user", "item"))) & set(rows(test.select("user", "item")))
    # 2 positives -> 1 + 1; 1 positive -> test only; 3 positives -> round(0.6) = 1 valid
    assert dict(rows(valid.group_by("user").len())) == {1: 1, 4: 1}
    assert dict(rows(test.group_by("user").len())) == {1: 1, 3: 1, 4: 2}
    stats = prepared.stats
    assert (stats["valid_pairs"], stats["test_pairs"]) == (2, 4)
    assert (stats["evaluated_users"], stats["eval_users_without_positives"]) == (4, 1)
    assert (stats["small_matrix_users"], stats["small_matrix_items"]) == (4, 3)


def test_held_out_pair_that_is_a_train_positive_is_dropped_and_counted(tmp_path):
    big = BIG + "20,300,3000,1000,2020-07-05 03:13:21.000,20200705,1593890001.000,3.0\n"
    prepared = preprocess_kuairec(make_zip(tmp_path / "a.zip", big_matrix_csv=big))
    held = pl.concat([prepared.valid, prepared.test]).select("user", "item")
    assert (1, 2) in set(rows(prepared.train.select("user", "item")))
    assert set(rows(held)) == {(1, 5), (3, 2), (4, 2), (4, 4), (4, 5)}  # (1, 2) is gone
    assert prepared.stats["eval_pairs_in_train"] == 1


def test_cold_pairs_are_counted(prepared):
    # users 3, 4 and items 4, 5 have no train positive: every held-out pair but (1, 2) is cold
    stats = prepared.stats
    assert (stats["eval_cold_users"], stats["eval_cold_items"]) == (2, 2)
    assert (stats["eval_cold_pairs"], stats["eval_cold_share"]) == (5, 0.8333)


def test_split_is_seeded(tmp_path):
    archive = tmp_path / "s.zip"
    write_synthetic_kuairec(archive, n_users=60, n_items=80, small_users=20, small_items=30)
    a = preprocess_kuairec(archive, seed=7, valid_fraction=0.5)
    b = preprocess_kuairec(archive, seed=7, valid_fraction=0.5)
    c = preprocess_kuairec(archive, seed=8, valid_fraction=0.5)
    assert a.valid.equals(b.valid) and a.test.equals(b.test)
    assert not a.valid.equals(c.valid)
    assert a.valid.height + a.test.height == c.valid.height + c.test.height


def test_social_edges_drop_unknown_ids(prepared):
    assert rows(prepared.social) == [(0, 1), (0, 2), (2, 0), (2, 3)]
    stats = prepared.stats
    assert (stats["social_rows"], stats["social_edges"], stats["social_dropped"]) == (4, 4, 3)


def test_categories(prepared):
    assert rows(prepared.items.select("category", "categories")) == [
        (3, [3, 7]),
        (5, [5]),
        (7, [7]),
        (-1, []),  # 500 has no category row
        (1, [1, 2, 3]),
        (-1, []),  # 900 has an empty list
    ]
    stats = prepared.stats
    assert stats["category_rows"] == 6 and stats["category_rows_dropped"] == 1
    assert stats["categories"] == 5 and stats["items_without_category"] == 2


def test_chunked_reading_gives_the_same_answer(tmp_path, prepared, monkeypatch):
    monkeypatch.setattr(kuairec, "CHUNK_BYTES", 40)  # a chunk per line or two
    again = preprocess_kuairec(make_zip(tmp_path / "tiny.zip"))
    for name in ("train", "valid", "test", "social", "users", "items"):
        assert getattr(again, name).equals(getattr(prepared, name)), name
    assert again.stats == prepared.stats


def test_missing_member(tmp_path):
    archive = make_zip(tmp_path / "a.zip", item_categories_csv=None)
    with pytest.raises(InputError, match=r"a\.zip.*item_categories\.csv"):
        preprocess_kuairec(archive)


def test_missing_column(tmp_path):
    text = BIG.replace(",watch_ratio\n", ",ratio\n", 1)
    with pytest.raises(InputError, match=r"big_matrix\.csv.*missing column 'watch_ratio'"):
        preprocess_kuairec(make_zip(tmp_path / "a.zip", big_matrix_csv=text))


@pytest.mark.parametrize("chunk", [1 << 20, 40])
def test_non_numeric_watch_ratio_names_column_and_row(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(kuairec, "CHUNK_BYTES", chunk)
    lines = SMALL.splitlines(keepends=True)
    lines[5] = lines[5].rsplit(",", 1)[0] + ",n/a\n"  # data row 5
    archive = make_zip(tmp_path / "a.zip", small_matrix_csv="".join(lines))
    with pytest.raises(InputError, match=r"small_matrix\.csv: column 'watch_ratio' row 5 .*n/a"):
        preprocess_kuairec(archive)


def test_bad_or_empty_ids(tmp_path):
    text = BIG.replace("\n20,100,", "\nx20,100,")
    with pytest.raises(InputError, match=r"column 'user_id' row 8 .*x20"):
        preprocess_kuairec(make_zip(tmp_path / "a.zip", big_matrix_csv=text))
    text = BIG.replace("\n20,100,", "\n,100,")
    with pytest.raises(InputError, match=r"column 'user_id' row 8 .*empty"):
        preprocess_kuairec(make_zip(tmp_path / "b.zip", big_matrix_csv=text))


def test_malformed_friend_list(tmp_path):
    text = SOCIAL.replace("[777]", '"[777, x]"')
    with pytest.raises(InputError, match=r"friend_list' row 2 .*777, x"):
        preprocess_kuairec(make_zip(tmp_path / "a.zip", social_network_csv=text))


def test_corrupt_or_absent_archive(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(InputError, match="bad.zip"):
        preprocess_kuairec(bad)
    with pytest.raises(InputError, match="not found"):
        preprocess_kuairec(tmp_path / "absent.zip")
    with pytest.raises(InputError, match="valid_fraction"):
        preprocess_kuairec(make_zip(tmp_path / "a.zip"), valid_fraction=1.0)


def test_synthetic_archive_round_trip(tmp_path):
    params = dict(n_users=150, n_items=200, n_communities=4, small_users=30, small_items=40)
    archive = tmp_path / "syn.zip"
    counts = write_synthetic_kuairec(archive, **params, interactions_per_user=30, seed=2)
    prepared = preprocess_kuairec(archive)
    prepared.check()
    stats = prepared.stats
    assert stats["big_matrix_rows"] == counts["big_matrix_rows"]
    assert stats["users"] == 150 and stats["evaluated_users"] == 30
    assert stats["small_matrix_rows"] == 30 * 40
    assert stats["valid_pairs"] + stats["test_pairs"] == stats["small_matrix_positive_rows"]
    assert stats["eval_pairs_in_train"] == 0
    assert (prepared.train["weight"] >= 2.0).all()
    assert prepared.users["evaluated"].sum() == 30
    assert stats["social_edges"] == counts["social_edges"]  # every friend is a known user
    # the planted communities show through: positives are mostly same-community pairs
    truth = generate_synthetic_kuairec(**params, interactions_per_user=30, seed=2)
    users = prepared.users.join(truth.user_community, left_on="raw_id", right_on="user_id")
    items = prepared.items.join(truth.item_community, left_on="raw_id", right_on="video_id")
    train = prepared.train.join(users.select("user", "community"), on="user").join(
        items.select("item", "community"), on="item", suffix="_item"
    )
    assert (train["community"] == train["community_item"]).mean() > 0.85
    assert stats["duplicate_positive_rows"] > 0
    assert all(isinstance(v, int | float) for v in stats.values())


def test_millisecond_timestamps_are_named(tmp_path):
    """KuaiRec's timestamps are seconds; epoch milliseconds are refused with what they look like."""
    import zipfile

    from mp2v4rec.datasets.kuairec import preprocess_kuairec
    from mp2v4rec.io import InputError

    path = tmp_path / "k.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("KuaiRec 2.0/data/big_matrix.csv", HEADER + "1,1,1,1,t,1,1593878400123.0,3.0\n")
        z.writestr("KuaiRec 2.0/data/small_matrix.csv", HEADER + "1,2,1,1,t,1,1593878400.0,3.0\n")
        z.writestr("KuaiRec 2.0/data/social_network.csv", "user_id,friend_list\n")
        z.writestr("KuaiRec 2.0/data/item_categories.csv", "video_id,feat\n1,[0]\n2,[0]\n")
    with pytest.raises(
        InputError, match="looks like epoch milliseconds.*divide the column by 1,000"
    ):
        preprocess_kuairec(path)
