"""Every method on real behaviour, tuned on validation with one budget, reported on test.

    .venv/bin/python benchmarks/realdata.py [--archive PATH] [--budget 32] [--refine 32]
        [--seeds 0 1 2] [--only METHOD ...]  # --only: search these again, keep the others' trials

Data: the MovieLens archive in KuaiRec layout (``../shared/data/movielens-small-kuairec.zip``,
read its README); the script exits cleanly (status 0, one line) when it is absent.

Search: every tuned method (MP2V, R-MP2V, W2V, iALS, UltraGCN, UserKNN) gets the same budget in
two rounds. Round 1: its configuration from ``config.yaml`` (the study's) plus ``budget - 1``
configurations drawn at random (seeded) from its search space below, or all of them when the
space is smaller. Round 2 (``--refine``): that many configurations drawn among the neighbours of
the round-1 winner (one or two settings changed, also along ``REFINE_EXTRA``'s axes). MP2V and
R-MP2V have two trainers: each trainer is an arm with half of each round's budget and its own
round-2 neighbourhood, so the trainers are compared on equal terms. Each is
fitted once (seed 0) and scored by validation Recall@50 under the workflow's default protocol
(all unseen items as candidates, train items and test pairs masked, cold pairs excluded);
trained methods keep their best validation epoch, as in the workflow. The test split is never
read before selection.

Report: the winner of each method (and, as ``method.trainer``, the best of its other trainer) is
refitted with every ``--seeds`` seed (the seed of walks,
initialisation and training order) and evaluated on test under two protocols: ``default``
(as above) and ``study`` (train items masked only, cold pairs included: the study's). Per method
and protocol: Recall@50 and NDCG@50 as the mean over seeds of the mean over users, a 95 %
bootstrap CI over users of the seed-averaged per-user values, the spread over seeds, and paired
bootstrap tests against popularity and against the tuned iALS on the same users.

Writes ``benchmarks/results/realdata_search.tsv`` (every configuration tried, with its
validation Recall@50 and fit seconds) and ``benchmarks/results/realdata.tsv``, and prints both.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from mp2v4rec.config import validate_config
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.evaluation import score_split
from mp2v4rec.io import InputError
from mp2v4rec.methods import fit_method
from mp2v4rec.stats import bootstrap_ci, paired_test

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared/data/movielens-small-kuairec.zip"
OUT = ROOT / "benchmarks/results"
K = 50

# per method: axis -> values; an axis of a dict maps a conditioning value to its own choices
MP2V_SPACE = {
    "trainer": ["gensim", "shared"],
    "window": [1, 2, 3, 5, 8],
    "epochs": [5, 10, 20, 40],
    "dim": [32, 64, 128],
    "negative": [3, 5, 10, 20],
    "ns_exponent": [0.0, 0.5, 0.75, 1.0],
    "sample": {"gensim": [0.0, 1e-4, 1e-3], "shared": [0.0]},
    "alpha": {"gensim": [0.025], "shared": [0.01, 0.025, 0.05]},
    "score": {"gensim": ["cosine", "dot", "context"], "shared": ["dot", "cosine"]},
    "optimizer": {"gensim": [None], "shared": ["adam", "sgd"]},
    "typed_negatives": {"gensim": [None], "shared": [True, False]},
}
SPACES = {
    "mp2v": MP2V_SPACE,
    "rmp2v": MP2V_SPACE,
    "w2v": {
        "window": [3, 5, 15],
        "epochs": [10, 30, 75],
        "dim": [32, 64, 128],
        "negative": [5, 10, 20],
        "sample": [0.0, 1e-4, 1e-3],
        "ns_exponent": [0.0, 0.5, 0.75, 1.0],
        "score": ["cosine", "dot", "context"],
    },
    "ials": {
        "factors": [32, 64, 128, 256],
        "regularization": [0.01, 0.1, 1.0, 10.0, 100.0],
        "alpha": [1.0, 3.0, 10.0, 30.0],
        "iterations": [15, 30],
        "binary": [False, True],
    },
    "ultragcn": {
        "dim": [32, 64, 128],
        "lr": [0.001, 0.005, 0.01],
        "gamma": [0.0001, 0.001, 0.01],
        "lambda": [0.0001, 0.001, 0.01],
        "negative_num": [1, 5, 20],
        "negative_weight": [1.0, 10.0, 50.0],
        "batch_size": [1024, 4096],
        "epochs": [100],
    },
    "userknn": {"k_neighbors": [10, 20, 50, 100, 200, 400, 670], "weighted": [False, True]},
}
# the refinement round may also move these (walk quantity and longer training for the walk
# methods, whose keep-best-epoch makes more epochs safe)
REFINE_EXTRA = {
    "mp2v": {
        "walks_per_node": [5, 10, 20, 40],
        "walk_length": [10, 15, 30],
        "epochs": [5, 10, 20, 40, 80],
    },
    "w2v": {"epochs": [10, 30, 75, 150]},
    "ials": {"iterations": [15, 30, 60]},
    "ultragcn": {"epochs": [100, 200]},
}
REFINE_EXTRA["rmp2v"] = REFINE_EXTRA["mp2v"]
REFERENCES = ("popularity", "random")
PROTOCOLS = ("default", "study")


def configurations(space: dict, budget: int, seed: int) -> list[dict]:
    """Up to ``budget`` distinct draws from ``space`` (all of it when smaller), seeded."""
    conditioned = [a for a, v in space.items() if isinstance(v, dict)]
    plain = [a for a in space if a not in conditioned]
    every = []
    for values in itertools.product(*(space[a] for a in plain)):
        base = dict(zip(plain, values, strict=True))
        key = base.get("trainer")
        for cond in itertools.product(*(space[a][key] for a in conditioned)):
            config = {**base, **dict(zip(conditioned, cond, strict=True))}
            every.append({a: v for a, v in config.items() if v is not None})
    if len(every) <= budget:
        return every
    pick = np.random.default_rng(seed).choice(len(every), size=budget, replace=False)
    return [every[i] for i in sorted(pick)]


def study_config() -> dict:
    """config.yaml, validated: the study's settings with every schema default filled in."""
    return validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def settings_for(config: dict, method: str, overrides: dict) -> dict:
    """The method's validated settings with ``overrides`` applied (checked by the schema)."""
    trial = {
        "datasets": config["datasets"],
        "metapaths": config["metapaths"],
        "methods": {method: {**config["methods"][method], **overrides}},
        "evaluate": {"reference_method": None},
        "plots": {"pca_methods": []},
    }
    return validate_config(trial)["methods"][method]


