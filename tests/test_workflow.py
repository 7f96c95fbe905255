"""The Snakemake DAG: builds for the study's config, runs end to end on configs/test.yaml."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from snakemake_runner import snakemake, snakemake_cmd

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def planned_rules(workdir, *args):
    """Rule names of the jobs a dry run would execute, with their counts."""
    out = snakemake(workdir, "-n", "--quiet", "rules", *args).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_kuairec_dag_builds(tmp_path):
    rules = planned_rules(tmp_path, "--cores", "16", "all")
    assert rules["download_kuairec"] == 1
    # four walk sets x two shards: mp2v and mp2vshared share uniform walks, rmp2v and
    # rmp2vshared weighted ones; mp2vtuned (length 30) and rmp2vtuned (40 per node) have their own
    assert rules["walk_shard"] == 8 and rules["walk_corpus"] == 4
    # one train rule for every kind with vectors: 6 MP2V runs, W2V, UltraGCN, iALS, popularity,
    # random; one for the item-item kinds (EASE, RP3beta, ItemKNN); UserKNN stores nothing
    assert rules["train"] == 11 and rules["train_item_item"] == 3
    assert rules["recommend"] == rules["evaluate"] == rules["merge_recs"] == 15
    # served by default: the six MP2V runs, W2V and the three item-item kinds
    assert rules["serve"] == 10 and rules["evaluate_seeded"] == 11
    assert "synthesize_kuairec" not in rules


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    snakemake(workdir, "all", "--cores", "2", "--configfile", str(ROOT / "configs/test.yaml"))
    return workdir


def test_pipeline_writes_every_output(demo_run):
    base = demo_run / "results/tiny"
    figures = [
        "metrics_by_k",
        "metrics_by_protocol",
        "pca_embeddings",
        "ablation",
        "diversity_histogram",
        "feature_diversity",
        "lorenz_curves",
        "cohort_metrics",
        "training_curves",
    ]
    tables = ["metrics", "summary", "ablation"]
    for name in [
        "data/stats.json",
        "data/block.parquet",
        "graph/graph.npz",
        *[f"tables/{t}.tsv" for t in tables],
        *[f"figures/{f}.png" for f in figures],
    ]:
        assert (base / name).stat().st_size > 0, name
    assert not list(base.glob("walks/*/shard*.txt")), "walk shards are temporary"
    assert not list(base.glob("recs/**/block*.parquet")), "recommendation blocks are temporary"
    assert len(list(base.glob("logs/recommend/mp2v/default/block*.log"))) == 2  # fanned out
    assert not list(demo_run.rglob(".*.tmp*")), "no temporary files left behind"
    table = pl.read_csv(base / "tables/metrics.tsv", separator="\t")
    assert set(table["method"]) == {
        "w2v",
        "mp2v",
        "rmp2v",
        "mp2vshared",
        "ultragcn",
        "ials",
        "userknn",
        "ease",
        "itemknn",
        "popularity",
        "random",
    }
    assert set(table["split"]) == {"valid", "test"}
    assert set(table["metric"]) == {
        "recall",
        "ndcg",
        "precision",
        "hitrate",
        "coverage",
        "gini",
        "novelty",
        "new_share",
        "ild",
        "ild_reference",
        "category_diversity",
        "graded_ndcg",
        "auc",
        "gauc",
    }
    assert set(table["cohort"]) == {"all", "low", "medium", "high", "cold"}
    stats = json.loads((base / "data/stats.json").read_text())
    assert stats["eval_cold_pairs"] > 0  # so the cold cohort is really exercised
    # evaluation protocols side by side: candidate sets and score functions as columns
    assert set(table["candidates"]) == {"all", "block", "sampled", "seeded"}
    assert {"cosine", "dot", "popblend"} <= set(table["score"])
    assert {"graded_ndcg", "auc", "gauc"} <= set(table["metric"])
    blend = table.filter(pl.col("score") == "popblend")
    assert blend["beta"].null_count() == 0
    assert (table["ci_low"] <= table["value"] + 1e-12).all()


def test_metapath_models_beat_reference_baselines(demo_run):
    table = pl.read_csv(demo_run / "results/tiny/tables/metrics.tsv", separator="\t")
    recall = dict(
        table.filter(
            (pl.col("split") == "test")
            & (pl.col("metric") == "recall")
            & (pl.col("k") == 50)
            & (pl.col("cohort") == "all")
            & (pl.col("candidates") == "all")
            & pl.col("native")
            & (pl.col("variant") == "default")
        )
        .select("method", "value")
        .rows()
    )
    for method in ("mp2v", "rmp2v"):
        assert recall[method] > recall["popularity"], recall
        assert recall[method] > recall["random"], recall


def test_recommendations_never_contain_known_positives(demo_run):
    """Train items never take a slot, nor do validation positives in the test lists."""
    base = demo_run / "results/tiny"
    train = pl.read_parquet(base / "data/train.parquet")
    held = {s: pl.read_parquet(base / f"data/{s}.parquet") for s in ("valid", "test")}
    evaluated = pl.read_parquet(base / "data/evaluated_users.parquet")["user"]
    for path in base.glob("recs/*/*.parquet"):
        recs = pl.read_parquet(path)
        assert recs["user"].unique().sort().equals(evaluated.sort()), path  # every block merged
        assert recs.join(train, on=["user", "item"], how="inner").height == 0, path
        lists = recs.filter(pl.col("split") == "test")
        assert lists.join(held["valid"], on=["user", "item"], how="inner").height == 0, path
        assert recs.group_by("split", "user").len()["len"].max() == 50


def test_rerun_with_nothing_changed_runs_nothing(demo_run):
    out = snakemake(demo_run, "all", "-n", "--configfile", str(ROOT / "configs/test.yaml"))
    assert "Nothing to be done" in out.stdout + out.stderr


def test_ablation_table_has_every_cell(demo_run):
    table = pl.read_csv(demo_run / "results/tiny/tables/ablation.tsv", separator="\t")
    assert set(table["metapath"]) == {"UV", "UUV"}
    assert set(table["n_seeds"]) == {2}
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    assert (demo_run / "results/tiny/figures/ablation.png").stat().st_size > 0


def edited_plan(workdir, tmp_path, edit):
    """Rules (with job counts) a dry run would execute after editing configs/test.yaml."""
    config = yaml.safe_load((ROOT / "configs/test.yaml").read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # keep the config order
    return planned_rules(workdir, "all", "--configfile", str(path))


SUMMARIES = {
    "metrics_table": 1,
    "summary_table": 1,
    "ablation_table": 1,
    "plot_metrics_by_k": 1,
    "plot_metrics_by_protocol": 1,
    "plot_beyond_accuracy": 1,
    "all": 1,
}

SERVED = {"serve": 1, "evaluate_seeded": 1, "plot_seeded": 1}  # the default mp2v run is served


@pytest.mark.parametrize(
    "edit, expected",
    [
        (  # embedding dim: retrain every mp2v run (default + 4 cells), no new walks
            lambda c: c["methods"]["mp2v"].update(dim=8),
            {
                "train": 5,
                "recommend": 10,  # two user blocks per run
                "merge_recs": 5,
                "evaluate": 5,
                "evaluate_protocols": 1,
                "plot_pca": 1,
                "plot_training_curves": 1,
                **SERVED,
                **SUMMARIES,
            },
        ),
        (  # walk length: 4 walk sets re-walked, neither preprocess nor graph
            lambda c: c["methods"]["mp2v"].update(walk_length=6),
            {
                "walk_shard": 8,
                "walk_corpus": 4,
                "train": 5,
                "recommend": 10,  # two user blocks per run
                "merge_recs": 5,
                "evaluate": 5,
                "evaluate_protocols": 1,
                "plot_pca": 1,
                "plot_training_curves": 1,
                **SERVED,
                **SUMMARIES,
            },
        ),
        (  # evaluated K: evaluation and what summarises it only
            lambda c: c["evaluate"].update(ks=[1, 5, 10, 20, 40, 50]),
            {
                "evaluate": 15,  # 11 methods + 4 ablation cells
                "evaluate_protocols": 8,  # the methods with vectors
                # served by default: mp2v, rmp2v, mp2vshared, w2v, ease, itemknn; and the
                # popularity reference
                "evaluate_seeded": 7,
                "plot_seeded": 1,
                **SUMMARIES,
            },
        ),
        (  # a new seed: only the two new cells, plus the summaries that list every run
            lambda c: c["ablation"]["grid"].update(seed=[0, 1, 2]),
            {
                "walk_shard": 4,
                "walk_corpus": 2,
                "train": 2,
                "recommend": 4,
                "merge_recs": 2,
                "evaluate": 2,
                **{k: v for k, v in SUMMARIES.items() if k != "summary_table"},
            },
        ),
    ],
    ids=["dim", "walk_length", "ks", "new_seed"],
)
def test_config_edit_reruns_exactly_the_affected_jobs(demo_run, tmp_path, edit, expected):
    assert edited_plan(demo_run, tmp_path, edit) == expected


def test_serve_stage_runs_in_the_dag(demo_run):
    """serve/{method}/ for every method whose kind is served by default (MP2V, W2V and the
    item-item kinds), the seeded tables and figure, and the command answering from them."""
    base = demo_run / "results/tiny"
    train = pl.read_parquet(base / "data/train.parquet")
    served = ["ease", "itemknn", "mp2v", "mp2vshared", "rmp2v", "w2v"]
    assert sorted(p.name for p in (base / "serve").iterdir()) == served
    lists = {"item_neighbours.parquet", "user_recs.parquet", "serve.json"}
    vectors = {"item_vectors.parquet", "user_vectors.parquet", "items.w2v.bin", "users.w2v.bin"}
    for method in served:
        folder = base / "serve" / method
        names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        # 300 items: exact search, no ANN index; item-item kinds have no vectors to export
        assert names == lists | (set() if method in ("ease", "itemknn") else vectors), names
        recs = pl.read_parquet(folder / "user_recs.parquet")
        assert recs["user"].n_unique() == train["user"].n_unique()  # every user with a history
        assert recs.join(train, on=["user", "item"]).height == 0
        neighbours = pl.read_parquet(folder / "item_neighbours.parquet")
        assert (neighbours["item"] != neighbours["neighbour"]).all()
        assert neighbours.group_by("item").len()["len"].max() == 50
    for method in [*served, "popularity"]:
        table = pl.read_csv(base / f"metrics/{method}/default.seeded.tsv", separator="\t")
        assert set(table["protocol"]) == {"seeded"} and set(table["k"]) == {1, 5, 10, 20, 50}
    assert (base / "figures/seeded_continuation.png").stat().st_size > 0
    for method in ("mp2v", "ease", "itemknn"):
        item = pl.read_parquet(base / f"serve/{method}/item_neighbours.parquet")["raw_id"][0]
        proc = subprocess.run(
            [sys.executable, "-m", "mp2v4rec.cli", "similar", str(base), "--method", method]
            + ["--item", str(item), "--json"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert len(json.loads(proc.stdout)["results"]) == 20
    proc = subprocess.run(
        [sys.executable, "-m", "mp2v4rec.cli", "playlist", str(base), "--method", "ease"]
        + ["--seed-items", str(item)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "served without item vectors" in proc.stderr, proc.stderr


def test_search_selects_on_validation_and_reports_test(demo_run):
    snakemake(demo_run, "search", "--cores", "2", "--configfile", str(ROOT / "configs/test.yaml"))
    base = demo_run / "results/tiny"
    cells = pl.read_csv(base / "tables/search.tsv", separator="\t")
    assert cells.height == 4 and cells["value"].is_sorted(descending=True)
    best = json.loads((base / "search/best.json").read_text())
    assert best["variant"] == cells["variant"][0]
    assert best["selected_on"]["split"] == "valid"
    report = pl.read_csv(base / "tables/search_best.tsv", separator="\t")
    assert set(report["variant"]) == {best["variant"]} and "test" in set(report["split"])


def test_event_log_dataset_end_to_end(tmp_path):
    """An events dataset (generated, with follows) runs through every stage unchanged."""
    config = {
        "datasets": {
            "ev": {
                "kind": "events",
                "source": "synthetic",
                "synthetic": {
                    "n_users": 300,
                    "n_items": 450,
                    "n_events": 20000,
                    "n_artists": 60,
                    "n_genres": 5,
                    "n_communities": 3,
                    "follows_per_user": 4,
                    "seed": 0,
                },
                "preprocess": {"min_user_interactions": 5, "min_item_interactions": 3},
            }
        },
        "methods": {
            "w2v": {"kind": "w2v", "dim": 8, "epochs": 3},
            "mp2v": {
                "kind": "mp2v",
                "metapath": "UUV",
                "dim": 8,
                "epochs": 2,
                "walk_length": 8,
                "walks_per_node": 3,
            },
            "popularity": {"kind": "popularity"},
        },
        "walks": {"shards": 1, "threads": 1},
        "train": {"threads": 1},
        "evaluate": {"bootstrap": 50},
    }
    path = tmp_path / "events.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(tmp_path, "all", "--cores", "2", "--configfile", str(path))
    table = pl.read_csv(tmp_path / "results/ev/tables/metrics.tsv", separator="\t")
    assert set(table["method"]) == {"w2v", "mp2v", "popularity"}
    assert "category_diversity" in set(table["metric"])  # genres and artists as categories
    graph = __import__("numpy").load(tmp_path / "results/ev/graph/graph.npz")
    assert graph["user_user_indices"].size > 0  # follows reached the graph


def test_events_example_config_validates():
    from mp2v4rec.config import load_config

    config = load_config(ROOT / "configs/events-example.yaml")
    assert config["datasets"]["mylogs"]["columns"]["events"]["item_id"] == "track_id"


def test_html_report_embeds_every_figure_and_table(demo_run):
    """The report holds the files themselves (base64), not just their names or captions."""
    import base64

    report = demo_run / "report.html"
    snakemake(
        demo_run, "all", "--configfile", str(ROOT / "configs/test.yaml"), "--report", str(report)
    )
    text = report.read_text()
    base = demo_run / "results/tiny"
    files = [*sorted(base.glob("figures/*.png")), base / "tables/summary.tsv"]
    assert len(files) > 10
    for path in [*files, base / "tables/metrics.tsv"]:
        assert base64.b64encode(path.read_bytes()).decode() in text, path.name


def test_killed_run_resumes_to_byte_identical_results(demo_run, tmp_path):
    """Kill a run mid-way (SIGKILL, no clean-up), rerun it: the results equal an uninterrupted
    run byte for byte, and nothing half-written was taken for finished."""
    import signal
    import time

    cmd = snakemake_cmd(
        tmp_path, "all", "--cores", "2", "--configfile", str(ROOT / "configs/test.yaml")
    )
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("results/tiny/models/*/default/embeddings.npz")):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before the kill"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, mid-training
    proc.wait()
    snakemake(tmp_path, "--unlock", "--configfile", str(ROOT / "configs/test.yaml"))
    snakemake(tmp_path, "all", "--cores", "2", "--configfile", str(ROOT / "configs/test.yaml"))
    for name in ["tables/metrics.tsv", "tables/ablation.tsv"]:
        a = (demo_run / "results/tiny" / name).read_bytes()
        b = (tmp_path / "results/tiny" / name).read_bytes()
        assert a == b, name
    assert not list(tmp_path.rglob(".*.tmp*")), "temporary files left behind"
