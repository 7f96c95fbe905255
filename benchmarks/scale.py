"""How every pipeline stage grows with the number of events (synthetic SoundCloud-style logs).

    .venv/bin/python benchmarks/scale.py [--sizes 1e5 1e6 3e6 1e7 3e7] [--workdir DIR] [--reuse]
    .venv/bin/python benchmarks/scale.py --stage walks --size 1e6 --workdir DIR   # one stage

For each size (events generated) the driver runs the stages in order, each in its own
subprocess reading the previous stage's files from ``{workdir}/{size}/``, as the workflow does,
and takes the stage's peak RSS from ``os.wait4``. ``seconds`` is the stage's work (after the
imports); ``floor_mb`` is the RSS after the imports, before the work. Then it fits the growth
exponents per stage (log-log least squares of seconds and of peak memory against events over
all sizes; ``*_top2``: the slope between the two largest sizes, where the fixed costs of imports
and small arrays no longer dominate) and writes ``benchmarks/results/scale.tsv`` and
``scale.png``. Targets: exponent <= 1.15 and peak memory <= 100 bytes per event in every stage.
``--reuse`` keeps the stage results already in the work directory (to resume a long run).

Ratios: users = events / 100, items = events / 50 (at least 1,000 and 2,000), 10 follows per
user. Walks: UUV metapath (follows as the social hop), weighted (R-MP2V), 10 walks of length 15
per user. Train: gensim skip-gram, corpus_file, dim 32, window 6, 6 negatives, 1 epoch, 2
workers. Recommend and evaluate: a fixed seeded sample of SAMPLE evaluated users, top-100 over
the whole catalogue (exact, train items and the other split masked), all metrics and bootstrap
CIs over the sample. Every stage runs the workflow's own job body (``mp2v4rec.jobs``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
SAMPLE = 20_000  # evaluated users recommended and evaluated (the study sampled 200,000)
UUV = ["user_user", "user_item", "item_user"]
WALK = dict(metapath=UUV, walk_length=15, walks_per_node=10, sampling="weighted", seed=0)
SKIPGRAM = dict(dim=32, window=6, negative=6, epochs=1, alpha=0.025, min_alpha=1.0e-4, seed=0)
SKIPGRAM |= dict(sample=1.0e-3, ns_exponent=0.75, score="cosine")
KS = [1, 2, 3, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
THREADS = 2


def held_out(d: Path) -> dict[str, Path]:
    """The held-out split files of a size's work directory."""
    return {split: d / f"data/{split}.parquet" for split in ("valid", "test")}


