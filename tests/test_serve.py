"""Serving artefacts: neighbour lists against brute force, the ANN path, every user's list with
its popularity fallback, the exported vectors, MMR playlists and the seed-based evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from mp2v4rec import serve
from mp2v4rec import topk as serve_topk
from mp2v4rec.config import serve_methods, validate_config
from mp2v4rec.io import InputError
from mp2v4rec.models import Embeddings
from mp2v4rec.protocols import last_items, seeded_lists, seeded_table


def brute_neighbours(V, n, score):
    """Full sort per item in float64 among the non-zero items, self excluded, lower index on
    ties."""
    V = V.astype(np.float64)
    if score == "cosine":
        V = V / np.where((nrm := np.linalg.norm(V, axis=1, keepdims=True)) == 0, 1, nrm)
    present = [i for i in range(len(V)) if np.any(V[i] != 0)]
    out = {}
    for i in present:
        s = V @ V[i]
        out[i] = sorted((j for j in present if j != i), key=lambda j: (-s[j], j))[:n]
    return out


def tables(n_users, n_items, pairs, timestamps=None, categories=None):
    """users / items / train tables in the prepared-data schemas (raw ids = 1000 + index)."""
    cats = categories if categories is not None else [-1] * n_items
    users = pl.DataFrame(
        {"user": np.arange(n_users), "raw_id": 1000 + np.arange(n_users), "evaluated": True},
        schema={"user": pl.Int32, "raw_id": pl.Int64, "evaluated": pl.Boolean},
    )
    items = pl.DataFrame(
        {
            "item": np.arange(n_items),
            "raw_id": 5000 + np.arange(n_items),
            "category": cats,
            "categories": [[c] if c >= 0 else [] for c in cats],
        },
        schema={
            "item": pl.Int32,
            "raw_id": pl.Int64,
            "category": pl.Int32,
            "categories": pl.List(pl.Int32),
        },
    )
    train = pl.DataFrame(
        {
            "user": [u for u, _ in pairs],
            "item": [i for _, i in pairs],
            "weight": [1.0] * len(pairs),
            "timestamp": timestamps if timestamps is not None else [0] * len(pairs),
        },
        schema={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32, "timestamp": pl.Int64},
    )
    return users, items, train


@pytest.mark.parametrize("score", ["cosine", "dot"])
def test_exact_neighbours_equal_brute_force(score):
    rng = np.random.default_rng(3)
    V = rng.normal(size=(120, 6)).astype(np.float32)
    V[7] = 0  # an untrained item: no list, never a neighbour
    items, idx, vals = serve.exact_neighbours(V, 10, score)
    expected = brute_neighbours(V, 10, score)
    assert 7 not in items and not np.isin(idx, 7).any()
    assert sorted(items.tolist()) == sorted(expected)
    for row, item in enumerate(items):
        assert idx[row].tolist() == expected[item], item
        assert item not in idx[row]
        assert np.all(np.diff(vals[row]) <= 0)


@pytest.mark.parametrize("score", ["cosine", "dot"])
def test_neighbour_ties_go_to_the_lower_index(score):
    # integer vectors: exact scores; items 2, 4, 5 are copies, so they tie for every query
    V = np.array([[1, 0], [0, 1], [2, 1], [1, 1], [2, 1], [2, 1], [0, 3]], dtype=np.float32)
    items, idx, _ = serve.exact_neighbours(V, 3, score)
    expected = brute_neighbours(V, 3, score)
    for row, item in enumerate(items):
        assert idx[row].tolist() == expected[item]
    assert idx[0].tolist()[:3] == [2, 4, 5]  # three tied copies, lowest index first


def test_neighbour_lists_are_short_when_the_catalogue_is():
    V = np.eye(3, dtype=np.float32)
    items, idx, vals = serve.exact_neighbours(V, 50, "cosine")
    frame = serve.neighbours_frame(items, idx, vals, np.array([10, 11, 12]))
    assert frame.group_by("item").len()["len"].to_list() == [2, 2, 2]
    assert set(frame["neighbour_raw_id"]) == {10, 11, 12}


def test_top_k_blocks_and_edges():
    rng = np.random.default_rng(9)
    Q, C = rng.normal(size=(37, 5)), rng.normal(size=(23, 5))
    whole = serve_topk.top_k(Q, C, 7)
    blocked = serve_topk.top_k(Q, C, 7, block_cells=23 * 4)  # four query rows per block
    assert np.array_equal(whole[0], blocked[0]) and np.array_equal(whole[1], blocked[1])
    idx, vals = serve_topk.top_k(Q, C, 30, exclude=np.full(37, 3))  # more than the candidates
    assert (idx[:, 22:] == -1).all() and np.isinf(vals[:, 22:]).all() and not (idx == 3).any()
    assert serve_topk.top_k(Q, C, 0)[0].shape == (37, 0)
    assert serve.exact_neighbours(np.eye(1, 3, dtype=np.float32), 5, "dot")[1].shape == (1, 0)


def clustered(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, n)
    return (centres[labels] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_ann_path_is_close_to_exact(tmp_path):
    V = clustered(3000, 16, 30, seed=1)
    U = clustered(40, 16, 30, seed=2)
    users, items, train = tables(40, 3000, [(u, (u * 37) % 3000) for u in range(40)])
    meta = serve.build_serve(
        tmp_path / "ann",
        method="m",
        user_vectors=U,
        item_vectors=V,
        score="cosine",
        users=users,
        items=items,
        train=train,
        neighbours=20,
        k=10,
        exact_max_items=100,  # far below the catalogue: the ANN path
        ann={"queries": 200, "target_recall": 0.95, "seed": 0},
    )
    assert meta["search"] == "ann"
    info = json.loads((tmp_path / "ann/ann.json").read_text())
    assert info["recall_at_20"] == info["recall"] >= 0.9
    for key in ("build_seconds", "queries_per_second", "index_bytes", "nlist", "nprobe"):
        assert info[key] > 0, key
    assert info["index_bytes"] == (tmp_path / "ann/ann.faiss").stat().st_size
    # the stored lists against exact search
    got = pl.read_parquet(tmp_path / "ann/item_neighbours.parquet")
    _, exact, _ = serve.exact_neighbours(V, 20, "cosine")
    found = got.sort("item", "rank").group_by("item", maintain_order=True).agg("neighbour")
    assert found.height == 3000
    overlap = np.mean(
        [len(set(a) & set(b)) / 20 for a, b in zip(found["neighbour"], exact, strict=True)]
    )
    assert overlap >= 0.9
    assert (got["item"] != got["neighbour"]).all()
    # user lists through the index: train items masked, close to exact
    recs = pl.read_parquet(tmp_path / "ann/user_recs.parquet")
    assert recs.join(train, on=["user", "item"]).height == 0
    assert recs.group_by("user").len()["len"].to_list() == [10] * 40


def test_ann_index_loads_and_answers(tmp_path):
    V = clustered(1000, 8, 10, seed=4)
    index, info = serve.build_ann(V, "dot", seed=0)
    serve.write_index(index, tmp_path / "i.faiss")
    again = serve.read_index(tmp_path / "i.faiss")
    idx, vals = serve.ann_search(again, V[:5], 10, again.nlist, "dot")  # every list: exact
    exact, _ = serve.exact_search(V[:5], V, 10, "dot")
    assert np.array_equal(idx, exact)
    assert info["n_indexed"] == 1000 and info["metric"] == "inner_product"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small exact serve folder: 6 users (user 4 has a zero vector, user 5 no train items)."""
    rng = np.random.default_rng(0)
    V = rng.normal(size=(30, 4)).astype(np.float32)
    V[29] = 0
    U = rng.normal(size=(6, 4)).astype(np.float32)
    U[4] = 0
    pairs = [(0, 1), (0, 2), (1, 3), (2, 3), (2, 9), (3, 0), (4, 3), (4, 9), (4, 1)]
    users, items, train = tables(6, 30, pairs)
    out = tmp_path_factory.mktemp("serve") / "m"
    meta = serve.build_serve(
        out,
        method="m",
        user_vectors=U,
        item_vectors=V,
        score="cosine",
        users=users,
        items=items,
        train=train,
        neighbours=5,
        k=8,
    )
    return out, meta, U, V, train


