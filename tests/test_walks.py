import logging
import re

import numpy as np
import polars as pl
import pytest

from mp2v4rec.graph import RELATIONS, build_graph
from mp2v4rec.io import InputError
from mp2v4rec.walks import generate_walks, read_walks, write_walks

UV = ["user_item", "item_user"]
UUV = ["user_user", "user_item", "item_user"]
N_USERS, N_ITEMS = 40, 30


def frames(train_rows, social_pairs):
    u, i, w = (list(c) for c in zip(*train_rows, strict=True))
    train = pl.DataFrame(
        {"user": u, "item": i, "weight": w, "timestamp": [0] * len(u)},
        schema={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32, "timestamp": pl.Int64},
    )
    a, b = (list(c) for c in zip(*social_pairs, strict=True)) if social_pairs else ([], [])
    social = pl.DataFrame({"user": a, "friend": b}, schema={"user": pl.Int32, "friend": pl.Int32})
    return train, social


@pytest.fixture(scope="module")
def graph():
    """Random graph; users 0-4 have no items, users 0-2 and 10-14 have no friends."""
    rng = np.random.default_rng(7)
    rows = [
        (u, int(i), float(w))
        for u in range(5, N_USERS)
        for i, w in zip(
            rng.choice(N_ITEMS, rng.integers(1, 6), replace=False),
            rng.lognormal(size=6),
            strict=False,
        )
    ]
    lonely = {0, 1, 2, *range(10, 15)}
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, N_USERS, (40, 2))]
    pairs = [(a, b) for a, b in pairs if a not in lonely and b not in lonely] + [(3, 4), (4, 20)]
    return build_graph(*frames(rows, pairs), N_USERS, N_ITEMS)


def neighbours(g, rel, node):
    indptr, indices = g[f"{rel}_indptr"], g[f"{rel}_indices"]
    return indices[indptr[node] : indptr[node + 1]]


def check_walk(g, metapath, walk):
    """Replay a walk (global ids) against the graph and the metapath, skipping empty U-U hops."""
    n_users = int(g["n_users"])
    kind = ["user" if v < n_users else "item" for v in walk]
    local = [v if v < n_users else v - n_users for v in walk]
    pos = next(k for k, rel in enumerate(metapath) if RELATIONS[rel][0] == kind[0])
    for t in range(len(walk) - 1):
        for _ in range(len(metapath)):
            rel = metapath[pos]
            src, dst = RELATIONS[rel]
            assert src == kind[t]
            if src == dst and neighbours(g, rel, local[t]).size == 0:
                pos = (pos + 1) % len(metapath)  # skipped hop
            else:
                break
        assert kind[t + 1] == dst, f"token {t + 1} of {walk} should be a {dst}"
        assert local[t + 1] in neighbours(g, rel, local[t]), f"{walk}: no {rel} edge at {t}"
        pos = (pos + 1) % len(metapath)


def as_lists(nodes, lengths):
    return [list(row[:n]) for row, n in zip(nodes, lengths, strict=True)]


@pytest.mark.parametrize("metapath", [UV, UUV])
@pytest.mark.parametrize("sampling", ["uniform", "weighted"])
def test_walks_follow_edges_and_metapath(graph, metapath, sampling):
    nodes, lengths = generate_walks(
        graph, metapath, walk_length=9, walks_per_node=3, sampling=sampling, seed=5, start="all"
    )
    assert nodes.dtype == np.int64 and lengths.dtype == np.int32
    assert np.all(lengths >= 2) and np.all(lengths <= 9)
    for row, n in zip(nodes, lengths, strict=True):
        assert np.all(row[n:] == -1) and np.all(row[:n] >= 0)
        check_walk(graph, metapath, list(row[:n]))
    starts = nodes[:, 0]
    assert np.all(np.diff(starts) >= 0)  # ordered by start node, users first
    assert (starts >= N_USERS).any()  # item starts present


def test_dead_ends_are_dropped_and_counted(graph, tmp_path):
    # users 0-4 have no items: under UV they give 1-token walks
    nodes, _ = generate_walks(
        graph, UV, walk_length=5, walks_per_node=4, sampling="uniform", seed=1
    )
    assert not np.isin(nodes[:, 0], range(5)).any()
    assert set(nodes[:, 0]) == set(range(5, N_USERS))
    stats = write_walks(
        graph,
        tmp_path / "w.txt",
        metapath=UV,
        walk_length=5,
        walks_per_node=4,
        sampling="uniform",
        seed=1,
    )
    assert stats["short_walks_dropped"] == 5 * 4
    assert stats["walks"] == (N_USERS - 5) * 4 == len(nodes)
    # under UUV: friendless users 0-2 without items are dropped; 3 and 4 walk to a friend
    nodes, lengths = generate_walks(
        graph, UUV, walk_length=6, walks_per_node=2, sampling="uniform", seed=1
    )
    assert not np.isin(nodes[:, 0], [0, 1, 2]).any()
    walks34 = [w for w in as_lists(nodes, lengths) if w[0] in (3, 4)]
    assert walks34 and all(w[1] < N_USERS for w in walks34)
    # friendless users 10-14 skip the user_user hop and go straight to an item
    walks10 = [w for w in as_lists(nodes, lengths) if 10 <= w[0] < 15]
    assert len(walks10) == 10 and all(w[1] >= N_USERS for w in walks10)


