import numpy as np
import polars as pl
import pytest

from mp2v4rec.graph import build_graph, load_graph, save_graph, validate_metapath
from mp2v4rec.io import InputError

UV = ["user_item", "item_user"]
UUV = ["user_user", "user_item", "item_user"]


def interactions(rows):
    users, items, weights = zip(*rows, strict=True) if rows else ((), (), ())
    return pl.DataFrame(
        {"user": users, "item": items, "weight": weights, "timestamp": [0] * len(rows)},
        schema={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32, "timestamp": pl.Int64},
    )


def friends(pairs):
    users, others = zip(*pairs, strict=True) if pairs else ((), ())
    return pl.DataFrame(
        {"user": users, "friend": others}, schema={"user": pl.Int32, "friend": pl.Int32}
    )


def test_csr_exact_on_hand_graph():
    # (0,1) appears twice: weights summed; user 3 has no items
    train = interactions([(0, 1, 1.0), (0, 0, 2.0), (1, 2, 0.5), (0, 1, 3.0), (2, 0, 1.5)])
    g = build_graph(train, friends([]), n_users=4, n_items=3)
    np.testing.assert_array_equal(g["user_item_indptr"], [0, 2, 3, 4, 4])
    np.testing.assert_array_equal(g["user_item_indices"], [0, 1, 2, 0])
    np.testing.assert_array_equal(g["user_item_weights"], [2.0, 4.0, 0.5, 1.5])
    np.testing.assert_array_equal(g["item_user_indptr"], [0, 2, 3, 4])
    np.testing.assert_array_equal(g["item_user_indices"], [0, 2, 0, 1])
    np.testing.assert_array_equal(g["item_user_weights"], [2.0, 1.5, 4.0, 0.5])
    np.testing.assert_array_equal(g["user_user_indptr"], [0, 0, 0, 0, 0])
    assert g["user_user_indices"].size == 0
    for rel in ("user_item", "item_user", "user_user"):
        assert g[f"{rel}_indptr"].dtype == np.int64
        assert g[f"{rel}_indices"].dtype == np.int32
        assert g[f"{rel}_weights"].dtype == np.float32
    assert g["n_users"].shape == () and g["n_users"].dtype == np.int64 and g["n_users"] == 4
    assert g["n_items"].shape == () and g["n_items"] == 3


def edge_weights(g, rel):
    indptr, indices, weights = (g[f"{rel}_{k}"] for k in ("indptr", "indices", "weights"))
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    return {(int(r), int(c)): float(w) for r, c, w in zip(rows, indices, weights, strict=True)}


def test_transpose_keeps_each_edge_weight():
    rng = np.random.default_rng(3)
    n = 3000
    train = interactions(
        list(zip(rng.integers(0, 50, n), rng.integers(0, 80, n), rng.random(n) + 0.1, strict=True))
    )
    g = build_graph(train, None, n_users=50, n_items=80)
    ui, iu = edge_weights(g, "user_item"), edge_weights(g, "item_user")
    assert len(ui) == len(iu) == g["user_item_indices"].size
    for (u, i), w in ui.items():
        assert iu[(i, u)] == w
    # duplicates summed: compare with a group-by of the input
    expect = train.group_by("user", "item").agg(pl.col("weight").cast(pl.Float64).sum())
    for u, i, w in expect.iter_rows():
        assert ui[(u, i)] == pytest.approx(w, rel=1e-6)
    # rows sorted by neighbour
    for rel in ("user_item", "item_user"):
        indptr, indices = g[f"{rel}_indptr"], g[f"{rel}_indices"]
        for r in range(indptr.size - 1):
            assert np.all(np.diff(indices[indptr[r] : indptr[r + 1]]) > 0)


def test_social_symmetrised_without_self_loops():
    social = friends([(0, 1), (1, 0), (2, 2), (3, 1)])
    sym = build_graph(interactions([]), social, n_users=4, n_items=1)
    assert edge_weights(sym, "user_user") == {(0, 1): 1.0, (1, 0): 1.0, (1, 3): 1.0, (3, 1): 1.0}
    directed = build_graph(interactions([]), social, n_users=4, n_items=1, symmetric_social=False)
    assert edge_weights(directed, "user_user") == {(0, 1): 1.0, (1, 0): 1.0, (3, 1): 1.0}


@pytest.mark.parametrize(
    ("train", "social", "words"),
    [
        (interactions([(0, 0, 1.0), (1, 0, 1.0), (0, 5, 1.0)]), None, ["train", "'item'", "row 2"]),
        (interactions([(0, 0, 1.0), (-1, 0, 1.0)]), None, ["train", "'user'", "row 1"]),
        (interactions([(0, 0, -1.0)]), None, ["train", "'weight'", "row 0"]),
        (interactions([(0, 0, float("nan"))]), None, ["train", "'weight'", "row 0"]),
        (interactions([]), friends([(0, 1), (1, 9)]), ["social", "'friend'", "row 1"]),
    ],
)
def test_bad_input_names_table_column_row(train, social, words):
    with pytest.raises(InputError) as err:
        build_graph(train, social, n_users=3, n_items=2)
    for word in words:
        assert word in str(err.value)


def test_null_is_rejected():
    train = interactions([(0, 0, 1.0), (1, 1, 1.0)]).with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("item")).alias("item")
    )
    with pytest.raises(InputError, match=r"train.*'item'.*row 1.*null"):
        build_graph(train, None, n_users=2, n_items=2)


def test_save_load_roundtrip(tmp_path):
    g = build_graph(interactions([(0, 1, 2.0), (1, 0, 1.0)]), friends([(0, 1)]), 2, 2)
    save_graph(g, tmp_path / "g.npz")
    back = load_graph(tmp_path / "g.npz")
    assert back.keys() == g.keys()
    for key in g:
        np.testing.assert_array_equal(back[key], g[key])
        assert back[key].dtype == g[key].dtype
    np.savez(tmp_path / "bad.npz", n_users=np.array(2), n_items=np.array(2))
    with pytest.raises(InputError, match="bad.npz"):
        load_graph(tmp_path / "bad.npz")


def test_validate_metapath():
    validate_metapath(UV)
    validate_metapath(UUV)
    validate_metapath(["user_user", "user_item", "item_user", "user_user"])
    with pytest.raises(InputError, match=r"metapaths\.mine.*'user_movie'.*user_item, item_user"):
        validate_metapath(["user_movie", "item_user"], name="mine")
    with pytest.raises(InputError, match=r"metapaths\.UU.*'user_item'.*'user_item'.*positions 0"):
        validate_metapath(["user_item", "user_item"], name="UU")
    with pytest.raises(InputError, match="last relation"):
        validate_metapath(["user_item", "item_user", "user_item"])  # does not close the cycle
    with pytest.raises(InputError, match="start at a user"):
        validate_metapath(["item_user", "user_item"])
    with pytest.raises(InputError, match="non-empty"):
        validate_metapath([])