def test_user_recs_mask_train_items_and_fall_back_to_popularity(served):
    out, meta, U, V, train = served
    recs = pl.read_parquet(out / "user_recs.parquet")
    assert dict(recs.schema) == serve.USER_RECS_SCHEMA
    assert sorted(recs["user"].unique()) == [0, 1, 2, 3, 4]  # every user with a train history
    assert recs.join(train, on=["user", "item"]).height == 0
    assert (recs["raw_id"] == recs["user"] + 1000).all()
    assert (recs["item_raw_id"] == recs["item"] + 5000).all()
    # user 4: zero vector -> popularity: item 3 (3 users), then 1 and 9 (2 each), the rest by
    # index; its own train items (1, 3, 9) masked
    fallback = recs.filter(pl.col("user") == 4).sort("rank")
    assert fallback["fallback"].all()
    assert fallback["item"].to_list() == [0, 2, 4, 5, 6, 7, 8, 10]
    assert fallback["score"].to_list()[:2] == [1.0, 1.0]  # train counts
    model = recs.filter(pl.col("user") == 0).sort("rank")
    assert not model["fallback"].any()
    s = (V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-30)) @ (
        U[0] / np.linalg.norm(U[0])
    )
    s[[1, 2]] = -np.inf
    assert model["item"].to_list() == sorted(range(30), key=lambda i: (-s[i], i))[:8]
    assert meta["users_fallback"] == 1 and meta["users_served"] == 5


