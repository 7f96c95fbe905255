"""Cost of the study's MP2V hyperparameter search grid (300 cells) on KuaiRec-sized data.

    .venv/bin/python benchmarks/search_cost.py [--workdir DIR] [--reuse] [--epochs 2]
    .venv/bin/python benchmarks/search_cost.py --analyse   # refit/print from the written table
    .venv/bin/python benchmarks/search_cost.py --quick     # smoke test on a small world

The grid: walk length {4,10,15,25} x window {2,3,6,10,15} x walks per node {3,5,10,15,30} x
negatives {3,6,10}; UV metapath, uniform sampling, walks from users, skip-gram dim 50, 5 epochs,
alpha 0.025 -> 1e-4, validation Recall@100 after every epoch (best epoch kept), as the
workflow's ``search`` target runs it (``search: grid:`` with axes length, window, pernode,
negative). A walk set depends only on length and pernode, so the grid needs 20 walk sets.

Measured in this process (about 7 min on 2 cores), on data generated with the settings of
configs/kuairec-synthetic.yaml and preprocessed as config.yaml's kuairec dataset:

* walks: all 20 walk sets, the walk_shard job body (``mp2v4rec.jobs.walk_job``) with 2 threads
  (one file per set), wall seconds;
* training: the train rule's job body (``jobs.train_job``: users from their tokens,
  validation on the valid split, 2 workers) for 14 fit cells and 4 held-out cells (one is the
  grid's largest) with ``--epochs`` epochs (default 2) instead of 5. Epoch boundaries come from
  the training curve the job writes: per epoch the training wall and CPU seconds (gensim) and
  the validation seconds (vectors + Recall@100 of the valid users); per cell the setup seconds
  (tables, corpus shuffle, vocabulary scan, seen matrix, writing the embeddings). A cell
  whose 2-worker epochs got less than 1.6 CPU-seconds per second (other work on the machine)
  is measured again. Two cells are also trained with 1 worker, back to back with 2 workers
  (the pair again if the 2-worker half was slowed);
* per-cell evaluation: the workflow's recommend (top-100 for the evaluated users, train items
  and the other split masked), merge_recs and evaluate (valid split only, the config's ks,
  per-user ks, 1,000 bootstrap resamples) job bodies, once; valid + test is timed too;
* per-job start-up: ``python -c "import mp2v4rec.embed, gensim, polars"`` (median of 3), a
  lower bound of a Snakemake job's overhead (the DAG and job scheduling are not included).

Model: training CPU-seconds per epoch (CPU rather than wall: other work on the machine slows the
wall clock but hardly the CPU time) from the walk set's tokens T, the mean (centre, context)
pairs per token p(L, w) of gensim's skip-gram with shrunk windows (uniform 1..w, cut at the
walk's ends) and the negatives n. Candidates, fitted by nonnegative least squares on relative
errors and chosen by leave-one-out error on the fit cells, then checked on the held-out cells:
``T (a + b w (n+1))`` (the naive form), ``T (a + b p (n+1))``, the same ``+ e`` per epoch and
``+ s T/L + e`` (per walk). Wall seconds with 2 workers = CPU / the median CPU/wall ratio of
the measured epochs. Setup = ``s0 + s1 T``; validation per epoch = the median over cells.

Cost of a cell (5 epochs): train job = start-up + setup + 5 (train + validation), holding its
workers' cores; recommend, merge_recs and evaluate = 3 start-ups + their measured seconds, one
core each. Walks: the measured seconds plus 2 walk_shard start-ups per set, 2 threads
(walk_corpus is a ``cat``). Core-hours = cores held x wall seconds. On N cores, N / workers
training jobs run at once and the 1-core jobs fill the gaps: wall = core-hours / N, at least
the longest chain (walk set -> train -> recommend -> merge -> evaluate). Projected: 1-worker
training = the 2-worker CPU seconds x the measured 1/2-worker CPU ratio; 16 workers = the
1-worker seconds / (16 x ``--efficiency16``, default the measured 2-worker efficiency). The
16- and 64-core figures assume cores as fast as this machine's and no memory-bandwidth or
cache contention between jobs. Data preparation, the graph, search_select and search_report
(run once) are left out.

Writes benchmarks/results/search_cost.tsv (every measurement, with the 1-minute load average
before and after, and the model's prediction for the training cells) and prints the fit, the
per-axis breakdown and the totals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
GRID = {
    "length": [4, 10, 15, 25],
    "window": [2, 3, 6, 10, 15],
    "pernode": [3, 5, 10, 15, 30],
    "negative": [3, 6, 10],
}
EPOCHS = 5  # the study's epochs per cell
THREADS = 2  # walk threads and gensim workers per job on this machine
WALK_SHARD_JOBS = 2  # config.yaml walks.shards: walk_shard jobs per walk set
CELL_JOBS_1CORE = 3  # recommend (user_blocks 1), merge_recs, evaluate
# measured cells (length, pernode, window, negative): the fit set spans window x negative on
# one small walk set, the length axis (where windows are cut at the walk's ends) and the
# token count; the held-out cells include the grid's largest cell and the default.
FIT_CELLS = [
    (25, 3, 2, 3),
    (25, 3, 2, 10),
    (25, 3, 6, 3),
    (25, 3, 6, 10),
    (25, 3, 15, 3),
    (25, 3, 15, 10),
    (4, 3, 15, 10),
    (4, 3, 3, 6),
    (10, 5, 10, 6),
    (10, 5, 2, 10),
    (4, 30, 15, 3),
    (4, 30, 6, 10),
    (15, 15, 6, 3),
    (10, 30, 3, 3),
]
HOLDOUT_CELLS = [
    (15, 10, 6, 6),  # the method's default settings
    (4, 10, 10, 3),
    (10, 15, 15, 6),
    (25, 30, 15, 10),  # the grid's largest cell
]
ONE_WORKER_CELLS = [(25, 3, 6, 6), (15, 10, 6, 6)]  # each trained with 1 and 2 workers
QUICK_WORLD = dict(n_users=800, n_items=1200, small_users=200, small_items=400)
STARTUP_CMD = [sys.executable, "-c", "import mp2v4rec.embed, gensim, polars"]


def load_settings() -> dict:
    """The generator, preprocessing, method and evaluation settings the workflow would use."""
    synthetic = yaml.safe_load((ROOT / "configs/kuairec-synthetic.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    method = config["methods"]["mp2v"]
    return {
        "synthetic": synthetic["datasets"]["kuairec-synthetic"]["synthetic"],
        "preprocess": config["datasets"]["kuairec"]["preprocess"],
        "metapath": list(config["metapaths"][method["metapath"]]),
        "skipgram": {
            k: method[k]
            for k in ("dim", "alpha", "min_alpha", "sample", "ns_exponent", "score", "seed")
        },
        "validation_k": config["train"]["validation"]["k"],
        "recommend": config["recommend"],
        "evaluate": config["evaluate"],
    }


def load1() -> float:
    return os.getloadavg()[0]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def walkset(length: int, pernode: int) -> str:
    from mp2v4rec.config import walkset_name

    cell = dict(walk_length=length, walks_per_node=pernode)
    return walkset_name(dict(metapath="UV", sampling="uniform", start="users", seed=0, **cell))


def pairs_per_token(length: int, window: int) -> float:
    """Mean (centre, context) pairs per token: shrunk window b ~ U{1..window}, cut at the ends."""
    i = np.arange(length)[None, :]
    b = np.arange(1, window + 1)[:, None]
    return float((np.minimum(b, i) + np.minimum(b, length - 1 - i)).mean())


# ---- data, graph and walks -------------------------------------------------------------------


def prepare(d: Path, settings: dict, quick: bool, reuse: bool) -> dict:
    """Synthetic archive -> prepared tables -> evaluated users -> graph, in ``d``."""
    from mp2v4rec.datasets.kuairec import preprocess_kuairec
    from mp2v4rec.datasets.synthetic import write_synthetic_kuairec
    from mp2v4rec.evaluation import evaluated_users
    from mp2v4rec.io import write_parquet
    from mp2v4rec.jobs import graph_job

    done = d / "prepared.json"
    if reuse and done.exists():
        return json.loads(done.read_text())
    started = time.perf_counter()
    params = dict(settings["synthetic"], **(QUICK_WORLD if quick else {}))
    counts = write_synthetic_kuairec(d / "raw/KuaiRec.zip", **params)
    prepared = preprocess_kuairec(d / "raw/KuaiRec.zip", **settings["preprocess"])
    prepared.write(d / "data")
    ev = settings["evaluate"]
    users = evaluated_users(prepared.users, ev.get("sample_users"), ev.get("seed", 0))
    write_parquet(pl.DataFrame({"user": users}), d / "data/evaluated_users.parquet")
    graph_job(
        **{t: d / f"data/{t}.parquet" for t in ("train", "social")},
        user_table=d / "data/users.parquet",
        item_table=d / "data/items.parquet",
        output=d / "graph.npz",
        symmetric_social=True,
    )
    info = {
        "users": prepared.users.height,
        "items": prepared.items.height,
        "train_pairs": prepared.train.height,
        "valid_pairs": prepared.valid.height,
        "evaluated_users": int(users.size),
        "big_matrix_rows": counts["big_matrix_rows"],
        "seconds": time.perf_counter() - started,
    }
    done.write_text(json.dumps(info) + "\n")
    return info


def write_all_walks(d: Path, settings: dict, reuse: bool) -> dict[tuple[int, int], dict]:
    """All 20 walk sets (length x pernode), timed; ``{(length, pernode): stats}``."""
    from mp2v4rec.jobs import walk_job

    out = {}
    for length, pernode in itertools.product(GRID["length"], GRID["pernode"]):
        path = d / "walks" / f"{walkset(length, pernode)}.txt"
        stats_path = path.with_suffix(".json")
        if reuse and path.exists() and stats_path.exists():
            out[length, pernode] = json.loads(stats_path.read_text())
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        before, c0 = load1(), cpu_seconds()
        started = time.perf_counter()
        walk = dict(metapath=settings["metapath"], sampling="uniform", start="users", seed=0)
        stats = walk_job(
            graph=d / "graph.npz",
            output=path,
            walk=dict(walk, walk_length=length, walks_per_node=pernode),
            shard=0,
            n_shards=1,
            threads=THREADS,
        )
        stats.update(
            wall=time.perf_counter() - started,
            cpu=cpu_seconds() - c0,
            bytes=path.stat().st_size,
            load1_before=before,
            load1_after=load1(),
        )
        stats_path.write_text(json.dumps(stats) + "\n")
        out[length, pernode] = stats
        print(
            f"walks L={length:<2} pernode={pernode:<2} {stats['tokens']:>10,} tokens "
            f"{stats['wall']:6.2f} s  load {stats['load1_after']:.2f}",
            flush=True,
        )
    return out


# ---- training --------------------------------------------------------------------------------


def train_cell(
    d: Path, cell: tuple, walks: dict, settings: dict, epochs: int, workers: int, role: str
) -> dict:
    """Train one cell with the train rule's job body; per-epoch seconds from its curve."""
    from mp2v4rec.jobs import train_job

    length, pernode, window, negative = cell
    out = d / "cells" / f"{role}_{length}_{pernode}_{window}_{negative}_{workers}"
    before, c0 = load1(), cpu_seconds()
    started = time.perf_counter()
    params = dict(settings["skipgram"], window=window, negative=negative, epochs=epochs)
    curve = train_job(
        corpus=d / "walks" / f"{walkset(length, pernode)}.txt",
        **{t: d / f"data/{t}.parquet" for t in ("train", "valid")},
        user_table=d / "data/users.parquet",
        item_table=d / "data/items.parquet",
        output=out / "embeddings.npz",
        curve=out / "curve.tsv",
        settings={"kind": "mp2v", "trainer": "gensim", "init": "random", **params},
        validation={"keep_best_epoch": True, "k": settings["validation_k"]},
        threads=workers,
    ).curve
    wall, cpu = time.perf_counter() - started, cpu_seconds() - c0
    # the curve's clocks run from the start of training; an epoch's training is what passes
    # between the previous epoch's scoring and its own end
    ends, cpu_ends = curve["seconds"].to_numpy(), curve["cpu_seconds"].to_numpy()
    valid_s, valid_cpu = curve["valid_seconds"].to_numpy(), curve["valid_cpu_seconds"].to_numpy()
    train_s = np.diff(ends, prepend=0.0) - np.r_[0.0, valid_s[:-1]]
    train_cpu = np.diff(cpu_ends, prepend=0.0) - np.r_[0.0, valid_cpu[:-1]]
    stats = walks[length, pernode]
    row = {
        "kind": "train",
        "role": role,
        "length": length,
        "pernode": pernode,
        "window": window,
        "negative": negative,
        "workers": workers,
        "epochs": epochs,
        "tokens": stats["tokens"],
        "walks": stats["walks"],
        "pairs_per_token": pairs_per_token(length, window),
        "seconds": wall,
        "cpu_seconds": cpu,
        "train_epoch_s": float(np.mean(train_s)),
        "train_epoch_cpu_s": float(np.mean(train_cpu)),
        "train_epoch_spread": float(max(train_s) / min(train_s)),
        "cpu_per_wall": float(sum(train_cpu) / sum(train_s)),
        "valid_epoch_s": float(np.mean(valid_s)),
        "setup_s": wall - sum(train_s) - sum(valid_s),
        "best_valid_recall": float(curve["valid_recall"].max()),
        "load1_before": before,
        "load1_after": load1(),
    }
    print(
        f"train {role:<8} L={length:<2} pernode={pernode:<2} window={window:<2} "
        f"negative={negative:<2} workers={workers} {row['tokens']:>9,} tokens: "
        f"{row['train_epoch_s']:6.2f} s/epoch train, {row['valid_epoch_s']:5.2f} s/epoch valid, "
        f"{row['setup_s']:5.2f} s setup, CPU/wall {row['cpu_per_wall']:.2f}  "
        f"load {row['load1_after']:.2f}",
        flush=True,
    )
    return row, out / "embeddings.npz"


