"""Event-log preprocessing: hand-computed scores, filters, splits, mapping, errors, synthetic."""

import gzip

import numpy as np
import polars as pl
import pytest

from mp2v4rec.datasets.events import activity_filter, holdout_mask, preprocess_events
from mp2v4rec.datasets.synthetic_events import write_synthetic_events
from mp2v4rec.io import InputError

DAY_S = 86_400
T0 = 1_700_000_000  # seconds
LOOSE = dict(min_user_interactions=1, min_item_interactions=1)


def write(path, rows, columns=("user_id", "item_id", "event", "timestamp", "count")):
    """Rows (tuples) to a CSV or Parquet file, by extension."""
    df = pl.DataFrame([dict(zip(columns, r, strict=True)) for r in rows])
    if str(path).endswith(".csv"):
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return path


def raw_pairs(p, table="all") -> dict:
    """{(raw user, raw item): (weight, timestamp ms)} of train/valid/test (or all three)."""
    frames = [p.train, p.valid, p.test] if table == "all" else [getattr(p, table)]
    df = pl.concat(frames)
    users, items = p.users["raw_id"].to_numpy(), p.items["raw_id"].to_numpy()
    return {
        (int(users[u]), int(items[i])): (w, t)
        for u, i, w, t in df.select("user", "item", "weight", "timestamp").iter_rows()
    }


def heldout(p) -> set:
    return set(raw_pairs(p, "valid")) | set(raw_pairs(p, "test"))


# one user with four items, a second user so the holdout has something to do
SCORE_EVENTS = [
    (1, 10, "like", T0 - 365 * DAY_S, 1),  # one half-life old: 0.5
    (1, 11, "play", T0, 3),  # 3 plays now: 1.0
    (1, 12, "play", T0 - 730 * DAY_S, 1),  # play + like + repost, summed
    (1, 12, "like", T0 - 365 * DAY_S, 1),
    (1, 12, "repost", T0, 2),
    (1, 13, "play", T0 - 10, 0),  # count 0: score 0, not positive
    (2, 10, "play", T0, 1),
    (2, 11, "play", T0, 1),
]


@pytest.fixture
def score_file(tmp_path):
    return write(tmp_path / "events.parquet", SCORE_EVENTS)


def test_scores_decay_and_sum(score_file):
    p = preprocess_events(events=score_file, **LOOSE)
    p.check()
    pairs = raw_pairs(p)
    assert pairs[(1, 10)][0] == pytest.approx(0.5)
    assert pairs[(1, 11)][0] == pytest.approx(1.0)
    assert pairs[(1, 12)][0] == pytest.approx(0.25 / 3 + 0.5 + 2.0)
    assert pairs[(2, 10)][0] == pytest.approx(1 / 3)
    assert (1, 13) not in pairs and p.stats["pairs_below_min_score"] == 1
    assert pairs[(1, 12)][1] == T0 * 1000  # the pair's latest event
    assert p.stats["decay_anchor_ms"] == T0 * 1000  # latest timestamp
    assert p.stats["events_by_type"] == {"like": 2, "play": 5, "repost": 1}
    assert p.stats["event_rows"] == len(SCORE_EVENTS)


def test_decay_anchor_and_weights_given(score_file):
    later = T0 + 365 * DAY_S
    p = preprocess_events(
        events=score_file,
        decay_anchor=later,
        event_weights={"play": 1, "like": 2, "repost": 0},
        **LOOSE,
    )
    pairs = raw_pairs(p)
    assert p.stats["decay_anchor_ms"] == later * 1000
    assert pairs[(1, 10)][0] == pytest.approx(2 * 0.25)
    assert pairs[(1, 11)][0] == pytest.approx(3 * 0.5)
    assert pairs[(1, 12)][0] == pytest.approx(0.125 + 2 * 0.25)
    iso = preprocess_events(events=score_file, decay_anchor="2024-11-13T22:13:20Z", **LOOSE)
    assert iso.stats["decay_anchor_ms"] == later * 1000
    flat = preprocess_events(events=score_file, half_life_days=None, **LOOSE)
    assert raw_pairs(flat)[(1, 10)][0] == pytest.approx(1.0)