def test_word2vec_export_loads_with_gensim(served):
    from gensim.models import KeyedVectors

    out, _, U, V, _ = served
    kv = KeyedVectors.load_word2vec_format(out / "items.w2v.bin", binary=True)
    assert len(kv) == 29  # item 29 has no vector: left out
    for i in range(29):
        assert np.array_equal(kv[str(5000 + i)], V[i])
    users = KeyedVectors.load_word2vec_format(out / "users.w2v.bin", binary=True)
    assert sorted(users.index_to_key) == sorted(str(1000 + u) for u in (0, 1, 2, 3, 5))
    assert np.array_equal(users["1002"], U[2])


def test_parquet_vectors_round_trip(served):
    out, _, U, V, _ = served
    items = pl.read_parquet(out / "item_vectors.parquet")
    assert items["raw_id"].to_list() == list(range(5000, 5030))
    assert np.array_equal(items["vector"].to_numpy(), V)
    assert np.array_equal(pl.read_parquet(out / "user_vectors.parquet")["vector"].to_numpy(), U)
    meta = json.loads((out / "serve.json").read_text())
    assert meta["search"] == "exact" and meta["score"] == "cosine" and meta["dim"] == 4


def test_a_failed_build_leaves_nothing(tmp_path):
    users, items, train = tables(2, 3, [(0, 1)])
    with pytest.raises(InputError, match="different preprocess runs"):
        serve.build_serve(
            tmp_path / "m",
            method="m",
            user_vectors=np.ones((3, 2), np.float32),  # 3 users, but the table has 2
            item_vectors=np.ones((3, 2), np.float32),
            score="cosine",
            users=users,
            items=items,
            train=train,
        )
    assert list(tmp_path.iterdir()) == []


# --- playlists -------------------------------------------------------------------------------


def two_groups():
    """Group A (rows 0-5): near-duplicates close to the query; group B (rows 6-11): a bit less
    relevant but far from A. Unit vectors, so dot = cosine."""
    angles = np.r_[np.linspace(0.0, 0.05, 6), np.linspace(0.6, 0.65, 6)]
    V = np.c_[np.cos(angles), np.sin(angles)]
    query = np.array([np.cos(0.2), np.sin(0.2)])
    return V @ query, V


def test_mmr_with_diversity_lowers_pairwise_similarity():
    relevance, V = two_groups()
    plain = serve.mmr(relevance, V, 6, diversity=0.0)
    assert sorted(plain.tolist()) == [0, 1, 2, 3, 4, 5]  # by relevance only: all of group A
    assert plain.tolist() == list(np.lexsort((np.arange(12), -relevance))[:6])
    diverse = serve.mmr(relevance, V, 6, diversity=0.5)
    assert {int(i) >= 6 for i in diverse} == {True, False}  # both groups
    assert serve.mean_pairwise_similarity(V[diverse]) < serve.mean_pairwise_similarity(V[plain])


def test_mmr_caps_items_per_category():
    relevance, V = two_groups()
    categories = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1, -1])
    picked = serve.mmr(relevance, V, 9, categories=categories, max_per_category=2)
    counts = np.bincount(categories[picked][categories[picked] >= 0])
    assert counts.max() <= 2
    # relevance falls 5, 4, ..., 0 (group A), then 6, ..., 11: the best two of categories 1 and
    # 0, the best two of category 2, then every unknown-category item (never capped)
    assert picked.tolist() == [5, 4, 2, 1, 6, 7, 9, 10, 11]
    with pytest.raises(InputError, match="diversity"):
        serve.mmr(relevance, V, 3, diversity=1.5)


def test_seed_query_normalises_for_cosine_only():
    seeds = np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert np.allclose(serve.seed_query(seeds, "cosine"), [math.sqrt(0.5), math.sqrt(0.5)])
    assert np.allclose(serve.seed_query(seeds, "dot"), [1.0, 0.5])


# --- seed-based evaluation -------------------------------------------------------------------