# ---- the cost model --------------------------------------------------------------------------

MODELS = ["T(a+b*w*(n+1))", "T(a+b*p*(n+1))", "T(a+b*p*(n+1))+e", "T(a+b*p*(n+1))+s*T/L+e"]


def features(model: str, tokens, pairs, window, negative, length) -> np.ndarray:
    tokens, pairs = np.asarray(tokens, float), np.asarray(pairs, float)
    window, negative = np.asarray(window, float), np.asarray(negative, float)
    per_pair = tokens * pairs * (negative + 1)
    ones = np.ones_like(tokens)
    columns = {
        MODELS[0]: [tokens, tokens * window * (negative + 1)],
        MODELS[1]: [tokens, per_pair],
        MODELS[2]: [tokens, per_pair, ones],
        MODELS[3]: [tokens, per_pair, tokens / np.asarray(length, float), ones],
    }[model]
    return np.column_stack(columns)


def fit(model: str, df: pl.DataFrame) -> np.ndarray:
    """Nonnegative least squares of the CPU seconds per epoch, on relative errors."""
    x = features(
        model, *(df[k] for k in ("tokens", "pairs_per_token", "window", "negative", "length"))
    )
    y = df["train_epoch_cpu_s"].to_numpy()
    coef, _ = nnls(x / y[:, None], np.ones_like(y))
    return coef