def test_unknown_event_type(tmp_path):
    path = write(tmp_path / "e.csv", [*SCORE_EVENTS, (2, 12, "skip", T0, 1)])
    with pytest.raises(InputError, match=r"e\.csv.*column 'event' row 9 .*'skip'.*event_weights"):
        preprocess_events(events=path, **LOOSE)
    p = preprocess_events(events=path, default_event_weight=0.25, **LOOSE)
    assert raw_pairs(p)[(2, 12)][0] == pytest.approx(0.25)


def test_activity_filter_fixed_point():
    # min 2 each: u4 goes, then item c (one user left), then u3 (one item left)
    users = np.array([1, 1, 2, 2, 3, 3, 4])
    items = np.array([100, 200, 100, 200, 200, 300, 300])
    keep, stats = activity_filter(users, items, 2, 2, fixed_point=True)
    assert keep.tolist() == [True] * 4 + [False] * 3
    assert stats == {
        "rounds": 4,
        "users_below_min": 1,
        "items_below_min": 0,
        "removed_pairs": 3,
        "removed_users": 2,
        "removed_items": 1,
    }
    once, stats = activity_filter(users, items, 2, 2, fixed_point=False)
    assert once.tolist() == [True] * 6 + [False]
    assert stats["rounds"] == 1


def test_activity_filter_in_preprocessing(tmp_path):
    pairs = [(1, 100), (1, 200), (2, 100), (2, 200), (3, 200), (3, 300), (4, 300)]
    path = write(tmp_path / "e.parquet", [(u, i, "like", T0, 1) for u, i in pairs])
    kw = dict(events=path, min_user_interactions=2, min_item_interactions=2, holdout_fraction=0.5)
    fixed = preprocess_events(**kw)
    assert set(raw_pairs(fixed)) == set(pairs[:4])
    assert fixed.stats["activity_filter_removed_users"] == 2
    once = preprocess_events(**kw, filter_to_fixed_point=False)
    assert set(raw_pairs(once)) == set(pairs[:6])
    with pytest.raises(InputError, match="activity filters.*lower them"):
        preprocess_events(events=path, min_user_interactions=5, min_item_interactions=1)


def test_column_mapping(tmp_path, score_file):
    names = ("uid", "tid", "kind", "ts", "n")
    path = write(tmp_path / "renamed.csv", SCORE_EVENTS, names)
    mapping = dict(zip(("user_id", "item_id", "event", "timestamp", "count"), names, strict=True))
    p = preprocess_events(events=path, columns={"events": mapping}, **LOOSE)
    assert raw_pairs(p) == raw_pairs(preprocess_events(events=score_file, **LOOSE))
    with pytest.raises(InputError, match=r"renamed\.csv: missing column 'user'.*columns.events"):
        preprocess_events(events=path, columns={"events": {**mapping, "user_id": "user"}})
    with pytest.raises(InputError, match=r"missing column 'user_id'"):
        preprocess_events(events=path)
    with pytest.raises(InputError, match=r"columns.events: unknown columns \['userid'\]"):
        preprocess_events(events=path, columns={"events": {"userid": "uid"}})


def test_compressed_csv_and_tsv(tmp_path, score_file):
    expected = raw_pairs(preprocess_events(events=score_file, **LOOSE))
    frame = pl.read_parquet(score_file)
    frame.write_csv(tmp_path / "e.tsv", separator="\t")
    (tmp_path / "e.csv.gz").write_bytes(gzip.compress(frame.write_csv().encode()))
    for name in ("e.tsv", "e.csv.gz"):
        assert raw_pairs(preprocess_events(events=tmp_path / name, **LOOSE)) == expected, name
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(InputError, match="unsupported file type"):
        preprocess_events(events=tmp_path / "e.json")


