"""Property tests: KuaiRec id-list parsing, dense id mapping, walk text round trip.

Small examples (a few dozen per property) so the file runs in seconds; the metrics and
recommendation properties live in test_metrics.py and test_recommend.py.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mp2v4rec.arrays import sorted_unique
from mp2v4rec.config import METAPATHS
from mp2v4rec.datasets.events import _lookup, preprocess_events
from mp2v4rec.datasets.kuairec import known, parse_id_lists, preprocess_kuairec, to_index
from mp2v4rec.graph import build_graph
from mp2v4rec.io import InputError
from mp2v4rec.walks import generate_walks, read_walks, write_walks

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(0, 10**18 - 1)  # ids of up to 18 digits (int64)

# ---- friend_list / feat: "[4202, 7126]" -------------------------------------------------------

SPACE = st.text(alphabet=" \t", max_size=2)  # whitespace the format allows around any token


@st.composite
def formatted_lists(draw):
    """(ids, text): ids formatted as a bracketed list with random whitespace everywhere."""
    ids = draw(st.lists(INT64, max_size=6))
    parts = [draw(SPACE) + str(i) + draw(SPACE) for i in ids]
    text = draw(SPACE) + "[" + draw(SPACE) + ",".join(parts) + draw(SPACE) + "]" + draw(SPACE)
    return ids, text


@SETTINGS
@given(st.lists(formatted_lists(), min_size=1, max_size=5))
def test_id_lists_round_trip_with_any_whitespace(rows):
    parsed = parse_id_lists(pl.Series([text for _, text in rows]), "m.csv", "feat")
    assert parsed.to_list() == [ids for ids, _ in rows]


@SETTINGS
@given(st.lists(st.lists(INT64, max_size=6), min_size=1, max_size=5))
def test_id_lists_round_trip_as_pandas_writes_them(lists):
    """str(list) as KuaiRec's files hold them: '[4202, 7126]', '[]'; a null is an empty list."""
    texts = [str(ids) for ids in lists] + [None]
    parsed = parse_id_lists(pl.Series(texts, dtype=pl.String), "m.csv", "friend_list")
    assert parsed.to_list() == [*lists, []]


@SETTINGS
@given(formatted_lists(), st.sampled_from(["x", "-", ";", "[", "1.5", "'", "1 2"]), st.data())
def test_a_malformed_list_names_its_row(good, junk, data):
    """Inserting any of these anywhere breaks the format: an InputError naming the row."""
    ids, text = good
    at = data.draw(st.integers(0, len(text)), label="insert at")
    bad = text[:at] + junk + text[at:]
    with pytest.raises(InputError) as err:
        parse_id_lists(pl.Series([str(ids), bad]), "social.csv", "friend_list")
    assert "social.csv: column 'friend_list' row 2 (file line 3)" in str(err.value)
    assert repr(bad) in str(err.value)


# ---- dense id mapping --------------------------------------------------------------------------

RAW = st.integers(-(2**40), 2**40)


@SETTINGS
@given(st.lists(RAW, min_size=1, max_size=40))
def test_dense_index_is_an_order_preserving_bijection(raw):
    raw = np.array(raw, dtype=np.int64)
    ids = sorted_unique(raw)
    assert np.array_equal(ids, np.unique(raw))  # sorted distinct, like np.unique
    for index in (to_index(ids, raw), _lookup(raw, ids)):  # the KuaiRec and events mappings
        assert index.dtype == np.int32
        assert np.array_equal(ids[index], raw)  # round trip
        assert set(index.tolist()) == set(range(len(ids)))  # onto 0..n-1
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(index[order]) >= 0)  # raw order = index order
    assert known(ids, raw).all()
    assert not known(ids, np.array([ids.max() + 1, ids.min() - 1])).any()
    assert (_lookup(np.array([ids.max() + 1]), ids) == -1).all()


def _written(prepared, folder: Path) -> dict[str, pl.DataFrame]:
    prepared.write(folder)
    return {name: pl.read_parquet(folder / f"{name}.parquet") for name in ("users", "items")} | {
        name: pl.read_parquet(folder / f"{name}.parquet") for name in ("train", "valid", "test")
    }


def _raw_pairs(tables: dict[str, pl.DataFrame], *names: str) -> set[tuple[int, int]]:
    users, items = tables["users"]["raw_id"].to_numpy(), tables["items"]["raw_id"].to_numpy()
    df = pl.concat([tables[n] for n in names])
    return set(zip(users[df["user"]].tolist(), items[df["item"]].tolist(), strict=True))


def _check_maps(tables: dict[str, pl.DataFrame]) -> None:
    for name, col in (("users", "user"), ("items", "item")):
        df = tables[name]
        assert df[col].to_list() == list(range(df.height))  # 0..n-1, in order
        raw = df["raw_id"].to_numpy()
        assert np.all(np.diff(raw) > 0)  # sorted raw ids: the bijection keeps their order


@st.composite
def kuairec_matrices(draw):
    """Big and small matrix rows (user, item, watch_ratio) over arbitrary raw ids."""
    users = draw(st.lists(RAW.map(abs), min_size=1, max_size=6, unique=True))
    items = draw(st.lists(RAW.map(abs), min_size=1, max_size=6, unique=True))
    row = st.tuples(st.sampled_from(users), st.sampled_from(items), st.sampled_from([0.5, 2.5]))
    return draw(st.lists(row, min_size=1, max_size=15)), draw(st.lists(row, max_size=8))