def test_seeded_protocol_against_a_hand_computed_case():
    """Six unit items at 0, 10, 20, 45, 80 and 90 degrees; seeds are each user's last two train
    items by time; the held-out items are looked for in the continuation (train items out).

    - user 0: train i4 (t=1), i0 (t=5), i1 (t=6) -> seeds i0, i1, query at 5 degrees; candidates
      i2 (15 degrees away), i3 (40), i5 (85) -> list [2, 3, 5]; test {3, 5}.
    - user 1: train i0 (no time: oldest), i4 and i5 (both t=2, by index) -> seeds i4, i5, query
      at 85 degrees; candidates i3 (40), i2 (65), i1 (75) -> [3, 2, 1]; test {1}.
    - user 2: no train items -> popularity: i0, i4 (2 users each), i1, i5 (1), i2, i3 -> its
      list starts [0, 4, 1]; test {4}.
    """
    deg = np.radians([0, 10, 20, 45, 80, 90])
    V = np.c_[np.cos(deg), np.sin(deg)].astype(np.float32)
    pairs = [(0, 4), (0, 0), (0, 1), (1, 0), (1, 5), (1, 4)]
    _, _, train = tables(3, 6, pairs, timestamps=[1, 5, 6, None, 2, 2])
    recs, counts = seeded_lists(
        Embeddings(np.zeros((3, 2), np.float32), V, "cosine"),
        train,
        np.array([0, 1, 2]),
        n_users=3,
        n_items=6,
        seed_items=2,
        k=3,
    )
    lists = dict(recs.group_by("user").agg(pl.col("item").sort_by("rank")).iter_rows())
    assert lists == {0: [2, 3, 5], 1: [3, 2, 1], 2: [0, 4, 1]}
    assert counts == {"users": 3, "by_model": 2, "by_popularity": 1}

    truth = pl.DataFrame(
        {"user": [0, 0, 1, 2], "item": [3, 5, 1, 4]}, schema={"user": pl.Int32, "item": pl.Int32}
    )
    table = seeded_table(recs, truth, [1, 2, 3], n_boot=20)
    from mp2v4rec.evaluation import METRICS_SCHEMA

    assert table.columns == [*METRICS_SCHEMA, "protocol"]
    assert set(table["protocol"]) == {"seeded"} and set(table["split"]) == {"test"}
    got = {(m, k): v for m, k, v in table.select("metric", "k", "value").iter_rows()}
    l2, l3 = 1 / math.log2(2 + 1), 1 / math.log2(3 + 1)  # discounts of ranks 2 and 3
    # user 0: hit at rank 2 (i3) and 3 (i5) of 2 relevant; user 1: rank 3 of 1; user 2: rank 2
    assert got[("recall", 1)] == 0.0
    assert got[("recall", 2)] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert got[("recall", 3)] == pytest.approx(1.0)
    idcg0 = 1 + l2
    assert got[("ndcg", 2)] == pytest.approx((l2 / idcg0 + 0 + l2) / 3)
    assert got[("ndcg", 3)] == pytest.approx(((l2 + l3) / idcg0 + l3 + l2) / 3)
    assert got[("hitrate", 2)] == pytest.approx(2 / 3)


def test_popularity_reference_lists_mask_train_items():
    _, _, train = tables(3, 5, [(0, 1), (1, 1), (1, 2), (2, 4)])
    recs, counts = seeded_lists(
        None, train, np.array([0, 1, 2]), n_users=3, n_items=5, seed_items=5, k=3
    )
    lists = dict(recs.group_by("user").agg(pl.col("item").sort_by("rank")).iter_rows())
    assert lists == {0: [2, 4, 0], 1: [4, 0, 3], 2: [1, 2, 0]}
    assert counts["by_popularity"] == 3


def test_last_items_orders_by_time_then_index():
    _, _, train = tables(2, 9, [(0, 5), (0, 3), (0, 8), (1, 2)], timestamps=[3, 3, None, 1])
    got = last_items(train, np.array([0, 1]), 2)
    assert got.rows() == [(0, 3), (0, 5), (1, 2)]


# --- configuration ---------------------------------------------------------------------------


def config_with(**serve_section):
    config = {
        "datasets": {"d": {"kind": "kuairec"}},
        "methods": {
            "mp2v": {"kind": "mp2v"},
            "w2v": {"kind": "w2v"},
            "knn": {"kind": "userknn"},
            "pop": {"kind": "popularity"},
        },
    }
    if serve_section:
        config["serve"] = serve_section
    return validate_config(config)


def test_serve_methods_default_to_the_configured_embedding_methods():
    config = config_with()
    assert config["serve"]["neighbours"] == 50 and config["serve"]["seed_items"] == 5
    assert serve_methods(config) == ["mp2v", "w2v"]  # the configured kinds served by default
    assert serve_methods(config_with(methods=["pop"])) == ["pop"]


@pytest.mark.parametrize(
    "methods, message",
    [
        (["mp2v", "nope"], "config key serve.methods: 'nope' is not a configured method"),
        (["knn"], "config key serve.methods: 'knn' (kind userknn) has no item vectors"),
    ],
)
def test_serve_methods_must_exist_and_have_embeddings(methods, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_with(methods=methods)