def test_without_count_column_and_iso_times(tmp_path):
    names = ("user_id", "item_id", "event", "timestamp")
    rows = [(1, 10, "like", "2024-01-01T01:00:00+01:00"), (1, 11, "play", "2023-01-01T00:00:00Z")]
    p = preprocess_events(events=write(tmp_path / "e.csv", rows, names), **LOOSE)
    pairs = raw_pairs(p)
    assert pairs[(1, 10)] == (1.0, 1_704_067_200_000)
    assert pairs[(1, 11)] == (pytest.approx(1 / 6), 1_672_531_200_000)  # a year older
    dates = [(1, 10, "like", "2024-01-01"), (1, 11, "play", "2023-01-01")]
    p = preprocess_events(events=write(tmp_path / "d.csv", dates, names), **LOOSE)
    assert raw_pairs(p)[(1, 11)][1] == 1_672_531_200_000
    rows = [(1, 10, "like", 1_704_067_200_123, 2), (1, 11, "like", 1_704_067_200_000, 1)]
    ms = write(tmp_path / "ms.csv", rows)
    p = preprocess_events(events=ms, timestamp_unit="ms", half_life_days=None, **LOOSE)
    assert raw_pairs(p) == {(1, 10): (2.0, 1_704_067_200_123), (1, 11): (1.0, 1_704_067_200_000)}
    decimal = [(1, 10, "like", "1704067200.123", 1), (1, 11, "like", "1704067200", 1)]
    decimal = write(tmp_path / "dec.csv", decimal)
    p = preprocess_events(events=decimal, **LOOSE)  # decimal seconds and integer seconds
    assert raw_pairs(p)[(1, 10)][1] == 1_704_067_200_123


# ---- evaluation splits -----------------------------------------------------------------------

TRAIN = [(u, i, "like", T0 - 100 + u, 1) for u in (1, 2, 3) for i in (10, 11, 12)]


def test_split_eval_events(tmp_path):
    train = write(tmp_path / "train.parquet", [*TRAIN, (1, 13, "play", T0, 1)])
    evals = write(
        tmp_path / "eval.parquet",
        [
            (1, 13, "like", T0 + 50, 1),  # already in train
            (2, 13, "play", T0 + 60, 2),  # new pair: held out
            (2, 13, "play", T0 + 70, 1),
            (3, 13, "like", T0 + 80, 1),  # new pair: held out
            (9, 10, "like", T0 + 90, 1),  # cold user
            (3, 99, "like", T0 + 90, 1),  # cold item
        ],
    )
    p = preprocess_events(events=train, eval_events=evals, **LOOSE)
    assert p.stats["split"] == "eval_events" and p.valid.height == 0
    test = raw_pairs(p, "test")
    assert set(test) == {(2, 13), (3, 13)}
    assert test[(2, 13)] == (pytest.approx(1.0, rel=1e-4), (T0 + 70) * 1000)  # decay anchor T0
    assert set(raw_pairs(p, "train")) == {(u, i) for u, i, *_ in TRAIN} | {(1, 13)}
    s = p.stats
    assert (s["heldout_in_train"], s["heldout_cold_pairs"], s["heldout_pairs"]) == (1, 2, 2)
    assert (s["heldout_cold_users"], s["heldout_cold_items"]) == (1, 1)
    assert p.users.filter("evaluated")["raw_id"].to_list() == [2, 3]
    with pytest.raises(InputError, match="split='holdout' but eval_events is given"):
        preprocess_events(events=train, eval_events=evals, split="holdout", **LOOSE)