def per_user(data, fitted, split: str, protocol: str, users: np.ndarray) -> tuple:
    """(users, recall@K, ndcg@K) per evaluated user with a positive of ``split``."""
    who, values = score_split(
        fitted.scorer,
        data,
        users,
        split=split,
        ks=[K],
        cold="exclude" if protocol == "default" else "include",
        mask_other=protocol == "default",
    )
    return who, values["recall"][:, 0], values["ndcg"][:, 0]


def fit(data, config: dict, method: str, settings: dict, threads: int):
    started = time.perf_counter()
    fitted = fit_method(
        data, settings, metapaths=config["metapaths"], validation_k=K, threads=threads
    )
    return fitted, time.perf_counter() - started


def trial(data, config, users, method: str, overrides: dict, threads: int) -> dict:
    """Fit one configuration (seed 0) and score it on validation; a diverging one is failed."""
    try:
        settings = settings_for(config, method, overrides)
        fitted, seconds = fit(data, config, method, settings, threads)
        recall = float(per_user(data, fitted, "valid", "default", users)[1].mean())
    except InputError as err:  # e.g. a learning rate that diverges: a failed trial
        recall, seconds = float("nan"), float("nan")
        print(f"{method:10s} failed: {err}")
    print(f"{method:10s} valid R@{K} {recall:.4f} {seconds:6.1f}s {overrides}", flush=True)
    return {
        "method": method,
        "overrides": json.dumps(overrides, sort_keys=True),
        "valid_recall": recall,
        "seconds": round(seconds, 2),
    }