def predict(model: str, coef: np.ndarray, df: pl.DataFrame) -> np.ndarray:
    """CPU seconds per training epoch of the cells in ``df``."""
    x = features(
        model, *(df[k] for k in ("tokens", "pairs_per_token", "window", "negative", "length"))
    )
    return x @ coef


def loo_error(model: str, df: pl.DataFrame) -> float:
    """Mean absolute relative error (%) of leave-one-out predictions on the fit cells."""
    errors = []
    for i in range(df.height):
        coef = fit(model, df.filter(pl.int_range(pl.len()) != i))
        guess = predict(model, coef, df[i])[0]
        errors.append(abs(guess / df["train_epoch_cpu_s"][i] - 1) * 100)
    return float(np.mean(errors))


# ---- per-cell evaluation and job start-up ----------------------------------------------------


def evaluate_cell(d: Path, embeddings: Path, settings: dict, splits: list[str]) -> dict:
    """The recommend, merge_recs and evaluate job bodies for one cell, timed separately."""
    from mp2v4rec.jobs import evaluate_job, merge_recs_job, recommend_job

    rec, ev = settings["recommend"], settings["evaluate"]
    e = d / "eval"
    held_out = {split: d / f"data/{split}.parquet" for split in ("valid", "test")}
    shared = dict(evaluated=d / "data/evaluated_users.parquet", held_out=held_out)
    before = load1()
    times = {}

    started = time.perf_counter()
    recommend_job(
        embeddings=embeddings,
        train=d / "data/train.parquet",
        output=e / "block0.parquet",
        k=rec["k"],
        mask_seen=rec["mask_seen"],
        chunk_size=rec["chunk_size"],
        block=0,
        n_blocks=1,
        splits=splits,
        **shared,
    )
    times["recommend_s"] = time.perf_counter() - started

    started = time.perf_counter()  # merge_recs with one block: read, check, write
    merge_recs_job(
        blocks=[e / "block0.parquet"], evaluated=shared["evaluated"], output=e / "recs.parquet"
    )
    times["merge_s"] = time.perf_counter() - started

    started = time.perf_counter()
    evaluate_job(
        recs=e / "recs.parquet",
        train=d / "data/train.parquet",
        item_table=d / "data/items.parquet",
        embeddings=embeddings,
        metrics=e / "metrics.tsv",
        per_user=e / "per_user.parquet",
        ks=ev["ks"],
        splits=splits,
        per_user_ks=ev["per_user_ks"],
        cold=ev["cold"],
        bootstrap=ev["bootstrap"],
        seed=ev["seed"],
        **shared,
    )
    times["evaluate_s"] = time.perf_counter() - started
    row = {
        "kind": "evaluate",
        "role": "+".join(splits),
        "seconds": sum(times.values()),
        **times,
        "load1_before": before,
        "load1_after": load1(),
    }
    print(
        f"evaluate ({row['role']}): recommend {times['recommend_s']:.2f} s, merge "
        f"{times['merge_s']:.2f} s, evaluate {times['evaluate_s']:.2f} s  load {load1():.2f}",
        flush=True,
    )
    return row