def test_all_skip_metapath_terminates(graph):
    nodes, lengths = generate_walks(
        graph, ["user_user"], walk_length=4, walks_per_node=1, sampling="uniform", seed=0
    )
    assert not np.isin(nodes[:, 0], [0, 1, 2, 10, 11, 12, 13, 14]).any()
    assert np.all(nodes[:, : lengths.min()] < N_USERS)


@pytest.mark.parametrize(
    ("sampling", "expected"), [("weighted", [0.1, 0.2, 0.7]), ("uniform", [1 / 3] * 3)]
)
def test_first_hop_frequencies(sampling, expected):
    g = build_graph(*frames([(0, 0, 1.0), (0, 1, 2.0), (0, 2, 7.0), (1, 3, 0.5)], []), 2, 4)
    nodes, _ = generate_walks(
        g, UV, walk_length=2, walks_per_node=20000, sampling=sampling, seed=11
    )
    first = nodes[nodes[:, 0] == 0, 1] - 2
    freq = np.bincount(first, minlength=3) / first.size
    np.testing.assert_allclose(freq, expected, atol=0.02)


def test_zero_weight_edge_never_sampled():
    g = build_graph(*frames([(0, 0, 0.0), (0, 1, 1.0), (1, 0, 0.0)], []), 2, 2)
    nodes, lengths = generate_walks(
        g, UV, walk_length=2, walks_per_node=500, sampling="weighted", seed=3
    )
    assert np.all(nodes[nodes[:, 0] == 0, 1] == 3)  # item 1
    assert np.isin(nodes[nodes[:, 0] == 1, 1], [2]).all()  # all-zero row: uniform over one item


def test_reproducible_across_threads_and_seeds(graph):
    kw = {"walk_length": 12, "walks_per_node": 5, "sampling": "weighted", "start": "all"}
    a = generate_walks(graph, UUV, seed=42, threads=1, **kw)
    b = generate_walks(graph, UUV, seed=42, threads=2, **kw)
    c = generate_walks(graph, UUV, seed=42, threads=1, **kw)
    d = generate_walks(graph, UUV, seed=43, threads=1, **kw)
    for x in (b, c):
        np.testing.assert_array_equal(a[0], x[0])
        np.testing.assert_array_equal(a[1], x[1])
    assert a[0].shape != d[0].shape or not np.array_equal(a[0], d[0])


@pytest.mark.parametrize("start", ["users", "all"])
def test_shards_concatenate_to_unsharded_file(graph, tmp_path, start):
    kw = {
        "metapath": UUV,
        "walk_length": 7,
        "walks_per_node": 3,
        "sampling": "weighted",
        "seed": 9,
        "start": start,
    }
    write_walks(graph, tmp_path / "all.txt", **kw)
    parts = []
    for shard in range(4):
        path = tmp_path / f"part{shard}.txt"
        write_walks(graph, path, shard=shard, n_shards=4, chunk_starts=5, threads=2, **kw)
        parts.append(path.read_bytes())
    whole = (tmp_path / "all.txt").read_bytes()
    assert whole and b"".join(parts) == whole


def test_text_format_parses_back(graph, tmp_path, caplog):
    kw = {"walk_length": 10, "walks_per_node": 2, "sampling": "uniform", "seed": 4, "start": "all"}
    path = tmp_path / "walks.txt"
    with caplog.at_level(logging.INFO, logger="mp2v4rec.walks"):
        stats = write_walks(graph, path, metapath=UUV, chunk_starts=7, **kw)
    assert sum("start nodes" in r.message for r in caplog.records) == 1 + 10  # prepare + chunks
    text = path.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert all(re.fullmatch(r"([ui]\d+)( [ui]\d+)*", line) for line in lines)
    nodes, lengths = generate_walks(graph, UUV, **kw)
    assert [list(w) for w in read_walks(path, N_USERS)] == as_lists(nodes, lengths)
    assert stats["walks"] == len(lines) == len(lengths)
    assert stats["tokens"] == int(lengths.sum()) == len(text.split())
    assert stats["steps_per_second"] > 0


def test_empty_shard_gives_empty_file(graph, tmp_path):
    g = build_graph(*frames([(0, 0, 1.0)], []), 1, 1)
    stats = write_walks(
        g,
        tmp_path / "w.txt",
        metapath=UV,
        walk_length=3,
        walks_per_node=1,
        sampling="uniform",
        seed=0,
        shard=0,
        n_shards=2,
    )
    assert stats["walks"] == 0 and (tmp_path / "w.txt").read_bytes() == b""


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sampling": "alias"}, "sampling"),
        ({"walk_length": 1}, "walk_length"),
        ({"shard": 2, "n_shards": 2}, "shard"),
        ({"n_shards": 0}, "shard"),
        ({"walks_per_node": 0}, "walks_per_node"),
        ({"start": "items"}, "start"),
        ({"metapath": ["user_item"]}, "metapaths"),
    ],
)
def test_bad_arguments(graph, kwargs, match):
    kw = {"metapath": UV, "walk_length": 5, "walks_per_node": 1, "sampling": "uniform", "seed": 0}
    kw.update(kwargs)
    with pytest.raises(InputError, match=match):
        generate_walks(graph, kw.pop("metapath"), **kw)