def world(events: int) -> dict:
    """Generator sizes for a number of events."""
    n_items = max(events // 50, 2_000)
    return dict(
        n_users=max(events // 100, 1_000),
        n_items=n_items,
        n_events=events,
        n_artists=n_items // 8,
        n_genres=20,
        n_communities=32,
        follows_per_user=10.0,
        seed=0,
    )


# ---- the stages: each reads the files of the ones before it from ``d`` -----------------------


def generate(events: int, d: Path) -> dict:
    from mp2v4rec.datasets.synthetic_events import write_synthetic_events

    return write_synthetic_events(d / "raw", **world(events))


def preprocess(events: int, d: Path) -> dict:
    from mp2v4rec.datasets.events import preprocess_events

    raw = d / "raw"
    tables = {t: raw / f"{t}.parquet" for t in ("events", "follows", "items", "eval_events")}
    prepared = preprocess_events(**tables, min_user_interactions=10, min_item_interactions=5)
    prepared.write(d / "data")
    return {k: prepared.stats[k] for k in ("train_pairs", "users", "items", "social_edges")}


def graph(events: int, d: Path) -> dict:
    from mp2v4rec.jobs import graph_job

    tables = {t: d / f"data/{t}.parquet" for t in ("train", "social")}
    return graph_job(
        **tables,
        user_table=d / "data/users.parquet",
        item_table=d / "data/items.parquet",
        output=d / "graph.npz",
        symmetric_social=False,  # follows are directed
    )


def walks(events: int, d: Path) -> dict:
    from mp2v4rec.jobs import walk_job

    return walk_job(
        graph=d / "graph.npz",
        output=d / "walks.txt",
        walk=WALK,
        shard=0,
        n_shards=1,
        threads=THREADS,
    )


def train(events: int, d: Path) -> dict:
    from mp2v4rec.jobs import train_job

    model = train_job(
        corpus=d / "walks.txt",
        **{t: d / f"data/{t}.parquet" for t in ("train", "valid")},
        user_table=d / "data/users.parquet",
        item_table=d / "data/items.parquet",
        output=d / "embeddings.npz",
        curve=d / "curve.tsv",
        settings={"kind": "mp2v", "trainer": "gensim", "init": "random", **SKIPGRAM},
        validation={"keep_best_epoch": False, "k": max(KS)},
        threads=THREADS,
    )
    return {"epochs": model.curve.height}


def recommend(events: int, d: Path) -> dict:
    from mp2v4rec.evaluation import evaluated_users
    from mp2v4rec.io import write_parquet
    from mp2v4rec.jobs import recommend_job

    sample = evaluated_users(pl.read_parquet(d / "data/users.parquet"), SAMPLE, seed=0)
    write_parquet(pl.DataFrame({"user": sample}), d / "evaluated_users.parquet")
    stats = recommend_job(
        embeddings=d / "embeddings.npz",
        train=d / "data/train.parquet",
        evaluated=d / "evaluated_users.parquet",
        held_out=held_out(d),
        output=d / "recs.parquet",
        k=max(KS),
        mask_seen=True,
        chunk_size=2048,
        block=0,
        n_blocks=1,
        splits=["valid", "test"],
    )
    return {"sampled_users": int(sample.size), **stats}


def evaluate(events: int, d: Path) -> dict:
    from mp2v4rec.jobs import evaluate_job

    table = evaluate_job(
        recs=d / "recs.parquet",
        evaluated=d / "evaluated_users.parquet",
        held_out=held_out(d),
        train=d / "data/train.parquet",
        item_table=d / "data/items.parquet",
        embeddings=d / "embeddings.npz",
        metrics=d / "metrics.tsv",
        per_user=d / "per_user.parquet",
        ks=KS,
        splits=["valid", "test"],
        per_user_ks=[10, 100],
        cold="exclude",
        bootstrap=1000,
        seed=0,
    )
    recall = table.filter(
        (pl.col("split") == "test") & (pl.col("cohort") == "all") & (pl.col("metric") == "recall")
    )
    return {"test_recall_at_100": float(recall.filter(pl.col("k") == 100)["value"][0])}


STAGES = {
    # stage -> (function, modules imported before the clock and the memory floor start)
    "generate": (generate, ["mp2v4rec.datasets.synthetic_events"]),
    "preprocess": (preprocess, ["mp2v4rec.datasets.events"]),
    "graph": (graph, ["mp2v4rec.jobs"]),
    "walks": (walks, ["mp2v4rec.jobs"]),
    "train": (train, ["mp2v4rec.jobs"]),
    "recommend": (recommend, ["mp2v4rec.jobs"]),
    "evaluate": (evaluate, ["mp2v4rec.jobs"]),
}


# ---- one stage in this process (the subprocess entry) ----------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return kb / 1024


def run_stage(size: int, stage: str, workdir: Path) -> None:
    """Run one stage and write ``{stage}.json`` (seconds, floor RSS, the stage's counts)."""
    d = workdir / str(size)
    d.mkdir(parents=True, exist_ok=True)
    function, modules = STAGES[stage]
    for module in modules:
        importlib.import_module(module)
    floor = _rss_mb()
    started = time.perf_counter()
    counts = function(size, d)
    seconds = time.perf_counter() - started
    out = {"seconds": seconds, "floor_mb": floor, "counts": counts}
    (d / f"{stage}.json").write_text(json.dumps(out, default=float) + "\n")


# ---- the driver ------------------------------------------------------------------------------


def measure(size: int, stage: str, workdir: Path, reuse: bool) -> dict:
    """Run a stage in a subprocess; its result plus the peak RSS of that process."""
    path = workdir / str(size) / f"{stage}.measured.json"
    if reuse and path.exists():
        return json.loads(path.read_text())
    cmd = [sys.executable, __file__, "--stage", stage, "--size", str(size)]
    proc = subprocess.Popen([*cmd, "--workdir", str(workdir)])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} at {size} events failed: {' '.join(cmd)}")
    result = json.loads((workdir / str(size) / f"{stage}.json").read_text())
    result.update(stage=stage, events=size, peak_mb=usage.ru_maxrss / 1024)  # KiB on Linux
    result["load_after"] = os.getloadavg()[0]  # other work on the machine skews the seconds
    path.write_text(json.dumps(result) + "\n")
    return result


def slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def table(results: list[dict]) -> pl.DataFrame:
    pairs = {r["events"]: r["counts"]["train_pairs"] for r in results if r["stage"] == "preprocess"}
    df = pl.DataFrame(
        [
            {k: r[k] for k in ("stage", "events", "seconds", "peak_mb", "floor_mb", "load_after")}
            for r in results
        ]
    ).with_columns(
        train_pairs=pl.col("events").replace_strict(pairs, default=None),
        bytes_per_event=pl.col("peak_mb") * 2**20 / pl.col("events"),
        net_bytes_per_event=(pl.col("peak_mb") - pl.col("floor_mb")) * 2**20 / pl.col("events"),
    )
    fits = []
    for (stage,), g in df.group_by("stage", maintain_order=True):
        if g.height >= 2:
            top = g.sort("events").tail(2)
            fits.append(
                {
                    "stage": stage,
                    "time_exponent": slope(g["events"], g["seconds"]),
                    "memory_exponent": slope(g["events"], g["peak_mb"]),
                    "time_exponent_top2": slope(top["events"], top["seconds"]),
                    "memory_exponent_top2": slope(top["events"], top["peak_mb"]),
                }
            )
    return df.join(pl.DataFrame(fits), on="stage", how="left", maintain_order="left")


def plot(df: pl.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.5))
    for (stage,), g in df.group_by("stage", maintain_order=True):
        label = f"{stage} ({g['time_exponent'][0]:.2f} / {g['memory_exponent'][0]:.2f})"
        ax_t.loglog(g["events"], g["seconds"], "o-", label=label)
        ax_m.loglog(g["events"], g["peak_mb"], "o-", label=stage)
    x = np.array([df["events"].min(), df["events"].max()], dtype=float)
    ax_m.loglog(x, x * 100 / 2**20, "k--", label="100 B/event")
    ax_t.set(xlabel="events", ylabel="seconds", title="wall time (exponent time / memory)")
    ax_m.set(xlabel="events", ylabel="peak RSS (MB)", title="peak memory per stage")
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 3e6, 1e7, 3e7])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mp2v4rec-scale"))
    parser.add_argument("--stage", choices=list(STAGES), help="run one stage (subprocess entry)")
    parser.add_argument("--size", type=float, help="events, with --stage")
    parser.add_argument("--reuse", action="store_true", help="keep stage results already measured")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.tsv")
    args = parser.parse_args()
    if args.stage:
        run_stage(int(args.size), args.stage, args.workdir)
        return
    results = []
    for size in sorted(int(s) for s in args.sizes):
        for stage in STAGES:
            r = measure(size, stage, args.workdir, args.reuse)
            results.append(r)
            print(
                f"{size:>11,} {stage:<10} {r['seconds']:9.1f} s {r['peak_mb']:9.0f} MB "
                f"{r['peak_mb'] * 2**20 / size:8.0f} B/event  load {r['load_after']:.1f}  "
                f"{r['counts']}",
                flush=True,
            )
    df = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.write_csv(args.out, separator="\t", float_precision=3)
    plot(df, args.out.with_suffix(".png"))
    with pl.Config(tbl_rows=100, tbl_width_chars=140):
        print(df)


if __name__ == "__main__":
    main()