def startup_seconds(repeats: int = 3) -> dict:
    """Median wall seconds of a fresh interpreter importing what a training job imports."""
    before = load1()
    subprocess.run(STARTUP_CMD, check=True)  # warm the page cache
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(STARTUP_CMD, check=True)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    print(f"job start-up (import mp2v4rec.embed, gensim, polars): {seconds:.2f} s", flush=True)
    return {
        "kind": "startup",
        "role": "per_job",
        "seconds": seconds,
        "load1_before": before,
        "load1_after": load1(),
    }


# ---- the grid's prediction -------------------------------------------------------------------


def grid_cells(walk_tokens: dict) -> pl.DataFrame:
    cells = list(itertools.product(*GRID.values()))
    return pl.DataFrame(cells, schema=list(GRID), orient="row").with_columns(
        tokens=pl.struct("length", "pernode").map_elements(
            lambda s: walk_tokens[s["length"], s["pernode"]], return_dtype=pl.Int64
        ),
        pairs_per_token=pl.struct("length", "window").map_elements(
            lambda s: pairs_per_token(s["length"], s["window"]), return_dtype=pl.Float64
        ),
    )


def projections(c: dict, cells: pl.DataFrame, walk_df: pl.DataFrame) -> pl.DataFrame:
    """Core-hours and wall hours of the grid on N cores, training with 1, 2 or 16 workers.

    N / workers training jobs at once, the 1-core jobs and walks filling the gaps: wall =
    core-seconds / N, at least the longest chain (walk set, train, recommend, merge, evaluate).
    One worker: 2-worker CPU x the measured 1/2-worker CPU ratio; 16 workers: the 1-worker
    seconds / (16 x efficiency16).
    """
    walk_core = walk_df["walk_core_s"].sum()
    longest_walk = walk_df["walk_wall_s"].max()

    def job(epoch_s):
        return c["startup"] + cells["setup_s"] + EPOCHS * (epoch_s + c["valid_s"])

    wall1 = cells["train_epoch_cpu_s"] * c["cpu_1_over_2"]
    jobs = {1: job(wall1), THREADS: cells["train_job_s"], 16: job(wall1 / (16 * c["efficiency16"]))}
    rows = []
    for cores in (THREADS, 16, 64):
        for workers, train_job in jobs.items():
            if workers > cores:
                continue
            core = (workers * train_job + c["one_core"]).sum() + walk_core
            chain = longest_walk + (train_job + c["one_core"]).max()
            basis = "measured" if workers == THREADS else "projected"
            rows.append(
                {
                    "cores": cores,
                    "training jobs at once": f"{cores // workers} x {workers} worker(s)",
                    "train epoch": basis if workers != 16 else "assumed efficiency",
                    "core_h": core / 3600,
                    "wall_h": max(core / cores, chain) / 3600,
                }
            )
    return pl.DataFrame(rows)


