"""Training time, CPU time and peak memory of the baselines on KuaiRec-sized synthetic data.

(EASE, RP3beta and ItemKNN: their fit through the registry with config.yaml's settings; a run
with --methods keeps the other methods' rows of the results file.)

Generates configs/kuairec-synthetic.yaml's data (7,176 users, 10,728 videos, a 1,411-user
evaluated block) and preprocesses it, or reads an already prepared data folder (--data), then
runs each baseline with the study's settings (config.yaml) and records wall seconds, CPU
seconds, the process's peak RSS so far and validation Recall@100. UltraGCN is capped at
--ultragcn-epochs; its seconds per epoch give the projected time of the study's 50 epochs.
The 1-minute load average is reported since other jobs may share the cores.

    .venv/bin/python benchmarks/baselines.py [--data DIR] [--ultragcn-epochs 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

import implicit.cpu.als  # noqa: F401  (slow import, kept out of iALS's time)
import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from mp2v4rec.baselines.ials import train_ials
from mp2v4rec.baselines.simple import popularity_embeddings
from mp2v4rec.baselines.ultragcn import UltraGCNConfig, train_ultragcn
from mp2v4rec.baselines.userknn import userknn_recommend
from mp2v4rec.config import defaults
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.datasets.synthetic import write_synthetic_kuairec
from mp2v4rec.kinds import KINDS
from mp2v4rec.metrics import accuracy_metrics
from mp2v4rec.models import FitData
from mp2v4rec.recommend import rank_users, recs_frame, seen_matrix
from mp2v4rec.validation import Validator

ROOT = Path(__file__).resolve().parents[1]
K = 100
SYNTHETIC = dict(  # configs/kuairec-synthetic.yaml
    n_users=7176,
    n_items=10728,
    n_communities=32,
    interactions_per_user=340,
    small_users=1411,
    small_items=3327,
    social_users=0.066,
    friends_per_user=1,
    seed=0,
)
TABLES = ("train", "valid", "users")


class EpochClock(logging.Handler):
    """Records when train_ultragcn logs its setup line and each finished epoch."""

    def __init__(self):
        super().__init__()
        self.start = time.time()
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.times.append(record.created)


def load_data(data: Path | None) -> dict:
    if data is None:
        with tempfile.TemporaryDirectory(prefix="mp2v4rec-baselines-") as tmp:
            archive = Path(tmp) / "KuaiRec.zip"
            write_synthetic_kuairec(archive, **SYNTHETIC)
            p = preprocess_kuairec(archive)
        train, valid, users, n_items = p.train, p.valid, p.users, p.items.height
    else:
        train, valid, users = (pl.read_parquet(data / f"{t}.parquet") for t in TABLES)
        n_items = pl.read_parquet(data / "items.parquet").height
    evaluated = users.filter(pl.col("evaluated"))["user"].to_numpy().astype(np.int32)
    return dict(train=train, valid=valid, n_users=users.height, n_items=n_items, users=evaluated)


def run_ultragcn(d: dict, args) -> dict:
    log = logging.getLogger("benchmark.ultragcn")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(clock := EpochClock())
    cfg = UltraGCNConfig(epochs=args.ultragcn_epochs)
    _, _, curve = train_ultragcn(d["train"], d["n_users"], d["n_items"], d["valid"], cfg, log)
    per_epoch = (clock.times[-1] - clock.times[0]) / curve.height  # after the setup line
    setup = clock.times[0] - clock.start
    return {
        "recall": curve["valid_recall"].max(),
        "epochs": curve.height,
        "s_per_epoch": per_epoch,
        "projected_50_s": setup + 50 * per_epoch,
    }


def run_ials(d: dict, args) -> dict:
    _, _, curve = train_ials(
        d["train"],
        d["n_users"],
        d["n_items"],
        d["valid"],
        factors=64,
        regularization=0.01,
        iterations=15,
        alpha=10.0,
        threads=args.threads,
    )
    return {"recall": curve["valid_recall"].max(), "epochs": curve.height}


def run_userknn(d: dict, args) -> dict:
    items, scores = userknn_recommend(
        d["train"], d["n_users"], d["n_items"], d["users"], k_neighbors=1500, k=K
    )
    return {"recs": recs_frame(d["users"], items, scores)}


def run_popularity(d: dict, args) -> dict:
    return {"vectors": popularity_embeddings(d["train"], d["n_users"], d["n_items"])}


def item_item(kind: str):
    """EASE, RP3beta or ItemKNN with config.yaml's settings (the schema defaults), fitted
    through the registry; scored after the clock stops."""

    def run(d: dict, args) -> dict:
        settings = {"kind": kind, **defaults(kind)}
        data = FitData(d["train"], d["n_users"], d["n_items"], threads=args.threads)
        return {"model": KINDS[kind].fit_function()(data, settings)}

    return run


METHODS = {
    "ultragcn": run_ultragcn,
    "ials": run_ials,
    "userknn": run_userknn,
    "popularity": run_popularity,
    **{kind: item_item(kind) for kind in ("ease", "rp3b", "itemknn")},
}


def measure(name: str, d: dict, args) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    out = METHODS[name](d, args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if "recs" in out:  # scored after the clock stops
        table = accuracy_metrics(out.pop("recs"), d["valid"], [K])
        out["recall"] = table.filter(pl.col("metric") == "recall")["value"][0]
    elif "model" in out:
        model, seen = out.pop("model"), seen_matrix(d["train"], d["n_users"], d["n_items"])
        scorer = model.scorer(d["train"], d["n_users"], d["n_items"])
        ((items, scores),) = rank_users(
            scorer, d["users"], d["n_users"], d["n_items"], k=K, seen=seen
        )
        table = accuracy_metrics(recs_frame(d["users"], items, scores), d["valid"], [K])
        out["recall"] = table.filter(pl.col("metric") == "recall")["value"][0]
    elif "vectors" in out:
        users, items, score = out.pop("vectors")
        seen = seen_matrix(d["train"], d["n_users"], d["n_items"])
        out["recall"] = Validator(d["valid"], seen, k=K)(users, items, score)
    return {
        "method": name,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak_mb,
        "valid_recall@100": out.pop("recall"),
        "epochs": out.pop("epochs", None),
        "s_per_epoch": out.pop("s_per_epoch", None),
        "projected_50_s": out.pop("projected_50_s", None),
        "load_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="prepared data folder")
    parser.add_argument("--ultragcn-epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="iALS and BLAS threads")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/baselines.tsv")
    args = parser.parse_args()

    t0 = time.perf_counter()
    d = load_data(args.data)
    print(
        f"data: {d['n_users']} users, {d['n_items']} items, {d['train'].height} train pairs, "
        f"{d['valid'].height} valid pairs, {d['users'].size} evaluated users "
        f"({'generated' if args.data is None else args.data}, {time.perf_counter() - t0:.0f} s)"
    )
    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average at start: {load[0]:.2f} {load[1]:.2f}")
    with threadpool_limits(limits=args.threads):
        table = pl.DataFrame([measure(name, d, args) for name in args.methods])
    if args.out.exists():  # rows of methods not measured this time are kept
        kept = pl.read_csv(args.out, separator="\t").filter(~pl.col("method").is_in(args.methods))
        table = pl.concat([kept, table], how="vertical_relaxed")
    args.out.parent.mkdir(exist_ok=True)
    table.write_csv(args.out, separator="\t", float_precision=4)
    with pl.Config(tbl_rows=20, tbl_width_chars=160, tbl_cols=20, float_precision=3):
        print(table)
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min); wrote {args.out}")


if __name__ == "__main__":
    main()
