"""The registry of method kinds: every entry is complete, and a new kind added through the
registry alone runs through config validation, fit, recommend and evaluate (the job bodies)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from mp2v4rec import jobs, kinds
from mp2v4rec.baselines.userknn import UserNeighbours
from mp2v4rec.config import SCHEMA_PATH, load_schema, validate_config
from mp2v4rec.datasets.common import INTERACTION_SCHEMA, ITEM_SCHEMA, USER_SCHEMA
from mp2v4rec.io import InputError
from mp2v4rec.models import MODEL_FILES, Embeddings, ItemItem


def test_every_kind_has_settings_a_fit_function_and_a_known_model():
    schema = load_schema(SCHEMA_PATH)
    types = {"embeddings": Embeddings, "item_item": ItemItem, "none": UserNeighbours}
    for name, kind in kinds.KINDS.items():
        assert schema["definitions"][name]["properties"]["kind"] == {"const": name}
        assert callable(kind.fit_function()), name
        assert kind.model in types
    assert kinds.methods_where(
        {"a": {"kind": "ease"}, "b": {"kind": "mp2v"}, "c": {"kind": "itemknn"}},
        model="item_item",
    ) == ["a", "c"]


def test_an_unknown_kind_names_the_key():
    config = {"datasets": {"d": {"kind": "kuairec"}}, "methods": {"m": {"kind": "slim"}}}
    with pytest.raises(InputError, match="config key methods.m.kind: 'slim' is not one of"):
        validate_config(config)


# ---- a toy kind: item co-occurrence counts (W = X^T X, zero diagonal) -------------------------


def fit_cooccurrence(data, settings):
    from mp2v4rec.recommend import seen_matrix

    X = sp.csr_matrix(seen_matrix(data.train, data.n_users, data.n_items), dtype=np.float32)
    W = (X.T @ X).tolil()
    W.setdiag(0)
    return ItemItem(sp.csr_matrix(W) * float(settings["scale"]))


TOY = kinds.Kind(
    "cooc",
    f"{__name__}:fit_cooccurrence",
    "item_item",
    "item co-occurrence counts (a test kind)",
    schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {"kind": {"const": "cooc"}, "scale": {"type": "number", "default": 1.0}},
    },
)


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.setitem(kinds.KINDS, TOY.name, TOY)
    return TOY


def write(path, rows, schema):
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(path)
    return path


def test_a_toy_kind_added_through_the_registry_runs_train_recommend_evaluate(toy_kind, tmp_path):
    """Users 0 {i0, i1} and 1 {i0, i2} in train; co-occurrence W: i0-i1 1, i0-i2 1, i1-i2 0.
    User 2 holds i1 (scores i0 1, i2 0) and its test item is i0: a hit at rank 1. User 3 holds
    i2 (i0 1, i1 0) with test item i1: a hit at rank 2. Recall@1 = 1/2, Recall@2 = 1."""
    config = validate_config(
        {
            "datasets": {"d": {"kind": "kuairec"}},
            "methods": {"toy": {"kind": "cooc"}},
            "evaluate": {"reference_method": None},
            "plots": {"pca_methods": []},
        }
    )
    settings = config["methods"]["toy"]
    assert settings == {"kind": "cooc", "scale": 1.0}  # the kind's own defaults filled in
    inter = dict(INTERACTION_SCHEMA)
    train = write(
        tmp_path / "train.parquet",
        [
            (0, 0, 1.0, 0),
            (0, 1, 1.0, 1),
            (1, 0, 1.0, 2),
            (1, 2, 1.0, 3),
            (2, 1, 1.0, 4),
            (3, 2, 1.0, 5),
        ],
        inter,
    )
    valid = write(tmp_path / "valid.parquet", [], inter)
    test = write(tmp_path / "test.parquet", [(2, 0, 1.0, 9), (3, 1, 1.0, 9)], inter)
    users = write(tmp_path / "users.parquet", [(u, 100 + u, u >= 2) for u in range(4)], USER_SCHEMA)
    items = write(tmp_path / "items.parquet", [(i, 500 + i, -1, []) for i in range(3)], ITEM_SCHEMA)
    evaluated = write(tmp_path / "evaluated.parquet", [(2,), (3,)], {"user": pl.Int32})
    model = tmp_path / MODEL_FILES[toy_kind.model]
    jobs.train_job(
        settings=settings,
        train=train,
        valid=valid,
        user_table=users,
        item_table=items,
        output=model,
        validation={"keep_best_epoch": True, "k": 2},
        threads=1,
    )
    recs = tmp_path / "recs.parquet"
    held_out = {"valid": valid, "test": test}
    jobs.recommend_job(
        settings=settings,
        model=model,
        train=train,
        user_table=users,
        item_table=items,
        evaluated=evaluated,
        held_out=held_out,
        output=recs,
        k=2,
        mask_seen=True,
        chunk_size=8,
        block=0,
        n_blocks=1,
        splits=["test"],
    )
    lists = pl.read_parquet(recs).sort("user", "rank")
    assert lists.filter(user=2)["item"].to_list() == [0, 2]
    assert lists.filter(user=3)["item"].to_list() == [0, 1]
    table = jobs.evaluate_job(
        recs=recs,
        evaluated=evaluated,
        held_out=held_out,
        train=train,
        item_table=items,
        metrics=tmp_path / "m.tsv",
        per_user=tmp_path / "pu.parquet",
        ks=[1, 2],
        splits=["test"],
        per_user_ks=[2],
        cold="exclude",
        bootstrap=10,
        seed=0,
    )
    got = table.filter(cohort="all", metric="recall").sort("k")["value"].to_list()
    assert got == pytest.approx([0.5, 1.0])