def axis_table(cells: pl.DataFrame, walk_df: pl.DataFrame, total_core: float) -> pl.DataFrame:
    rows = []
    for axis, values in GRID.items():
        for value in values:
            sub = cells.filter(pl.col(axis) == value)
            walk_core = 0.0
            if axis in walk_df.columns:
                walk_core = walk_df.filter(pl.col(axis) == value)["walk_core_s"].sum()
            rows.append(
                {
                    "axis": axis,
                    "value": value,
                    "cells": sub.height,
                    "mean_cell_min_2core": sub["wall2_s"].mean() / 60,
                    "cells_core_h": sub["core_s"].sum() / 3600,
                    "cells_wall_h_2core": sub["wall2_s"].sum() / 3600,
                    "walks_core_h": walk_core / 3600,
                    "share_of_total_pct": (sub["core_s"].sum() + walk_core) / total_core * 100,
                }
            )
    return pl.DataFrame(rows)


def analyse(df: pl.DataFrame, efficiency16: float | None) -> pl.DataFrame:
    """Fit, predict and print the grid's cost from the measurements; the training rows with
    their predictions."""

    def cfg():
        return pl.Config(
            tbl_rows=40,
            tbl_width_chars=170,
            tbl_cols=20,
            tbl_hide_dataframe_shape=True,
            float_precision=2,
            fmt_str_lengths=40,
        )

    walk_rows = df.filter(pl.col("kind") == "walks")
    walk_tokens = {
        (r["length"], r["pernode"]): r["tokens"] for r in walk_rows.iter_rows(named=True)
    }
    startup = df.filter(pl.col("kind") == "startup")["seconds"][0]
    evals = df.filter(pl.col("kind") == "evaluate")
    eval_s = evals.filter(pl.col("role") == "valid")["seconds"][0]
    eval_both_s = evals.filter(pl.col("role") == "valid+test")["seconds"][0]
    train = df.filter(pl.col("kind") == "train")
    two = train.filter(pl.col("workers") == THREADS)
    clean = two.filter(pl.col("cpu_per_wall") >= 0.8 * THREADS)
    util = float((clean if clean.height else two)["cpu_per_wall"].median())
    fit_df = train.filter(pl.col("role") == "fit")
    hold_df = train.filter(pl.col("role") == "holdout")

    print("\ntraining CPU seconds per epoch, candidate models (T tokens, p pairs per token):")
    loo = {}
    for model in MODELS:
        loo[model] = loo_error(model, fit_df)
        coef = fit(model, fit_df)
        guess = predict(model, coef, hold_df)
        cpu_err = np.abs(guess / hold_df["train_epoch_cpu_s"].to_numpy() - 1).mean() * 100
        wall_err = np.abs(guess / util / hold_df["train_epoch_s"].to_numpy() - 1).mean() * 100
        print(
            f"  {model:<22} coef {np.array2string(coef, precision=3)}: mean abs error "
            f"leave-one-out {loo[model]:5.1f} %, held-out {cpu_err:5.1f} % (wall {wall_err:5.1f} %)"
        )
    model = min(loo, key=loo.get)
    coef = fit(model, fit_df)
    train = train.with_columns(
        predicted_train_epoch_cpu_s=predict(model, coef, train)
    ).with_columns(
        predicted_train_epoch_s=pl.col("predicted_train_epoch_cpu_s") / util,
        error_pct=(pl.col("predicted_train_epoch_cpu_s") / pl.col("train_epoch_cpu_s") - 1) * 100,
        wall_error_pct=(pl.col("predicted_train_epoch_cpu_s") / util / pl.col("train_epoch_s") - 1)
        * 100,
    )
    print(
        f"chosen: {model} (lowest leave-one-out error); wall with {THREADS} workers = CPU / "
        f"{util:.2f} (median CPU/wall of the {clean.height} of {two.height} {THREADS}-worker "
        f"cells not slowed by other work, CPU/wall >= {0.8 * THREADS:.1f})"
    )
    with cfg():
        print(
            train.filter(pl.col("role") == "holdout").select(
                "length",
                "pernode",
                "window",
                "negative",
                "tokens",
                "train_epoch_cpu_s",
                "predicted_train_epoch_cpu_s",
                "error_pct",
                "train_epoch_s",
                "predicted_train_epoch_s",
                "wall_error_pct",
            )
        )
    setup = np.polyfit(two["tokens"].to_numpy(), two["setup_s"].to_numpy(), 1)[::-1]
    valid_s = float(two["valid_epoch_s"].median())
    corr = float(np.corrcoef(two["valid_epoch_s"], two["window"] * (two["negative"] + 1))[0, 1])
    key = ["length", "pernode", "window", "negative"]
    pairs = (
        train.filter(pl.col("role") == "1worker")
        .join(train.filter(pl.col("role") == "2workers"), on=key, suffix="_2")
        .with_columns(
            efficiency=pl.col("train_epoch_s") / (THREADS * pl.col("train_epoch_s_2")),
            cpu_ratio=pl.col("train_epoch_cpu_s") / pl.col("train_epoch_cpu_s_2"),
        )
    )
    efficiency2 = float(pairs["efficiency"].mean())
    c = {
        "startup": startup,
        "valid_s": valid_s,
        "one_core": CELL_JOBS_1CORE * startup + eval_s,
        "cpu_1_over_2": float(pairs["cpu_ratio"].mean()),
        "efficiency16": efficiency16 or efficiency2,
    }
    print(
        f"validation per epoch: median {valid_s:.2f} s (range {two['valid_epoch_s'].min():.2f}"
        f"-{two['valid_epoch_s'].max():.2f}; correlation with window*(negative+1) {corr:+.2f})\n"
        f"setup per cell: {setup[0]:.2f} s + {setup[1] * 1e6:.2f} s per million tokens\n"
        f"epoch-to-epoch spread (max/min train seconds within a cell): median "
        f"{two['train_epoch_spread'].median():.2f}, max {two['train_epoch_spread'].max():.2f}"
    )
    for r in pairs.iter_rows(named=True):
        print(
            f"1 vs {THREADS} workers, L={r['length']} pernode={r['pernode']} window={r['window']} "
            f"negative={r['negative']}: {r['train_epoch_s']:.2f} vs {r['train_epoch_s_2']:.2f} "
            f"s/epoch (efficiency {r['efficiency']:.2f}), CPU {r['train_epoch_cpu_s']:.2f} vs "
            f"{r['train_epoch_cpu_s_2']:.2f} s/epoch"
        )
    print(
        f"per-cell evaluation (recommend + merge + evaluate valid): {eval_s:.2f} s "
        f"(valid + test, as the workflow's evaluate: {eval_both_s:.2f} s); job start-up "
        f"{startup:.2f} s x {1 + CELL_JOBS_1CORE} jobs per cell"
    )

    cells = grid_cells(walk_tokens)
    cpu_epoch = predict(model, coef, cells)
    setup_s = setup[0] + setup[1] * cells["tokens"].to_numpy()
    train_job = startup + setup_s + EPOCHS * (cpu_epoch / util + valid_s)
    cells = cells.with_columns(
        train_epoch_cpu_s=cpu_epoch,
        train_epoch_s=cpu_epoch / util,
        setup_s=setup_s,
        train_job_s=train_job,
        core_s=THREADS * train_job + c["one_core"],
        wall2_s=train_job + c["one_core"] / 2,
    )
    walk_df = walk_rows.select(
        "length",
        "pernode",
        walk_wall_s=pl.col("seconds") + WALK_SHARD_JOBS * startup,
        walk_core_s=THREADS * (pl.col("seconds") + WALK_SHARD_JOBS * startup),
    )
    total_core = cells["core_s"].sum() + walk_df["walk_core_s"].sum()
    parts = {
        "walks (20 sets, with start-up)": walk_df["walk_core_s"].sum(),
        "training (5 epochs)": THREADS * EPOCHS * cells["train_epoch_s"].sum(),
        "validation (5 per cell)": THREADS * EPOCHS * valid_s * cells.height,
        "setup (tables, vocabulary)": THREADS * cells["setup_s"].sum(),
        "recommend + merge + evaluate": eval_s * cells.height,
        "job start-up (4 jobs per cell)": (THREADS + CELL_JOBS_1CORE) * startup * cells.height,
    }
    print("\ncore-hours by part (cores held x wall):")
    for name, seconds in parts.items():
        print(f"  {name:<32} {seconds / 3600:7.2f} core-h  {seconds / total_core * 100:5.1f} %")
    with cfg():
        print("per grid axis value (cells: train + validation + setup + evaluation + start-up):")
        print(axis_table(cells, walk_df, total_core))
        ranked = cells.sort("wall2_s")
        print("cheapest and most expensive cell (2-core wall: train job + the 1-core jobs / 2):")
        print(
            pl.concat([ranked.head(1), ranked.tail(1)]).select(
                *GRID,
                "tokens",
                "train_epoch_s",
                cell_min_2core=pl.col("wall2_s") / 60,
                core_min=pl.col("core_s") / 60,
            )
        )
        print(f"\ntotal for the 300 cells and 20 walk sets (model {model}):")
        print(projections(c, cells, walk_df))
    busiest = float(df["load1_after"].max())
    if two.height > clean.height or busiest > THREADS + 1:
        print(
            f"WARNING: {two.height - clean.height} of {two.height} {THREADS}-worker cells ran "
            f"with CPU/wall < {0.8 * THREADS:.1f} and the 1-minute load average reached "
            f"{busiest:.1f} on {os.cpu_count()} cores: other work slowed some measurements "
            "(the CPU-seconds model is robust to it; the wall seconds are not)"
        )
    print(
        f"assumptions: every core as fast as this machine's and no memory-bandwidth or cache "
        f"contention between concurrent jobs (already 2 workers used {1 / c['cpu_1_over_2']:.2f}x "
        f"the CPU of 1 worker here); enough independent jobs to fill the node; 16 workers at "
        f"parallel efficiency {c['efficiency16']:.2f} (the measured 2-worker value, not measured "
        f"at 16: optimistic), validation/setup/start-up serial while holding all the job's "
        f"cores; Snakemake's own scheduling, data preparation, the graph, search_select and "
        f"search_report are not included"
    )
    return train


