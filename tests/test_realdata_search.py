"""benchmarks/realdata.py's search bookkeeping: equal budgets per trainer, selection per arm."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def realdata():
    spec = importlib.util.spec_from_file_location("realdata", ROOT / "benchmarks/realdata.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_trainer_gets_half_of_round_one(realdata):
    config = realdata.study_config()
    space = realdata.SPACES["mp2v"]
    assert realdata.arm_of(config, "mp2v", {}) == "gensim"  # config.yaml's mp2v
    drawn = {}
    for arm, sub in realdata.arms(space).items():
        share = 32 // 2 - (arm == "gensim")  # config.yaml's settings count for gensim's arm
        drawn[arm] = realdata.configurations(sub, share, seed=0)
        assert {c["trainer"] for c in drawn[arm]} == {arm}
        assert len({json.dumps(c, sort_keys=True) for c in drawn[arm]}) == share
    assert len(drawn["gensim"]) + 1 == len(drawn["shared"]) == 16
    assert realdata.arms(realdata.SPACES["ials"]) == {None: realdata.SPACES["ials"]}


def test_selection_keeps_the_winner_and_labels_the_other_trainer(realdata):
    config = realdata.study_config()
    rows = [
        ("mp2v", {}, 0.10),  # config.yaml's settings: the gensim arm
        ("mp2v", {"trainer": "gensim", "window": 8}, 0.24),
        ("mp2v", {"trainer": "shared", "window": 2}, 0.21),
        ("mp2v", {"trainer": "shared", "window": 1}, float("nan")),  # a failed trial
        ("ials", {"factors": 32}, 0.26),
        ("ials", {"factors": 64}, 0.25),
    ]
    tried = pl.DataFrame(
        {
            "method": [m for m, _, _ in rows],
            "overrides": [json.dumps(o, sort_keys=True) for _, o, _ in rows],
            "valid_recall": [v for _, _, v in rows],
        }
    )
    winners = realdata.selected(config, tried)
    assert winners["mp2v"] == ("mp2v", {"trainer": "gensim", "window": 8})
    assert winners["mp2v.shared"] == ("mp2v", {"trainer": "shared", "window": 2})
    assert winners["ials"] == ("ials", {"factors": 32})
    assert "ials.None" not in winners and "mp2v.gensim" not in winners
    assert winners["popularity"] == ("popularity", {})


def test_skips_cleanly_without_the_archive(realdata, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["realdata.py", "--archive", str(tmp_path / "none.zip")])
    assert realdata.main() == 0
    assert capsys.readouterr().out.startswith("skipped:")
