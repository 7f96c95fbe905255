"""The Snakemake DAG: builds for the study's config, runs end to end on configs/test.yaml."""

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def snakemake(workdir, *args, check=True):
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


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
    assert rules["walk_shard"] == 4  # two walk sets (uniform, weighted) x two shards
    assert rules["train_mp2v"] == 2 and rules["train_w2v"] == 1 and rules["train_reference"] == 2
    assert rules["evaluate"] == 5 and "synthesize_kuairec" not in rules


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    snakemake(workdir, "all", "--cores", "2", "--configfile", str(ROOT / "configs/test.yaml"))
    return workdir


def test_pipeline_writes_every_output(demo_run):
    base = demo_run / "results/tiny"
    for name in [
        "tables/metrics.tsv",
        "figures/metrics_by_k.png",
        "figures/pca_embeddings.png",
        "data/stats.json",
        "graph/graph.npz",
    ]:
        assert (base / name).stat().st_size > 0, name
    assert not list(base.glob("walks/*/shard*.txt")), "walk shards are temporary"
    assert not list(demo_run.rglob(".*.tmp*")), "no temporary files left behind"
    table = pl.read_csv(base / "tables/metrics.tsv", separator="\t")
    assert set(table["method"]) == {"w2v", "mp2v", "rmp2v", "popularity", "random"}
    assert set(table["split"]) == {"valid", "test"}
    assert set(table["metric"]) == {"recall", "ndcg", "precision", "hitrate"}


def test_metapath_models_beat_reference_baselines(demo_run):
    table = pl.read_csv(demo_run / "results/tiny/tables/metrics.tsv", separator="\t")
    recall = dict(
        table.filter(
            (pl.col("split") == "test") & (pl.col("metric") == "recall") & (pl.col("k") == 50)
        )
        .select("method", "value")
        .rows()
    )
    for method in ("mp2v", "rmp2v"):
        assert recall[method] > recall["popularity"], recall
        assert recall[method] > recall["random"], recall


def test_recommendations_never_contain_train_items(demo_run):
    base = demo_run / "results/tiny"
    train = pl.read_parquet(base / "data/train.parquet")
    for path in base.glob("recs/*/*.parquet"):
        recs = pl.read_parquet(path)
        assert recs.join(train, on=["user", "item"], how="inner").height == 0, path
        assert recs.group_by("user").len()["len"].max() == 50


def test_rerun_with_nothing_changed_runs_nothing(demo_run):
    out = snakemake(demo_run, "all", "-n", "--configfile", str(ROOT / "configs/test.yaml"))
    assert "Nothing to be done" in out.stdout + out.stderr