def test_split_temporal(tmp_path):
    cutoff = T0 + 1000
    rows = [
        *TRAIN,
        (1, 10, "play", cutoff + 5, 1),  # pair also before the cutoff: not held out
        (1, 13, "like", cutoff, 1),  # at the cutoff: held out; item 13 new -> cold
        (2, 12, "repost", cutoff + 9, 1),  # in train
        (3, 14, "play", cutoff - 1, 1),  # before: train
        (2, 14, "like", cutoff + 3, 1),  # held out
        (7, 14, "like", cutoff + 3, 1),  # cold user
    ]
    path = write(tmp_path / "e.csv", rows)
    p = preprocess_events(events=path, cutoff_time=cutoff, **LOOSE)
    assert p.stats["split"] == "temporal"
    assert set(raw_pairs(p, "test")) == {(2, 14)}
    assert set(raw_pairs(p, "train")) == {(u, i) for u, i, *_ in TRAIN} | {(3, 14)}
    assert raw_pairs(p, "train")[(1, 10)][1] == (T0 - 99) * 1000  # only the earlier event
    s = p.stats
    assert (s["heldout_in_train"], s["heldout_cold_pairs"], s["decay_anchor_ms"]) == (
        2,
        2,
        (cutoff + 9) * 1000,
    )
    iso = preprocess_events(events=path, cutoff_time="2023-11-14T22:30:00+00:00", **LOOSE)
    assert set(raw_pairs(iso, "test")) == {(2, 14)}
    with pytest.raises(InputError, match="no events at or after it"):
        preprocess_events(events=path, cutoff_time=cutoff + 10, **LOOSE)


def test_split_holdout(tmp_path):
    rows = [
        (u, 100 + i, "like", T0 + i, 1)
        for u, n in ((1, 1), (2, 2), (3, 5), (4, 10))
        for i in range(n)
    ]
    path = write(tmp_path / "e.parquet", rows)
    p = preprocess_events(events=path, holdout_fraction=0.2, seed=3, **LOOSE)
    assert p.stats["split"] == "holdout"
    train, held = set(raw_pairs(p, "train")), heldout(p)
    assert not train & held and train | held == {(u, i) for u, i, *_ in rows}
    per_user = {u: sum(1 for v, _ in held if v == u) for u in (1, 2, 3, 4)}
    assert per_user == {1: 0, 2: 1, 3: 1, 4: 2}  # round(0.2 n) clipped to [1, n - 1]
    assert p.users.filter("evaluated")["raw_id"].to_list() == [2, 3, 4]
    again = preprocess_events(events=path, holdout_fraction=0.2, seed=3, **LOOSE)
    assert heldout(again) == held
    others = {frozenset(heldout(preprocess_events(events=path, seed=s, **LOOSE))) for s in range(6)}
    assert len(others) > 1  # the seed matters


def test_holdout_mask_sizes():
    users = np.repeat(np.arange(5), [1, 2, 3, 10, 11])
    mask = holdout_mask(users, 0.5, seed=0)
    assert np.bincount(users[mask], minlength=5).tolist() == [0, 1, 2, 5, 6]


# ---- follows, items, errors ------------------------------------------------------------------


def test_follows_and_items(tmp_path):
    events = write(tmp_path / "e.parquet", TRAIN)
    follows = write(
        tmp_path / "f.csv",
        [(1, 2), (2, 1), (1, 2), (3, 3), (1, 9), (8, 3), (3, 1)],
        ("user_id", "followee_id"),
    )
    items = write(
        tmp_path / "i.csv",
        [(10, 500, "rock"), (11, 500, "jazz"), (12, 600, None), (77, 1, "pop"), (10, 1, "x")],
        ("item_id", "artist_id", "genre"),
    )
    p = preprocess_events(events=events, follows=follows, items=items, **LOOSE)
    p.check()
    assert p.social.rows() == [(0, 1), (1, 0), (2, 0)]  # users 1, 2, 3 -> 0, 1, 2
    s = p.stats
    assert (s["follows_rows"], s["follows_dropped_unknown_users"]) == (7, 2)
    assert (s["follows_self_or_duplicate"], s["social_edges"]) == (2, 3)
    # genres jazz=0, rock=1; artists 500 -> 2 + 0, 600 -> 2 + 1
    assert p.items.rows() == [(0, 10, 1, [1, 2]), (1, 11, 0, [0, 2]), (2, 12, -1, [3])]
    assert (s["genres"], s["artists"], s["item_rows_unknown"], s["item_rows_duplicate"]) == (
        2,
        2,
        1,
        1,
    )
    bare = preprocess_events(events=events, **LOOSE)
    assert bare.social.height == 0 and bare.items["category"].to_list() == [-1, -1, -1]
    bare.check()


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ((1, 10, "like", T0, "many"), r"column 'count' row 3 \(file line 4\) has 'many'"),
        ((1, 10, "like", T0, -1), r"column 'count' row 3 .*finite number >= 0"),
        ((1, 10, "like", T0, "inf"), r"column 'count' row 3 .*'inf'"),
        ((1, 10, "like", "yesterday", 1), r"column 'timestamp' row 3 .*'yesterday'.*timestamp"),
        ((1, "abc", "like", T0, 1), r"column 'item_id' row 3 .*integer ids are required"),
        ((None, 10, "like", T0, 1), r"column 'user_id' row 3 .* is empty"),
    ],
)
def test_bad_cells(tmp_path, row, pattern):
    rows = [(1, 10, "like", T0, 1), (2, 11, "play", T0, 2), row]
    path = tmp_path / "bad.csv"
    pl.DataFrame(
        {
            k: [str(r[j]) if r[j] is not None else None for r in rows]
            for j, k in enumerate(("user_id", "item_id", "event", "timestamp", "count"))
        }
    ).write_csv(path)
    with pytest.raises(InputError, match=r"bad\.csv: " + pattern):
        preprocess_events(events=path, **LOOSE)