# ---- the driver ------------------------------------------------------------------------------


def measure(args) -> pl.DataFrame:
    d = args.workdir / ("quick" if args.quick else "kuairec")
    d.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    info = prepare(d, settings, args.quick, args.reuse)
    print(f"data: {info}", flush=True)
    walks = write_all_walks(d, settings, args.reuse)
    rows = [
        {
            "kind": "walks",
            "role": "all",
            "length": length,
            "pernode": pernode,
            "workers": THREADS,
            "tokens": s["tokens"],
            "walks": s["walks"],
            "seconds": s["wall"],
            "cpu_seconds": s["cpu"],
            "load1_before": s["load1_before"],
            "load1_after": s["load1_after"],
        }
        for (length, pernode), s in walks.items()
    ]
    rows.append(startup_seconds())
    embeddings = None
    for role, cells in (("fit", FIT_CELLS), ("holdout", HOLDOUT_CELLS)):
        for cell in cells:
            row, path = train_cell(d, cell, walks, settings, args.epochs, THREADS, role)
            rows.append(row)
            embeddings = path if cell == HOLDOUT_CELLS[0] else embeddings
    for i, r in enumerate(rows):  # once more, the cells other work slowed down
        if r["kind"] == "train" and r["workers"] == THREADS and r["cpu_per_wall"] < 0.8 * THREADS:
            print("  (CPU/wall below 80 % of the workers: slowed by other work; measured again)")
            cell = (r["length"], r["pernode"], r["window"], r["negative"])
            rows[i], _ = train_cell(d, cell, walks, settings, args.epochs, THREADS, r["role"])
            rows[i]["remeasured"] = True
    for cell in ONE_WORKER_CELLS:  # back to back, so both see the same machine
        remeasured = False
        while True:
            pair = [
                train_cell(d, cell, walks, settings, args.epochs, workers, role)[0]
                for workers, role in ((1, "1worker"), (THREADS, "2workers"))
            ]
            if remeasured or pair[1]["cpu_per_wall"] >= 0.8 * THREADS:
                break
            print("  (the 2-worker half was slowed by other work; the pair is measured again)")
            remeasured = True
        rows.extend(dict(r, remeasured=remeasured) for r in pair)
    rows.append(evaluate_cell(d, embeddings, settings, ["valid"]))
    rows.append(evaluate_cell(d, embeddings, settings, ["valid", "test"]))
    return pl.from_dicts(rows, infer_schema_length=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mp2v4rec-search-cost"))
    parser.add_argument("--reuse", action="store_true", help="keep the data and walks in workdir")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measured cell")
    parser.add_argument(
        "--efficiency16",
        type=float,
        default=None,
        help="gensim speed-up at 16 workers / 16 (default: the measured 2-worker efficiency)",
    )
    parser.add_argument("--quick", action="store_true", help="small world, smoke test only")
    parser.add_argument("--analyse", action="store_true", help="only re-analyse --out's table")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    t_start = time.perf_counter()
    default = args.workdir / "quick/search_cost.tsv" if args.quick else RESULTS / "search_cost.tsv"
    out = args.out or default
    if args.analyse:
        df = pl.read_csv(out, separator="\t")
        df = df.select([c for c in df.columns if not c.startswith(("predicted", "wall_error"))])
        df = df.drop("error_pct", strict=False)
        if "cpu_per_wall" not in df.columns:  # tables written before the column existed
            df = df.with_columns(cpu_per_wall=pl.col("train_epoch_cpu_s") / pl.col("train_epoch_s"))
    else:
        df = measure(args)
    train = analyse(df, args.efficiency16)
    table = pl.concat([df.filter(pl.col("kind") != "train"), train], how="diagonal_relaxed")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(out, separator="\t", float_precision=4)
    print(
        f"\nwrote {out}; benchmark took {(time.perf_counter() - t_start) / 60:.1f} min, "
        f"load average now {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
