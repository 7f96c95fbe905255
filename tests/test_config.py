"""Config validation (defaults, unknown keys, references) and variant / walk-set naming."""

from pathlib import Path

import pytest
import yaml

from mp2v4rec.config import (
    format_variant,
    load_config,
    method_settings,
    parse_variant,
    validate_config,
    walk_settings,
    walkset_name,
)
from mp2v4rec.io import InputError

ROOT = Path(__file__).resolve().parents[1]


def minimal():
    return {
        "datasets": {"d": {"kind": "kuairec"}},
        "methods": {"mp2v": {"kind": "mp2v"}, "w2v": {"kind": "w2v"}},
    }


@pytest.mark.parametrize("name", ["config.yaml", "configs/demo.yaml", "configs/test.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(ROOT / name)
    assert config["recommend"]["k"] >= max(config["evaluate"]["ks"])


def test_defaults_are_filled_in_nested_objects():
    config = validate_config(minimal())
    assert config["datasets"]["d"]["source"] == "download"
    assert config["datasets"]["d"]["download"]["md5"] == "261550d472c48eff4990fb13c0e5bcf7"
    assert config["datasets"]["d"]["preprocess"]["positive_threshold"] == 2.0
    assert config["methods"]["mp2v"]["walk_length"] == 15
    assert config["methods"]["w2v"]["window"] == 15
    assert config["metapaths"]["UUV"] == ["user_user", "user_item", "item_user"]
    assert config["recommend"] == {
        "k": 100,
        "mask_seen": True,
        "chunk_size": 2048,
        "user_blocks": 1,
    }


def test_shipped_config_equals_schema_defaults_for_kuairec():
    """config.yaml documents the defaults: its dataset block is what the schema fills in."""
    shipped = load_config(ROOT / "config.yaml")["datasets"]["kuairec"]
    filled = validate_config(minimal())["datasets"]["d"]
    assert {k: v for k, v in shipped.items() if k != "synthetic"} == {
        k: v for k, v in filled.items() if k != "synthetic"
    }


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["methods"]["mp2v"].update(dimm=3), "methods.mp2v: unknown key(s) ['dimm']"),
        (lambda c: c.update(recomend={}), "unknown key(s) ['recomend']"),
        (lambda c: c["methods"]["mp2v"].update(dim="big"), "methods.mp2v.dim"),
        (lambda c: c["methods"]["mp2v"].update(sampling="greedy"), "'greedy' is not one of"),
        (lambda c: c["datasets"]["d"].update(kind="movielens"), "datasets.d.kind"),
        (
            lambda c: c["methods"]["mp2v"].update(metapath="UIU"),
            "methods.mp2v.metapath: metapath 'UIU'",
        ),
        (lambda c: c.update(ablation={"grid": {"seed": []}}), "ablation.grid.seed"),
        (lambda c: c.update(ablation={"grid": {"colour": [1]}}), "ablation.grid"),
        (lambda c: c.update(ablation={"grid": {"dim": ["big"]}}), "config key ablation"),
        (lambda c: c.update(ablation={"grid": {"metapath": ["X"]}}), "metapath 'X' is not"),
        (
            lambda c: c.update(search={"method": "w2v", "grid": {"dim": [4]}}),
            "not a method on metapath walks",
        ),
        (lambda c: c["methods"]["mp2v"].update(init="w2v", dim=8, trainer="gensim"), "equal dims"),
        (
            lambda c: c["methods"]["mp2v"].update(init="w2v", init_method="mp2v", trainer="gensim"),
            "init_method",
        ),
        (lambda c: c.update(metapaths={"X": ["user_item", "user_item"]}), "metapaths.X"),
        (lambda c: c.update(metapaths={"X": ["user_item", "friend"]}), "metapaths.X.1"),
        (lambda c: c.update(evaluate={"ks": [10, 200]}), "evaluate.ks"),
        (lambda c: c.update(evaluate={"ks": []}), "evaluate.ks"),
        (lambda c: c.update(plots={"pca_methods": ["nope"]}), "plots.pca_methods"),
    ],
)
def test_bad_config_names_the_key(edit, expected):
    config = minimal()
    edit(config)
    with pytest.raises(InputError) as err:
        validate_config(config)
    assert expected in str(err.value)


def test_variant_round_trip_and_overrides():
    config = validate_config(minimal())
    assert parse_variant("default") == {}
    pairs = {"metapath": "UUV", "sampling": "weighted", "seed": "3", "dim": "8"}
    assert parse_variant(format_variant(pairs)) == pairs
    s = method_settings(config, "mp2v", "metapath~UUV_sampling~weighted_seed~3_dim~8")
    assert (s["metapath"], s["sampling"], s["seed"], s["dim"]) == ("UUV", "weighted", 3, 8)
    assert isinstance(s["seed"], int)
    with pytest.raises(InputError, match="not key~value"):
        parse_variant("colour~red")
    with pytest.raises(InputError, match="has no setting"):
        method_settings(config, "w2v", "metapath~UV")


def test_grid_variants_expand_in_config_order():
    from mp2v4rec.config import grid_variants

    cells = grid_variants({"metapath": ["UV", "UUV"], "seed": [0, 1]})
    assert cells == [
        "metapath~UV_seed~0",
        "metapath~UV_seed~1",
        "metapath~UUV_seed~0",
        "metapath~UUV_seed~1",
    ]
    assert grid_variants({}) == []


def test_walkset_ignores_training_keys():
    config = validate_config(minimal())
    a = walkset_name(method_settings(config, "mp2v", "dim~8"))
    b = walkset_name(method_settings(config, "mp2v", "window~2_epochs~9_init~w2v"))
    c = walkset_name(method_settings(config, "mp2v", "sampling~weighted"))
    assert a == b != c
    walk = walk_settings(config, a)
    assert walk["metapath"] == ["user_item", "item_user"]
    assert walk["walk_length"] == 15 and walk["seed"] == 0


def test_packaging_lists_agree():
    """environment.yaml carries the same packages and lower bounds as pyproject.toml."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((ROOT / "environment.yaml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith("python")]
    assert sorted(wanted) == sorted(conda)
