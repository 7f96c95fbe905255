"""The ``mp2v4rec`` command, run as a user would (a subprocess) on a small results folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mp2v4rec import serve

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS, N_USERS = 40, 8


def run_cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "mp2v4rec.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """results/tiny with data/ and two served methods: cos (exact) and ann (an IVF index)."""
    base = tmp_path_factory.mktemp("cli") / "results" / "tiny"
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(4, 6))
    labels = np.arange(N_ITEMS) % 4
    V = (centres[labels] + 0.2 * rng.normal(size=(N_ITEMS, 6))).astype(np.float32)
    V[39] = 0  # never trained
    U = rng.normal(size=(N_USERS, 6)).astype(np.float32)
    U[6] = 0  # zero vector: popularity fallback
    categories = labels.astype(np.int32)
    categories[30:33] = -1  # unknown
    items = pl.DataFrame(
        {
            "item": np.arange(N_ITEMS),
            "raw_id": 700 + 3 * np.arange(N_ITEMS),
            "category": categories,
            "categories": [[int(c)] if c >= 0 else [] for c in categories],
        },
        schema={
            "item": pl.Int32,
            "raw_id": pl.Int64,
            "category": pl.Int32,
            "categories": pl.List(pl.Int32),
        },
    )
    users = pl.DataFrame(
        {"user": np.arange(N_USERS), "raw_id": 100 + np.arange(N_USERS), "evaluated": True},
        schema={"user": pl.Int32, "raw_id": pl.Int64, "evaluated": pl.Boolean},
    )
    pairs = [(u, (5 * u + j) % N_ITEMS) for u in range(7) for j in range(3)]  # user 7: none
    train = pl.DataFrame(
        {"user": [p[0] for p in pairs], "item": [p[1] for p in pairs]},
        schema={"user": pl.Int32, "item": pl.Int32},
    ).with_columns(weight=pl.lit(1.0, pl.Float32), timestamp=pl.lit(0, pl.Int64))
    (base / "data").mkdir(parents=True)
    items.write_parquet(base / "data/items.parquet")
    users.write_parquet(base / "data/users.parquet")
    common = dict(user_vectors=U, item_vectors=V, users=users, items=items, train=train, k=10)
    serve.build_serve(base / "serve/cos", method="cos", score="cosine", neighbours=10, **common)
    serve.build_serve(
        base / "serve/ann",
        method="ann",
        score="cosine",
        neighbours=10,
        exact_max_items=5,
        ann={"queries": 10},
        **common,
    )
    return base, V


def test_similar_prints_a_table(results):
    base, _ = results
    proc = run_cli("similar", base, "--method", "cos", "--item", 703, "-n", 4)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "items similar to 703 (categories 1) by cos (cosine)"
    assert lines[1].split() == ["rank", "raw_id", "score", "categories"]
    assert len(lines) == 2 + 4
    stored = pl.read_parquet(base / "serve/cos/item_neighbours.parquet").filter(
        (pl.col("raw_id") == 703) & (pl.col("rank") <= 4)
    )
    assert [int(line.split()[1]) for line in lines[2:]] == stored["neighbour_raw_id"].to_list()
    assert all(line.split()[3] == "1" for line in lines[2:])  # same cluster, category 1


def test_similar_json(results):
    base, _ = results
    proc = run_cli("similar", base, "--method", "cos", "--item", 703, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["method"] == "cos" and out["score"] == "cosine"
    assert out["query"] == {"item": 703, "index": 1}
    assert [r["rank"] for r in out["results"]] == list(range(1, 11))
    assert all(r["raw_id"] == 700 + 3 * r["index"] for r in out["results"])
    assert 703 not in [r["raw_id"] for r in out["results"]]
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_lists_and_flags_the_fallback(results):
    base, _ = results
    proc = run_cli("recommend", base, "--method", "cos", "--user", 101, "-n", 5, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["query"]["fallback"] is False and len(out["results"]) == 5
    assert not {r["index"] for r in out["results"]} & {5, 6, 7}  # user 1's train items
    proc = run_cli("recommend", base, "--method", "cos", "--user", 106)
    assert proc.returncode == 0, proc.stderr
    assert "popularity fallback" in proc.stdout.splitlines()[0]
    assert proc.stdout.splitlines()[2].endswith("(popularity)")


def test_playlist_excludes_seeds_and_honours_the_cap(results):
    base, V = results
    args = ("playlist", base, "--method", "cos", "--seed-items", "700,712", "-n", 12, "--json")
    plain = json.loads(run_cli(*args).stdout)["results"]
    assert len(plain) == 12
    assert not {r["raw_id"] for r in plain} & {700, 712}
    assert 39 not in {r["index"] for r in plain}  # no vector, never a candidate
    capped = json.loads(run_cli(*args, "--max-per-category", 2).stdout)["results"]
    counts = {}
    for r in capped:
        for c in r["categories"][:1]:
            counts[c] = counts.get(c, 0) + 1
    assert max(counts.values()) <= 2
    assert len(capped) == 2 * 4 + 3  # four categories of two, plus the three unknown
    diverse = json.loads(run_cli(*args, "--diversity", 0.7).stdout)["results"]
    space = serve.normalise(V)

    def pairwise(rows):
        return serve.mean_pairwise_similarity(space[[r["index"] for r in rows]])

    assert pairwise(diverse) < pairwise(plain)


def test_playlist_through_the_ann_index(results):
    base, _ = results
    proc = run_cli("playlist", base, "--method", "ann", "--seed-items", "700", "-n", 5)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 + 5
    exact = run_cli("playlist", base, "--method", "cos", "--seed-items", "700", "-n", 5)
    assert proc.stdout.splitlines()[2:] == exact.stdout.splitlines()[2:]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ("similar", "{base}", "--method", "cos", "--item", "99"),
            2,
            "item 99 is not in the catalogue of {base} (40 items;",
        ),
        (
            ("similar", "{base}", "--method", "nope", "--item", "703"),
            2,
            "method 'nope' is not served in {base}; served methods: ann, cos",
        ),
        (("similar", "{base}/missing", "--method", "cos", "--item", "703"), 1, "no results folder"),
        (("similar", "{base}/data", "--method", "cos", "--item", "703"), 1, "no served method"),
        (("similar", "{base}", "--method", "cos", "--item", "x7"), 2, "is not an integer"),
        (("similar", "{base}", "--method", "cos", "--item", "817"), 2, "has no vector in cos"),
        (("recommend", "{base}", "--method", "cos", "--user", "5"), 2, "among the 8 users"),
        (("recommend", "{base}", "--method", "cos", "--user", "107"), 2, "no train history"),
        (("playlist", "{base}", "--method", "cos", "--seed-items", "700,1"), 2, "item 1 is not"),
        (("playlist", "{base}", "--method", "cos", "--seed-items", "817"), 2, "none of the seed"),
    ],
    ids=[
        "unknown-item",
        "unknown-method",
        "missing-folder",
        "not-a-results-folder",
        "non-integer-id",
        "item-without-vector",
        "unknown-user",
        "user-without-history",
        "unknown-seed",
        "seed-without-vector",
    ],
)
def test_errors_are_one_line(results, args, code, message):
    base, _ = results
    proc = run_cli(*(a.format(base=base) for a in args))
    assert proc.returncode == code
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mp2v4rec: error: ")
    assert message.format(base=base) in proc.stderr


def test_entry_point_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, func = scripts["mp2v4rec"].partition(":")
    assert module == "mp2v4rec.cli" and callable(getattr(__import__(module, fromlist=[func]), func))


def test_command_imports_stay_light():
    """No snakemake, gensim, matplotlib, scipy, numba or faiss when the command module loads."""
    code = (
        "import sys, mp2v4rec.cli, mp2v4rec.serve; "
        "print(sorted(m for m in ('snakemake', 'gensim', 'matplotlib', 'scipy', 'faiss', 'numba') "
        "if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]", out.stderr