def arms(space: dict) -> dict[str | None, dict]:
    """The space split by trainer (each trainer an arm with its own share of the budget, so the
    trainers are compared on equal terms), or one arm when there is no trainer axis."""
    if "trainer" not in space:
        return {None: space}
    return {t: {**space, "trainer": [t]} for t in space["trainer"]}


def arm_of(config: dict, method: str, overrides: dict) -> str | None:
    """The trainer a trial ran with (config.yaml's when the overrides do not set one)."""
    if "trainer" not in SPACES[method]:
        return None
    return overrides.get("trainer") or settings_for(config, method, {})["trainer"]


def search(data, config, users, budget: int, threads: int, methods) -> pl.DataFrame:
    """Round 1 for every method in ``methods``: config.yaml's settings plus random draws, ``budget``
    trials in all, shared equally among the arms (config.yaml's settings count for theirs)."""
    rows = []
    for method in methods:
        split = arms(SPACES[method])
        home = arm_of(config, method, {})
        for arm, space in split.items():
            share = budget // len(split) - (arm == home)
            draws = [c for c in configurations(space, share, seed=0) if c]
            for overrides in [{}] * (arm == home) + draws:  # {}: config.yaml's settings
                rows.append(trial(data, config, users, method, overrides, threads))
    return pl.DataFrame(rows).with_columns(round=pl.lit(1))


def neighbours(space: dict, extra: dict, best: dict) -> list[dict]:
    """Every configuration one or two axes away from ``best`` (values from the space and the
    refinement axes; the trainer stays, conditioned axes follow it)."""
    trainer = best.get("trainer")
    choices = {}
    for axis, values in {**space, **extra}.items():
        if isinstance(values, dict):
            values = values[trainer]
        if axis in extra and axis in space and not isinstance(space[axis], dict):
            values = sorted(set(space[axis]) | set(extra[axis]))
        choices[axis] = [v for v in values if v is not None]
    axes = [a for a in choices if len(choices[a]) > 1 and a != "trainer"]
    out = []
    for n in (1, 2):
        for moved in itertools.combinations(axes, n):
            for values in itertools.product(*(choices[a] for a in moved)):
                if all(best.get(a) != v for a, v in zip(moved, values, strict=True)):
                    out.append({**best, **dict(zip(moved, values, strict=True))})
    return out


def arm_best(config, method: str, tried: pl.DataFrame) -> dict[str | None, dict]:
    """Per arm, the overrides of its trial with the highest validation recall; the arms in
    order of that recall, best first."""
    best = {}
    ranked = tried.filter(pl.col("method") == method).drop_nans("valid_recall")
    for overrides in ranked.sort("valid_recall", descending=True)["overrides"]:
        overrides = json.loads(overrides)
        best.setdefault(arm_of(config, method, overrides), overrides)
    return best


