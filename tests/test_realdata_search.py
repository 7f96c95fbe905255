"""benchmarks/realdata.py: distinct budgets, no repeated trial, frozen selections, and the whole
pre-registered order on a small generated archive (the real archives are not needed)."""

from __future__ import annotations

import importlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def realdata(benchmark_import):
    return benchmark_import("realdata")


def fake_recall(data, config, method, overrides, threads):
    """A deterministic stand-in for fitting: a number from the configuration's settings."""
    key = realdata_key(config, method, overrides)
    return (zlib.crc32(key.encode()) % 1000) / 1000, 0.0


def realdata_key(config, method, overrides):
    return sys.modules["realdata"].key_of(config, method, overrides)


@pytest.mark.parametrize("method, budget", [("ials", 10), ("mp2v", 8), ("userknn", 24)])
def test_every_trial_is_a_new_distinct_configuration(
    realdata, tmp_path, monkeypatch, method, budget
):
    """Round 2 never repeats a configuration (the old bookkeeping compared JSON of JSON and
    re-ran winners); each method ends with exactly its budget of distinct configurations (or
    its whole space, when smaller), each trainer arm with half."""
    monkeypatch.setattr(realdata, "valid_recall", fake_recall)
    config = realdata.study_config()
    trials = realdata.Trials(tmp_path / "t.jsonl", config)
    realdata.search_method(trials, None, method, budget, social=False, threads=1)
    keys = [r["key"] for r in trials.rows]
    assert len(keys) == len(set(keys))
    space = realdata.configurations(realdata.SPACES[method], 1000, seed=0) + [{}]
    if len(space) <= 1000:  # the whole space, config.yaml's settings and their neighbours
        whole = {realdata.key_of(config, method, o) for o in space}
        assert min(budget, len(whole)) <= len(keys) <= budget
    else:
        assert len(keys) == budget
    assert {r["round"] for r in trials.rows} == {1, 2}
    if method == "mp2v":
        arms = [r["arm"] for r in trials.rows]
        assert arms.count("gensim") == arms.count("shared") == budget // 2
    # resuming runs nothing new
    again = realdata.Trials(tmp_path / "t.jsonl", config)
    realdata.search_method(again, None, method, budget, social=False, threads=1)
    assert len(again.rows) == len(keys)


def test_selection_keeps_the_winner_and_labels_the_other_trainer(realdata, tmp_path):
    config = realdata.study_config()
    trials = realdata.Trials(tmp_path / "t.jsonl", config)
    for method, arm, overrides, recall in [
        ("mp2v", "gensim", {}, 0.10),
        ("mp2v", "gensim", {"window": 8}, 0.24),
        ("mp2v", "shared", {"trainer": "shared", "window": 2}, 0.21),
        ("mp2v", "shared", {"trainer": "shared", "window": 1}, float("nan")),  # failed
        ("ials", None, {"factors": 32}, 0.26),
        ("ials", None, {"factors": 64}, 0.25),
    ]:
        key = realdata.key_of(config, method, overrides)
        trials.add({"method": method, "arm": arm, "round": 1, "overrides": overrides,
                    "key": key, "valid_recall": recall, "seconds": 0.0})  # fmt: skip
    chosen = realdata.select(trials)
    assert chosen["mp2v"]["overrides"] == {"window": 8} and chosen["mp2v"]["distinct"] == 4
    assert chosen["mp2v.shared"]["overrides"] == {"trainer": "shared", "window": 2}
    assert chosen["mp2v.shared"]["distinct"] == 2
    assert chosen["ials"]["overrides"] == {"factors": 32}
    assert "ials.None" not in chosen and "mp2v.gensim" not in chosen
    assert chosen["popularity"]["overrides"] == {}