@SETTINGS
@given(kuairec_matrices())
def test_kuairec_ids_round_trip_through_the_written_tables(matrices):
    big, small = matrices
    header = "user_id,video_id,timestamp,watch_ratio\n"
    members = {
        "big_matrix.csv": header + "".join(f"{u},{i},1.0,{r}\n" for u, i, r in big),
        "small_matrix.csv": header + "".join(f"{u},{i},2.0,{r}\n" for u, i, r in small),
        "social_network.csv": "user_id,friend_list\n",
        "item_categories.csv": "video_id,feat\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "k.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name, text in members.items():
                zf.writestr(f"data/{name}", text)
        train = {(u, i) for u, i, r in big if r >= 2}
        held_out = {(u, i) for u, i, r in small if r >= 2} - train
        if not (train and held_out):  # nothing to train on or nothing to evaluate: refused
            with pytest.raises(InputError, match="no (train|held-out) positive|no rows"):
                preprocess_kuairec(archive)
            return
        tables = _written(preprocess_kuairec(archive), Path(tmp) / "data")
    _check_maps(tables)
    rows = big + small
    assert tables["users"]["raw_id"].to_list() == sorted({u for u, _, _ in rows})
    assert tables["items"]["raw_id"].to_list() == sorted({i for _, i, _ in rows})
    assert _raw_pairs(tables, "train") == train
    assert _raw_pairs(tables, "valid", "test") == held_out  # train positives dropped from it


@st.composite
def event_rows(draw):
    """(user, item, event, count) rows over a few arbitrary raw ids, so pairs repeat."""
    users = draw(st.lists(RAW, min_size=1, max_size=4, unique=True))
    items = draw(st.lists(RAW, min_size=2, max_size=5, unique=True))
    row = st.tuples(
        st.sampled_from(users),
        st.sampled_from(items),
        st.sampled_from(["play", "like"]),
        st.integers(0, 3),
    )
    return draw(st.lists(row, min_size=3, max_size=20))


@SETTINGS
@given(event_rows())
def test_event_ids_round_trip_through_the_written_tables(rows):
    events = pl.DataFrame(
        rows, schema=["user_id", "item_id", "event", "count"], orient="row"
    ).with_columns(timestamp=pl.lit(1_700_000_000, pl.Int64))
    positive = {(u, i) for u, i, _, c in rows if c > 0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        events.write_parquet(path)
        kw = dict(min_user_interactions=1, min_item_interactions=1, half_life_days=None)
        try:
            prepared = preprocess_events(events=path, **kw)
        except InputError as err:  # nothing positive, or nothing to hold out: refused clearly
            assert "positive_min_score" in str(err) or "no held-out positives" in str(err)
            assume(False)
        tables = _written(prepared, Path(tmp) / "data")
    _check_maps(tables)
    assert tables["users"]["raw_id"].to_list() == sorted({u for u, _ in positive})
    assert tables["items"]["raw_id"].to_list() == sorted({i for _, i in positive})
    assert _raw_pairs(tables, "train", "valid", "test") == positive


# ---- walks: the text file is the walks ---------------------------------------------------------


@st.composite
def small_graphs(draw):
    n_users, n_items = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    edges = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_users - 1),
                st.integers(0, n_items - 1),
                st.floats(0.0, 5.0, allow_nan=False),
            ),
            max_size=20,
        )
    )
    friends = draw(
        st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_users - 1)), max_size=8)
    )
    train = pl.DataFrame(
        {
            "user": [u for u, _, _ in edges],
            "item": [i for _, i, _ in edges],
            "weight": [w for _, _, w in edges],
        },
        schema={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32},
    )
    social = pl.DataFrame(
        {"user": [a for a, _ in friends], "friend": [b for _, b in friends]},
        schema={"user": pl.Int32, "friend": pl.Int32},
    )
    return build_graph(train, social, n_users, n_items)


@SETTINGS
@given(
    small_graphs(),
    st.sampled_from(sorted(METAPATHS)),
    st.sampled_from(["uniform", "weighted"]),
    st.sampled_from(["users", "all"]),
    st.integers(2, 6),
    st.integers(1, 3),
    st.integers(0, 2**32),
    st.integers(1, 3),
    st.integers(1, 4),
)
def test_walk_file_reads_back_as_the_generated_walks(
    graph, metapath, sampling, start, length, per_node, seed, n_shards, chunk
):
    kw = dict(walk_length=length, walks_per_node=per_node, sampling=sampling, seed=seed)
    n_users = int(graph["n_users"])
    with tempfile.TemporaryDirectory() as tmp:
        read, expected = [], []
        for shard in range(n_shards):
            path = Path(tmp) / f"walks-{shard}.txt"
            where = dict(start=start, shard=shard, n_shards=n_shards)
            stats = write_walks(
                graph, path, metapath=METAPATHS[metapath], chunk_starts=chunk, **kw, **where
            )
            walks = read_walks(path, n_users)
            nodes, lengths = generate_walks(graph, METAPATHS[metapath], **kw, **where)
            assert stats["walks"] == len(walks) == len(lengths)
            read += [w.tolist() for w in walks]
            expected += [row[:n].tolist() for row, n in zip(nodes, lengths, strict=True)]
        assert read == expected
        assert all(2 <= len(w) <= length for w in read)
        unsharded, lengths = generate_walks(graph, METAPATHS[metapath], **kw, start=start)
        assert read == [row[:n].tolist() for row, n in zip(unsharded, lengths, strict=True)]


@pytest.mark.parametrize("text", ["[1, 2", "1, 2]", "[1,, 2]", "[a]", "[1 2]", "[-1]", "[1,]"])
def test_known_malformed_lists(text):
    with pytest.raises(InputError, match=r"feat' row 1 \(file line 2\)"):
        parse_id_lists(pl.Series([text]), "items.csv", "feat")