def refine(data, config, users, tried: pl.DataFrame, budget: int, threads: int, methods):
    """Round 2: ``budget`` configurations per method, shared equally among its arms, drawn
    (seeded) among the neighbours of each arm's round-1 winner."""
    rows = []
    for method in methods:
        space = SPACES[method]
        done = tried.filter(pl.col("method") == method)
        seen = {json.dumps(o, sort_keys=True) for o in done["overrides"]}
        winners = arm_best(config, method, done)
        for best in winners.values():
            if not best:  # config.yaml's settings won: start from their values on the axes
                settings = settings_for(config, method, {})
                best = {a: settings[a] for a in space if a in settings}
            pool = neighbours(space, REFINE_EXTRA.get(method, {}), best)
            pool = [o for o in pool if json.dumps(o, sort_keys=True) not in seen]
            pick = np.random.default_rng(1).permutation(len(pool))[: budget // len(winners)]
            for i in sorted(pick):
                rows.append(trial(data, config, users, method, pool[i], threads))
    return pl.DataFrame(rows).with_columns(round=pl.lit(2))


def selected(config, tried: pl.DataFrame) -> dict[str, tuple[str, dict]]:
    """Label -> (method, overrides): each method's validation winner under its own name, and
    the best of each of its other arms as ``method.arm`` (the trainer comparison)."""
    winners = {}
    for method in tried["method"].unique(maintain_order=True):
        best = arm_best(config, method, tried)
        top = next(iter(best))  # the arm of the method's best trial
        winners[method] = (method, best[top])
        winners |= {f"{method}.{arm}": (method, o) for arm, o in best.items() if arm != top}
    return winners | {ref: (ref, {}) for ref in REFERENCES}


def report(data, config, users, winners: dict, seeds: list[int], threads: int) -> pl.DataFrame:
    """Every selected configuration refitted with each seed and scored on test."""
    values = {}  # (label, protocol) -> (users, recall [seeds, users], ndcg [seeds, users])
    for label, (method, overrides) in winners.items():
        runs = {protocol: ([], []) for protocol in PROTOCOLS}
        for seed in seeds:
            settings = settings_for(config, method, overrides)
            if "seed" in settings:  # popularity and UserKNN have no randomness
                settings["seed"] = seed
            fitted, _ = fit(data, config, method, settings, threads)
            for protocol, (recalls, ndcgs) in runs.items():
                who, recall, ndcg = per_user(data, fitted, "test", protocol, users)
                recalls.append(recall)
                ndcgs.append(ndcg)
        for protocol, (recalls, ndcgs) in runs.items():
            values[label, protocol] = (who, np.array(recalls), np.array(ndcgs))
    rows = []
    for (label, protocol), (who, recall, ndcg) in values.items():
        row = {"method": label, "protocol": protocol, "n_users": int(who.size)}
        for name, arr in (("recall", recall), ("ndcg", ndcg)):
            mean, low, high = bootstrap_ci(arr.mean(axis=0))
            row |= {f"{name}@{K}": mean, f"{name}_low": low, f"{name}_high": high}
        row["recall_seed_sd"] = float(recall.mean(axis=1).std(ddof=1)) if len(seeds) > 1 else 0.0
        for ref in ("popularity", "ials"):
            test = paired_test(recall.mean(axis=0), values[ref, protocol][1].mean(axis=0))
            row |= {f"diff_vs_{ref}": test["diff"], f"p_vs_{ref}": test["p_value"]}
        rows.append(row)
    return pl.DataFrame(rows).sort("protocol", f"recall@{K}", descending=[False, True])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine", type=int, default=32, help="round-2 trials per method")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SPACES),
        help="search only these methods again; the others' trials come from the search tsv",
    )
    args = parser.parse_args()
    if not args.archive.exists():
        print(f"skipped: {args.archive} is absent (see ../shared/data/README.md)")
        return 0
    config = study_config()
    data = preprocess_kuairec(args.archive)
    users = data.users.filter("evaluated")["user"].to_numpy()
    print(
        f"{data.users.height} users, {data.items.height} items, {data.train.height} train "
        f"positives, {users.size} evaluated users, {data.stats['eval_cold_pairs']} cold pairs"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "realdata_search.tsv"
    methods = args.only or list(SPACES)
    kept = None
    if args.only:
        kept = pl.read_csv(path, separator="\t").filter(~pl.col("method").is_in(methods))
    tried = search(data, config, users, args.budget, args.threads, methods)
    if args.refine:
        tried = pl.concat(
            [tried, refine(data, config, users, tried, args.refine, args.threads, methods)]
        )
    if kept is not None:
        order = {m: i for i, m in enumerate(SPACES)}
        tried = pl.concat([kept, tried], how="vertical_relaxed").sort(
            pl.col("method").replace_strict(order), "round", maintain_order=True
        )
    tried.write_csv(path, separator="\t")
    winners = selected(config, tried)
    for label, (_, overrides) in winners.items():
        print(f"selected {label:14s} {overrides}")
    table = report(data, config, users, winners, args.seeds, args.threads)
    chosen = {label: json.dumps(o, sort_keys=True) for label, (_, o) in winners.items()}
    table = table.with_columns(selected=pl.col("method").replace_strict(chosen))
    table.write_csv(OUT / "realdata.tsv", separator="\t", float_precision=4)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=200, float_precision=4):
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
