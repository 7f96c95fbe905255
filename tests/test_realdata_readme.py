"""The README's real-data tables are the report's (benchmarks/results/realdata_tables.md),
verbatim; Holm values at the sign-flip floor print as bounds."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(benchmark_import):
    return benchmark_import("realdata_report")


DATASETS = {"movielens": "MovieLens", "ciaodvd": "CiaoDVD"}


def blocks(text: str) -> tuple[list[str], list[str]]:
    """The markdown tables (consecutive lines starting with '|', whole) and bullet lines."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return tables, [line for line in text.splitlines() if line.startswith("- ")]


def readme_sections() -> dict[str, str]:
    """Dataset -> the text of its subsection of the README's real-data section."""
    text = (ROOT / "README.md").read_text()
    body = text.split("\n## Real data", 1)[1].split("\n## ", 1)[0]
    out = {}
    for part in body.split("\n### ")[1:]:
        for dataset, shown in DATASETS.items():
            if part.startswith(shown):
                out[dataset] = part
    return out


def generated_sections() -> dict[str, str]:
    text = (ROOT / "benchmarks/results/realdata_tables.md").read_text()
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def test_every_real_data_table_in_the_readme_is_the_reports():
    """Each dataset subsection's tables are whole tables of that dataset's generated section
    (a truncated or misplaced table fails), its methods table is there, and its counted
    bullets are the report's."""
    readme, generated = readme_sections(), generated_sections()
    assert "movielens" in readme
    for dataset, text in readme.items():
        tables, bullets = blocks(text)
        made_tables, made_bullets = blocks(generated.get(dataset, ""))
        for table in tables:
            assert table in made_tables, f"{dataset}: README table not in the report's:\n{table}"
        if made_tables:
            assert made_tables[0] in tables, f"{dataset}: the methods table is not in the README"
        for bullet in (b for b in bullets if b.startswith(("- recall:", "- ndcg:"))):
            assert bullet in made_bullets, f"{dataset}: {bullet}"


def test_holm_values_resting_on_the_floor_are_bounds(report):
    floor = 1 / 100_001  # sampled flips (an exact test's floor, 2 / 2^n, is a measurement)
    exact = {"p_value": 2 / 2**10, "p_floor": 2 / 2**10, "family": "b"}
    assert report.with_holm([exact], family="family")[0]["p_holm_bound"] is False
    rows = [
        {"p_value": floor, "p_floor": floor},  # at the floor: 4 x floor, a bound
        {"p_value": 2e-5, "p_floor": floor},  # measured, 3 x 2e-5 = 6e-5 > 4 x floor
        {"p_value": 0.3, "p_floor": floor},
        {"p_value": 0.01, "p_floor": floor},
        {"status": "missing"},
    ]
    out = report.with_holm(rows)
    assert [r["p_holm"] for r in out[:4]] == pytest.approx([4 * floor, 6e-5, 0.3, 0.02])
    assert [r["p_holm_bound"] for r in out] == [True, False, False, False, None]
    tie = report.with_holm([{"p_value": floor, "p_floor": floor}] * 2 + [{"p_value": 1e-5 * 1.5,
                            "p_floor": floor}])  # fmt: skip
    # 1 x 1.5e-5 < 2 x floor: Holm's running maximum lifts it to the floor's bound
    assert [r["p_holm_bound"] for r in tie] == [True, True, True]
    md = importlib.import_module("realdata_markdown")
    assert md.p_text({"p_holm": 234 * floor, "p_holm_bound": True}) == "≤ 0.0024"
    assert md.p_text({"p_holm": 0.0049999, "p_holm_bound": False}) == "0.0050"
    assert md.p_text({"p_holm": 0.104, "p_holm_bound": False}) == "0.10"  # not "0.1"
    assert md.p_text({"p_holm": 0.0496, "p_holm_bound": False}) == "0.0496"  # not "0.050"
    assert md.p_text({"p_holm": 1.0, "p_holm_bound": False}) == "1"
    assert [md.diff_text(x) for x in (-0.0002, 0.0114, -0.0138)] == ["0.000", "+0.011", "-0.014"]
    assert np.isclose(md.ceil2(0.00234), 0.0024) and np.isclose(md.ceil2(0.0024), 0.0024)


def test_social_table_says_how_much_of_its_holm_family_is_measured(benchmark_import):
    """A partial ablation's table names the tests its Holm values were adjusted over and the
    family's full size; a missing cell is a note, not a silent gap."""
    md = benchmark_import("realdata_markdown")
    head = {"family": "main effects", "method": "mp2v", "contrast": "metapath: UUV - UV"}
    rows = [
        head | {"split": 0, "cohort": "all", "status": "ok", "n_users": 400, "diff": 0.01,
                "p_holm": 0.02, "p_holm_bound": False},
        head | {"split": 0, "cohort": "with a trust link", "status": "ok", "n_users": 90,
                "diff": -0.002, "p_holm": 0.5, "p_holm_bound": False},
        head | {"split": 0, "cohort": "without", "status": "ok", "n_users": 0, "diff": None,
                "p_holm": None, "p_holm_bound": None},
        head | {"split": 1, "cohort": "all", "status": "missing: 8 cells"},
    ]  # fmt: skip
    text = "\n".join(md.social_table(rows))
    assert "| MP2V | metapath: UUV - UV | all | +0.010 (0.020) | – | 400 / – |" in text
    assert "Holm over the 2 main-effect tests measured, of 4 when every run is in" in text
    assert "MP2V metapath: UUV - UV on the fresh split 1: missing: 8 cells." in text
    whole = "\n".join(md.social_table(rows[:3]))  # every run in: no "partial" caveat
    assert "Holm over all 2 main-effect tests (a row with no user" in whole
    assert "partial" not in whole and "missing" not in whole