def test_other_errors(tmp_path):
    path = write(tmp_path / "e.parquet", TRAIN)
    with pytest.raises(InputError, match="not found"):
        preprocess_events(events=tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="no file matches"):
        preprocess_events(events=str(tmp_path / "*.csv"))
    with pytest.raises(InputError, match="positive_min_score=5.0; lower it"):
        preprocess_events(events=path, positive_min_score=5.0, **LOOSE)
    with pytest.raises(InputError, match="timestamp_unit"):
        preprocess_events(events=path, timestamp_unit="ns")
    with pytest.raises(InputError, match="split='temporal' needs cutoff_time"):
        preprocess_events(events=path, split="temporal")


# ---- generated data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    write_synthetic_events(
        out,
        n_users=300,
        n_items=600,
        n_events=30_000,
        n_artists=80,
        n_genres=5,
        n_communities=4,
        follows_per_user=5,
        homophily=0.8,
        days=100,
        seed=5,
    )
    return out


def inputs(folder, ext):
    return {
        name: str(folder / f"{name}.{ext}")
        for name in ("events", "eval_events", "follows", "items")
    }


def test_generated_dataset(generated, tmp_path):
    p = preprocess_events(**inputs(generated, "parquet"), min_item_interactions=3)
    p.check()
    p.write(tmp_path / "data")
    s = p.stats
    assert s["split"] == "eval_events" and s["valid_pairs"] > 0 and s["test_pairs"] > 0
    assert s["social_edges"] > 0 and s["genres"] == 5 and s["items_without_metadata"] == 0
    # per-user validation/test sizes follow the rounding rule, and never overlap
    h = pl.concat([p.valid.with_columns(v=1), p.test.with_columns(v=0)])
    sizes = h.group_by("user").agg(n=pl.len(), nv=pl.col("v").sum())
    n = sizes["n"].to_numpy()
    expect = np.where(n >= 2, np.clip(np.floor(n * 0.2 + 0.5), 1, n - 1), 0)
    assert (sizes["nv"].to_numpy() == expect).all() and (n >= 2).any()
    assert h.select("user", "item").is_duplicated().sum() == 0
    assert p.train.join(h, on=["user", "item"]).height == 0
    assert p.train["user"].n_unique() == p.users.height
    assert p.users["evaluated"].sum() == h["user"].n_unique()