@pytest.mark.slow
def test_the_pre_registered_order_end_to_end(realdata, tmp_path, monkeypatch, capsys):
    """search -> select -> test -> confirm -> social -> report on a generated archive (with
    friendships): test refuses to run before the selections are frozen, and again once the
    trials changed."""
    from mp2v4rec.datasets.synthetic import write_synthetic_kuairec

    archive = tmp_path / "synthetic.zip"
    write_synthetic_kuairec(archive, n_users=300, n_items=200, small_users=60, small_items=100)
    monkeypatch.setattr(realdata, "ARCHIVES", {"movielens": archive})
    monkeypatch.setattr(realdata, "WORK", tmp_path / "work")
    monkeypatch.setattr(realdata, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(realdata, "OUT", tmp_path)
    report = importlib.import_module("realdata_report")
    monkeypatch.setattr(report, "ARCHIVES", {"movielens": archive})
    monkeypatch.setattr(report, "WORK", tmp_path / "work")

    def run(*args):
        argv = ["realdata.py", "--budget", "4", "--seeds", "0", "1", "--resplits", "1",
                "--methods", "itemknn", "ease", "mp2v", "--threads", "1", *args]  # fmt: skip
        monkeypatch.setattr(sys, "argv", argv)
        return realdata.main()

    with pytest.raises(SystemExit, match="run the select stage first"):
        run("--stages", "search", "test")
    assert run("--stages", "select", "test", "confirm", "social", "report") == 0
    frozen = json.loads((tmp_path / "realdata_selected.json").read_text())["movielens"]
    assert {frozen["chosen"][m]["distinct"] for m in ("itemknn", "ease", "mp2v")} == {4}
    table = pl.read_csv(tmp_path / "realdata.tsv", separator="\t")
    arm = "mp2v.gensim" if frozen["chosen"]["mp2v"]["arm"] == "shared" else "mp2v.shared"
    assert set(table["method"]) == {"itemknn", "ease", "mp2v", arm, "popularity", "random"}
    social = pl.read_csv(tmp_path / "realdata_social.tsv", separator="\t")
    # 3 factors x (main effect + 4 within-cell contrasts) x 3 cohorts x 2 splits, one method
    assert social.height == 3 * 5 * 3 * 2 and set(social["method"]) == {"mp2v"}
    counts = social.group_by("split", "contrast", "held").agg(pl.col("n_users"))
    assert all(n[0] == n[1] + n[2] for n in counts["n_users"])  # cohorts split the users
    assert (social["p_holm"] >= social["p_value"]).all()
    assert table["split1_n_users"].null_count() == 0  # every choice scored on the fresh split
    assert (table["split0_recall_low"] <= table["split0_recall@50"]).all()
    tests = pl.read_csv(tmp_path / "realdata_tests.tsv", separator="\t")
    walk = table["walk"][0]  # each method's paired difference from the chosen walk method
    for row in table.filter(pl.col("method").is_in(["itemknn", "ease"])).iter_rows(named=True):
        t = tests.filter(metric="recall", split=1, a=walk, b=row["method"]).row(0, named=True)
        assert row["split1_recall_minus_walk"] == pytest.approx(-t["diff"], abs=1e-6)
        assert row["split1_recall_minus_walk_p_holm"] == pytest.approx(t["p_holm"], abs=1e-6)
    assert table.filter(method=walk)["split0_recall_minus_walk"].to_list() == [None]
    assert set(tests["split"]) == {0, 1} and set(tests["metric"]) == {"recall", "ndcg"}
    assert (tests["p_value"] >= tests["p_floor"]).all()
    assert (tests["p_holm"] >= tests["p_value"]).all()
    pairs = tests.filter(metric="recall", split=0).select("a", "b").rows()
    assert len({frozenset(p) for p in pairs}) == len(pairs)  # no comparison twice
    search = pl.read_csv(tmp_path / "realdata_search.tsv", separator="\t")
    assert search.height == 12 and not np.isnan(search["valid_recall"].to_numpy()).any()
    # a search changed after the selections were frozen: test refuses until select runs again
    with (tmp_path / "work/trials-movielens.jsonl").open("a") as f:
        f.write(json.dumps(json.loads(f"{search.row(0, named=True)['overrides']}")) + "\n")
    with pytest.raises(SystemExit, match="run the select stage first"):
        run("--stages", "test")


def test_social_contrasts_pair_cells_that_differ_in_one_factor(realdata):
    """Per method and factor: one main effect (the four cells of each level) and four
    within-cell contrasts, each pairing two cells that differ in that factor only."""
    report = importlib.import_module("realdata_report")
    base = {"method": "mp2v", "arm": "gensim", "overrides": {"dim": 32}}
    chosen = {"mp2v": base, "rmp2v": base | {"method": "rmp2v"}}
    cells = dict(realdata.social_cells(chosen))
    assert len(cells) == 16
    contrasts = report.social_contrasts(cells)
    assert len(contrasts) == 2 * 3 * (1 + 4)
    for method, factor, held, high, low in contrasts:
        low_value, high_value = realdata.SOCIAL_GRID[factor]
        assert all(cells[c]["overrides"][factor] == high_value for c in high)
        assert all(cells[c]["overrides"][factor] == low_value for c in low)
        assert all(c.startswith(method + ".") for c in high + low)
        if held == "averaged over the others":
            assert len(high) == len(low) == 4 and not set(high) & set(low)
        else:
            assert len(high) == len(low) == 1
            a, b = cells[high[0]]["overrides"], cells[low[0]]["overrides"]
            assert {k for k in a if a[k] != b[k]} == {factor}
            assert held == ", ".join(f"{k} {a[k]}" for k in realdata.SOCIAL_GRID if k != factor)


def test_every_social_cell_validates_at_a_tuned_dimension(realdata):
    """An init: w2v cell starts from config.yaml's W2V at the cell's own dimension."""
    config = realdata.study_config()
    base = {"method": "mp2v", "arm": "gensim", "overrides": {"dim": 32, "window": 3}}
    other = {"method": "rmp2v", "overrides": {"dim": 32, "window": 5}}
    cells = realdata.social_cells({"mp2v": base, "rmp2v": base | other})
    ids = {realdata.entry_id(config, entry) for _, entry in cells}
    assert len(ids) == 16
    start = realdata.settings_for(config, "w2v", {"dim": 32})
    assert start["dim"] == 32 and start["window"] == config["methods"]["w2v"]["window"]