def test_csv_and_parquet_agree(generated, tmp_path):
    for name, path in inputs(generated, "parquet").items():
        pl.read_parquet(path).write_csv(tmp_path / f"{name}.csv")
    kw = dict(min_item_interactions=3, seed=2)
    a = preprocess_events(**inputs(generated, "parquet"), **kw)
    b = preprocess_events(**inputs(tmp_path, "csv"), **kw)
    for name in ("train", "valid", "test", "social", "users", "items"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.stats == b.stats
    # a glob over split files gives the same result too
    events = pl.read_parquet(inputs(generated, "parquet")["events"])
    events.head(10_000).write_parquet(tmp_path / "part-0.parquet")
    events.slice(10_000).write_parquet(tmp_path / "part-1.parquet")
    c = preprocess_events(
        **{**inputs(generated, "parquet"), "events": str(tmp_path / "part-*.parquet")}, **kw
    )
    for name in ("train", "test"):  # float sums may add up in another order
        x, y = getattr(a, name), getattr(c, name)
        assert x.drop("weight").equals(y.drop("weight"))
        assert np.allclose(x["weight"].to_numpy(), y["weight"].to_numpy(), rtol=1e-6)


def test_ids_beyond_the_packed_key_give_the_same_tables(generated, tmp_path):
    """Pairs are grouped on one int64 key when the ids fit; ids that do not take two columns."""
    shift = {"user_id": 2**40, "followee_id": 2**40, "item_id": -(2**40)}
    files = inputs(generated, "parquet")
    for name, path in files.items():
        df = pl.read_parquet(path)
        df.with_columns(pl.col(c) + s for c, s in shift.items() if c in df.columns).write_parquet(
            tmp_path / f"{name}.parquet"
        )
    a = preprocess_events(**files, min_item_interactions=3)
    b = preprocess_events(**inputs(tmp_path, "parquet"), min_item_interactions=3)
    assert a.stats == b.stats
    assert b.users["raw_id"].equals(a.users["raw_id"] + 2**40)
    assert b.items["raw_id"].equals(a.items["raw_id"] - 2**40)
    assert a.items.drop("raw_id").equals(b.items.drop("raw_id")) and a.social.equals(b.social)
    for name in ("train", "valid", "test"):  # float sums may add up in another order
        x, y = getattr(a, name), getattr(b, name)
        assert x.drop("weight").equals(y.drop("weight")), name
        assert np.allclose(x["weight"].to_numpy(), y["weight"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "values, unit, expect",
    [
        (
            (1_704_067_200_000, 1_704_153_600_000),
            "s",
            "epoch milliseconds: set preprocess.timestamp_unit: ms",
        ),
        (
            (1_704_067_200_000_000, 1_704_153_600_000_000),
            "s",
            "epoch microseconds: set preprocess.timestamp_unit: us",
        ),
        (
            (1_704_067_200_000_000, 1_704_153_600_000_000),
            "ms",
            "epoch microseconds: set preprocess.timestamp_unit: us",
        ),
        ((1_704_067_200, 1_704_153_600), "ms", "epoch seconds: set preprocess.timestamp_unit: s"),
        (
            (1_704_067_200_000, 1_704_153_600_000),
            "us",
            "epoch milliseconds: set preprocess.timestamp_unit: ms",
        ),
    ],
)
def test_timestamps_in_another_unit_are_named(tmp_path, values, unit, expect):
    """Epoch ms (or us) read as seconds used to end in the datetime library's 'year ... is out
    of range'; seconds read as ms landed silently in January 1970. Both now say what the values
    look like and which key to set."""
    rows = [(1, 10, "like", values[0], 1), (2, 11, "like", values[1], 1)]
    with pytest.raises(InputError, match=expect.replace(".", r"\.")) as err:
        preprocess_events(events=write(tmp_path / "e.csv", rows), timestamp_unit=unit, **LOOSE)
    assert "read as" in str(err.value) and "fall in the years" in str(err.value)


def test_microsecond_timestamps_are_read_as_such(tmp_path):
    rows = [(1, 10, "like", 1_704_067_200_123_456, 1), (1, 11, "like", 1_704_067_200_000_000, 1)]
    p = preprocess_events(
        events=write(tmp_path / "us.csv", rows), timestamp_unit="us", half_life_days=None, **LOOSE
    )
    assert raw_pairs(p)[(1, 10)] == (1.0, 1_704_067_200_123)
