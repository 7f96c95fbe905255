"""The real-data verdict: every method tuned on validation with the same number of distinct
configurations, selections frozen, test scored once, then confirmed on fresh splits.

    .venv/bin/python benchmarks/realdata.py [--datasets movielens ciaodvd] [--budget 24]
        [--seeds 0 1 2] [--resplits 2] [--stages search select test confirm social report]

Data: the KuaiRec-layout archives of ``../shared/data`` (read its README); a dataset whose
archive is absent is skipped with one line (status 0).

Protocol, fixed before any run (the order of ``--stages``; each stage only reads what the ones
before it wrote):

1. search: every tuned method gets ``--budget`` distinct configurations (distinct after the
   schema fills in defaults; a space with fewer points is searched whole, and the table says
   so). Round 1: config.yaml's settings plus seeded random draws, half the budget; round 2:
   seeded draws among the neighbours of the round-1 winner (one or two settings moved) that
   were never tried. MP2V and R-MP2V have two trainers: each is an arm with half of each round.
   Each configuration is fitted once (seed 0) and scored by validation Recall@50 (validation
   lists mask train only; cold pairs excluded); trained methods keep their best validation
   epoch. Trials are appended to ``realdata/trials-{dataset}.jsonl`` as they finish, so an
   interrupted search resumes where it stopped.
2. select: each method's validation winner (and each other trainer's, as ``method.trainer``)
   is frozen to ``realdata_selected.json`` with the digest of the trials it was chosen from.
   Test is refused while a selection is missing or the trials changed since.
3. test: the frozen selections refitted with every seed on the selection split and scored on
   test once (test lists mask train and validation).
4. confirm: the same on ``--resplits`` fresh splits (``mp2v4rec.datasets.resplit``: new
   evaluation users, new hold-outs), never seen by selection.
5. social (datasets with friendships): the selected MP2V / R-MP2V settings under metapath
   UV / UUV x uniform / weighted walks x random / W2V initialisation, every seed and split.
6. report: ``realdata.tsv`` (per dataset and method), ``realdata_search.tsv`` (every trial),
   ``realdata_tests.tsv`` (the pre-registered paired comparisons, sign-flip p-values with their
   floor, Holm-adjusted over the whole table: every dataset, split and metric),
   ``realdata_mattered.tsv`` (mean validation Recall@50 per setting value over round-1 random
   draws), ``realdata_social.tsv``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from mp2v4rec.config import validate_config
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.datasets.resplit import fresh_archive
from mp2v4rec.evaluation import score_split
from mp2v4rec.io import InputError, atomic_path
from mp2v4rec.methods import fit_method
from mp2v4rec.models import save_embeddings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared/data"
ARCHIVES = {
    "movielens": SHARED / "movielens-small-kuairec.zip",
    "ciaodvd": SHARED / "ciaodvd-kuairec.zip",
}
OUT = ROOT / "benchmarks/results"
WORK = OUT / "realdata"  # resumable state: trials, per-user test values
CACHE = ROOT / "resources/realdata"  # fresh-split archives (rebuilt from the seed when absent)
K = 50
FLIPS = 100_000  # sign flips per paired test: p-values resolve 1e-5

MP2V_SPACE = {
    "trainer": ["gensim", "shared"],
    "window": [1, 2, 3, 5, 8],
    "epochs": [5, 10, 20, 40],
    "dim": [32, 64, 128],
    "negative": [3, 5, 10, 20],
    "ns_exponent": [-0.5, 0.0, 0.5, 0.75, 1.0],
    "sample": {"gensim": [0.0, 1e-5, 1e-4, 1e-3], "shared": [0.0]},
    "alpha": {"gensim": [0.025], "shared": [0.01, 0.025, 0.05]},
    "score": {"gensim": ["cosine", "dot", "context"], "shared": ["dot", "cosine"]},
    "optimizer": {"gensim": [None], "shared": ["adam", "sgd"]},
    "typed_negatives": {"gensim": [None], "shared": [True, False]},
}
SPACES = {
    "mp2v": MP2V_SPACE,
    "rmp2v": MP2V_SPACE,
    "w2v": {
        "window": [2, 3, 5, 15],
        "epochs": [10, 30, 75, 150],
        "dim": [32, 64, 128],
        "negative": [5, 10, 20],
        "sample": [0.0, 1e-5, 1e-4, 1e-3],
        "ns_exponent": [-0.5, 0.0, 0.5, 0.75, 1.0],
        "score": ["cosine", "dot", "context"],
    },
    # iALS and UltraGCN keep their best validation iteration / epoch, so a cap on iterations or
    # epochs is not a setting of its own (runs with a lower cap are prefixes of runs with a
    # higher one): the cap is fixed (FIXED) and the budget goes to real settings
    "ials": {
        "factors": [32, 64, 128, 256],
        "regularization": [0.01, 0.1, 1.0, 10.0, 100.0],
        "alpha": [1.0, 3.0, 10.0, 30.0],
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
    },
    # no value above 400 but config.yaml's 1500 (every neighbour on MovieLens's 671 users)
    "userknn": {"k_neighbors": [5, 10, 20, 50, 100, 200, 400], "weighted": [False, True]},
    "ease": {"l2": [float(f"{v:.3g}") for v in np.geomspace(1.0, 30_000.0, 24)]},
    "rp3b": {
        "alpha": [0.25, 0.5, 0.75, 1.0, 1.25],
        "beta": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "k_neighbors": [50, 100, 200, 500, None],
    },
    "itemknn": {
        "k_neighbors": [10, 20, 50, 100, 200, 500, 1000],
        "shrink": [0.0, 10.0, 100.0, 500.0],
    },
}
# the refinement round may also move these (walk quantity and longer training)
REFINE_EXTRA = {
    "mp2v": {
        "walks_per_node": [5, 10, 20, 40],
        "walk_length": [10, 15, 30],
        "epochs": [5, 10, 20, 40, 80],
    },
    "w2v": {"epochs": [10, 30, 75, 150]},
}
FIXED = {"ials": {"iterations": 60}, "ultragcn": {"epochs": 200}}  # caps with keep-best
REFINE_EXTRA["rmp2v"] = REFINE_EXTRA["mp2v"]
WALK_METHODS = ("mp2v", "rmp2v")
REFERENCES = ("popularity", "random")
BASELINES = ("ials", "ultragcn", "userknn", "ease", "rp3b", "itemknn", "popularity")
SOCIAL_GRID = {"metapath": ["UV", "UUV"], "sampling": ["uniform", "weighted"]}
SOCIAL_GRID["init"] = ["random", "w2v"]


# ---- configurations ---------------------------------------------------------------------------


def study_config() -> dict:
    """config.yaml, validated: the study's settings with every schema default filled in."""
    return validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def settings_for(config: dict, method: str, overrides: dict) -> dict:
    """The method's validated settings with ``overrides`` applied (checked by the schema;
    config.yaml's W2V comes along at the method's dimension, as the start of ``init: w2v``)."""
    own = {**config["methods"][method], **FIXED.get(method, {}), **overrides}
    start = {**config["methods"]["w2v"], "dim": own.get("dim", config["methods"]["w2v"]["dim"])}
    trial = {
        "datasets": config["datasets"],
        "metapaths": config["metapaths"],
        "methods": {"w2v": start, method: own},
        "evaluate": {"reference_method": None},
        "plots": {"pca_methods": []},
    }
    return validate_config(trial)["methods"][method]


def key_of(config: dict, method: str, overrides: dict) -> str:
    """A configuration's identity: its full settings (so config.yaml's settings and a draw
    that happens to equal them are one configuration)."""
    return json.dumps(settings_for(config, method, overrides), sort_keys=True)


def space_for(method: str, social: bool) -> dict:
    """The method's space; on a dataset with friendships the walk methods also search the
    metapath (the study's UUV)."""
    space = dict(SPACES[method])
    if social and method in WALK_METHODS:
        space["metapath"] = ["UV", "UUV"]
    return space


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
            every.append({a: v for a, v in config.items() if v is not None or a == "k_neighbors"})
    if len(every) <= budget:
        return every
    pick = np.random.default_rng(seed).choice(len(every), size=budget, replace=False)
    return [every[i] for i in sorted(pick)]


def arms(space: dict) -> dict[str | None, dict]:
    """The space split by trainer (each trainer an arm with its own share of the budget), or
    one arm when there is no trainer axis."""
    if "trainer" not in space:
        return {None: space}
    return {t: {**space, "trainer": [t]} for t in space["trainer"]}


def neighbours(space: dict, extra: dict, best: dict) -> list[dict]:
    """Every configuration one or two axes away from ``best`` (values from the space and the
    refinement axes; the trainer stays, conditioned axes follow it)."""
    trainer = best.get("trainer")
    choices = {}
    for axis, values in {**space, **extra}.items():
        if isinstance(values, dict):
            values = values[trainer]
        if axis in extra and axis in space and not isinstance(space[axis], dict):
            values = sorted(set(space[axis]) | set(extra[axis]), key=str)
        choices[axis] = [v for v in values if v is not None or axis == "k_neighbors"]
    axes = [a for a in choices if len(choices[a]) > 1 and a != "trainer"]
    out = []
    for n in (1, 2):
        for moved in itertools.combinations(axes, n):
            for values in itertools.product(*(choices[a] for a in moved)):
                if all(best.get(a) != v for a, v in zip(moved, values, strict=True)):
                    out.append({**best, **dict(zip(moved, values, strict=True))})
    return out


# ---- trials -----------------------------------------------------------------------------------


class Trials:
    """The search's trials of one dataset, appended to a JSON-lines file as they finish."""

    def __init__(self, path: Path, config: dict):
        self.path, self.config = path, config
        self.rows = []
        for line in path.open() if path.exists() else []:
            try:
                self.rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by an interrupted write: not a trial
                print(f"{path}: skipped a torn line {line[:60]!r}")

    def keys(self, method: str) -> set[str]:
        return {r["key"] for r in self.rows if r["method"] == method}

    def of(self, method: str, round_: int | None = None) -> list[dict]:
        return [r for r in self.rows if r["method"] == method and round_ in (None, r["round"])]

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.exists() else ""


def valid_recall(data, config, method, overrides, threads) -> tuple[float, float]:
    """Fit one configuration (seed 0) and score validation; a diverging one is a failure."""
    started = time.perf_counter()
    try:
        fitted = fit(data, config, method, settings_for(config, method, overrides), threads)
        users = data.users.filter("evaluated")["user"].to_numpy()
        _, values = score_split(fitted.scorer, data, users, split="valid", ks=[K])
        return float(values["recall"][:, 0].mean()), time.perf_counter() - started
    except InputError as err:  # e.g. a learning rate that diverges: a failed trial
        print(f"{method:10s} failed: {err}", flush=True)
        return float("nan"), time.perf_counter() - started


def fit(data, config, method: str, settings: dict, threads: int, init=None):
    return fit_method(
        data, settings, metapaths=config["metapaths"], validation_k=K, threads=threads, init=init
    )


def run_trial(trials: Trials, data, method, overrides, round_, arm, threads) -> None:
    key = key_of(trials.config, method, overrides)
    if key in trials.keys(method):
        return
    recall, seconds = valid_recall(data, trials.config, method, overrides, threads)
    print(
        f"{method:10s} r{round_} valid R@{K} {recall:.4f} {seconds:6.1f}s {overrides}", flush=True
    )
    trials.add(
        {
            "method": method,
            "arm": arm,
            "round": round_,
            "overrides": overrides,
            "key": key,
            "valid_recall": recall,
            "seconds": round(seconds, 2),
        }
    )


def arm_of(config: dict, method: str, overrides: dict) -> str | None:
    if "trainer" not in SPACES[method]:
        return None
    return overrides.get("trainer") or settings_for(config, method, {})["trainer"]


def best_of(rows: list[dict]) -> dict | None:
    """The row with the highest validation recall (first such row on ties); None if none."""
    scored = [r for r in rows if not np.isnan(r["valid_recall"])]
    return max(scored, key=lambda r: r["valid_recall"]) if scored else None


def search_method(trials: Trials, data, method: str, budget: int, social: bool, threads: int):
    """Both rounds of one method, ``budget`` distinct configurations in all (shared equally
    among its arms; round 1 takes half, config.yaml's settings count for their arm)."""
    config, space = trials.config, space_for(method, social)
    split = arms(space)
    home = arm_of(config, method, {})
    for arm, sub in split.items():
        share = budget // len(split)
        first = [{}] * (arm == home) + configurations(sub, share // 2, seed=0)
        distinct = list({key_of(config, method, o): o for o in first}.values())[: share // 2]
        for overrides in distinct:
            run_trial(trials, data, method, overrides, 1, arm, threads)
        winner = best_of([r for r in trials.of(method, 1) if r["arm"] == arm])
        best = dict(winner["overrides"]) if winner else ({"trainer": arm} if arm else {})
        settings = settings_for(config, method, best)
        best = {a: settings[a] for a in space if a in settings} | best
        pool = neighbours(sub, REFINE_EXTRA.get(method, {}), best)
        rng = np.random.default_rng(1)
        for i in rng.permutation(len(pool)):
            done = [r for r in trials.of(method) if r["arm"] == arm]
            if len(done) >= share:
                break
            if key_of(config, method, pool[i]) not in trials.keys(method):
                run_trial(trials, data, method, pool[i], 2, arm, threads)


# ---- selection, test, confirmation ------------------------------------------------------------


def select(trials: Trials) -> dict:
    """Label -> frozen choice: each method's winner under its own name, the best of its other
    arm as ``method.arm``; popularity and random as they are. ``distinct`` counts the method's
    (for an arm label, the arm's) configurations, ``failed`` those that diverged."""
    chosen = {}
    for method in SPACES:
        rows = trials.of(method)
        best = best_of(rows)
        if best is None:
            continue
        chosen[method] = choice(method, best, rows)
        for arm in sorted({r["arm"] for r in rows} - {best["arm"], None}):
            mine = [r for r in rows if r["arm"] == arm]
            top = best_of(mine)
            if top is not None:
                chosen[f"{method}.{arm}"] = choice(method, top, mine)
    for ref in REFERENCES:
        chosen[ref] = {"method": ref, "arm": None, "overrides": {}, "valid_recall": None}
        chosen[ref] |= {"distinct": 0, "failed": 0}
    return chosen


def choice(method: str, top: dict, rows: list[dict]) -> dict:
    return {
        "method": method,
        "arm": top["arm"],
        "overrides": top["overrides"],
        "valid_recall": top["valid_recall"],
        "distinct": len(rows),
        "failed": int(sum(np.isnan(r["valid_recall"]) for r in rows)),
    }


def space_size(method: str, social: bool) -> int:
    """Points of a method's space (config.yaml's settings may add one)."""
    return len(configurations(space_for(method, social), 10**7, seed=0))


def check_budgets(trials: Trials, budget: int, social: bool, dataset: str, methods) -> None:
    """Selection waits for every method's full budget (or whole space)."""
    short = []
    for method in methods:
        want = min(budget, space_size(method, social))
        if len(trials.of(method)) < want:
            short.append(f"{method} {len(trials.of(method))}/{want}")
    if short:
        raise SystemExit(
            f"{dataset}: the search is not finished ({', '.join(short)}); run the search stage "
            "to the end before selecting"
        )


def entry_id(config: dict, entry: dict) -> str:
    """A short digest of a frozen choice's full settings: cached test runs belong to it."""
    key = key_of(config, entry["method"], entry["overrides"])
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def run_path(dataset: str, split: int, label: str, seed: int, run_id: str) -> Path:
    return WORK / "runs" / dataset / f"split{split}" / f"{label}.{run_id}.seed{seed}.npz"


def test_run(data, config, entry: dict, seed: int, threads: int, init=None) -> dict:
    """Fit a frozen choice with ``seed`` and score test: per-user recall and NDCG@50; a fit that
    diverges is recorded as failed (empty values), not retried."""
    settings = settings_for(config, entry["method"], entry["overrides"])
    if "seed" in settings:  # popularity and the neighbourhood models have no randomness
        settings["seed"] = seed
    started = time.perf_counter()
    users = data.users.filter("evaluated")["user"].to_numpy()
    try:
        fitted = fit(data, config, entry["method"], settings, threads, init=init)
    except InputError as err:
        print(f"failed: {entry['method']} seed {seed}: {err}", flush=True)
        empty = np.zeros(0)
        return {
            "users": empty.astype(np.int64),
            "recall": empty,
            "ndcg": empty,
            "seconds": np.array(time.perf_counter() - started),
            "failed": np.array(1),
        }
    who, values = score_split(fitted.scorer, data, users, split="test", ks=[K])
    return {
        "users": who,
        "recall": values["recall"][:, 0],
        "ndcg": values["ndcg"][:, 0],
        "seconds": np.array(time.perf_counter() - started),
        "failed": np.array(0),
    }


def cached_run(path: Path, compute) -> dict:
    """A run's per-user values from its file, or computed and written (atomically)."""
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    out = compute()
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **out)
    return out


def split_data(dataset: str, split: int, parts: int):
    """Split 0 is the archive as it is (the selection split); split r > 0 is the fresh split
    r - 1 of ``parts`` disjoint ones (``mp2v4rec.datasets.resplit``)."""
    if split == 0:
        return preprocess_kuairec(ARCHIVES[dataset])
    return preprocess_kuairec(fresh_archive(ARCHIVES[dataset], CACHE, split - 1, parts))


def mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def evaluate_frozen(dataset, config, chosen, splits, seeds, threads, parts) -> None:
    for split in splits:
        data = None
        for label, entry in chosen.items():
            for seed in seeds:
                path = run_path(dataset, split, label, seed, entry_id(config, entry))
                if path.exists():
                    continue
                data = data if data is not None else split_data(dataset, split, parts)
                out = cached_run(path, lambda: test_run(data, config, entry, seed, threads))  # noqa: B023
                print(
                    f"{dataset} split{split} {label:14s} seed {seed} test R@{K} "
                    f"{mean_or_nan(out['recall']):.4f} ({float(out['seconds']):.1f}s)",
                    flush=True,
                )


# ---- the social ablation ----------------------------------------------------------------------


def social_cells(chosen: dict) -> list[tuple[str, dict]]:
    """(label, entry) of every ablation cell: the best gensim settings of MP2V and of R-MP2V
    (the method's winner, or its ``.gensim`` arm when the one-table trainer won: only gensim
    can start from W2V vectors) under every metapath x sampling x initialisation."""
    cells = []
    for method in WALK_METHODS:
        base = chosen.get(method)
        if base is not None and base.get("arm") == "shared":
            base = chosen.get(f"{method}.gensim")
        if base is None:
            continue
        for values in itertools.product(*SOCIAL_GRID.values()):
            cell = dict(zip(SOCIAL_GRID, values, strict=True))
            label = f"{method}." + ".".join(f"{k}-{v}" for k, v in cell.items())
            cells.append((label, base | {"overrides": {**base["overrides"], **cell}}))
    return cells


def social_ablation(dataset, config, chosen, splits, seeds, threads, parts) -> None:
    for split in splits:
        data = None
        for label, entry in social_cells(chosen):
            for seed in seeds:
                path = run_path(dataset, split, "social." + label, seed, entry_id(config, entry))
                if path.exists():
                    continue
                data = data if data is not None else split_data(dataset, split, parts)
                with tempfile.TemporaryDirectory() as tmp:
                    out = cached_run(
                        path,
                        lambda: social_run(data, config, entry, seed, threads, Path(tmp)),  # noqa: B023
                    )
                print(
                    f"{dataset} split{split} social {label} seed {seed} test R@{K} "
                    f"{mean_or_nan(out['recall']):.4f}",
                    flush=True,
                )


def social_run(data, config, entry: dict, seed: int, threads: int, tmp: Path) -> dict:
    """One ablation cell's test run; a W2V start is fitted first and its time counted."""
    started, init = time.perf_counter(), None
    if entry["overrides"]["init"] == "w2v":
        init = w2v_start(data, config, entry, seed, threads, tmp)
    out = test_run(data, config, entry, seed, threads, init)
    return out | {"seconds": np.array(time.perf_counter() - started)}


def w2v_start(data, config, entry, seed, threads, tmp: Path) -> Path:
    """The study's W2V (config.yaml's settings) at the cell's dimension, as a start file."""
    dim = settings_for(config, entry["method"], entry["overrides"])["dim"]
    fitted = fit(
        data, config, "w2v", settings_for(config, "w2v", {"dim": dim, "seed": seed}), threads
    )
    path = tmp / "w2v.npz"
    save_embeddings(path, fitted.user_vectors, fitted.item_vectors, fitted.score)
    return path


def main() -> int:
    from realdata_report import report  # the tables (benchmarks/realdata_report.py)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(ARCHIVES), choices=list(ARCHIVES))
    parser.add_argument("--budget", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--resplits", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(SPACES), choices=list(SPACES))
    stages = ["search", "select", "test", "confirm", "social", "report"]
    parser.add_argument("--stages", nargs="+", default=stages, choices=stages)
    args = parser.parse_args()
    config = study_config()
    selected_path = OUT / "realdata_selected.json"
    frozen = json.loads(selected_path.read_text()) if selected_path.exists() else {}
    for dataset in args.datasets:
        if not ARCHIVES[dataset].exists():
            print(
                f"skipped {dataset}: {ARCHIVES[dataset]} is absent (see ../shared/data/README.md)"
            )
            continue
        trials = Trials(WORK / f"trials-{dataset}.jsonl", config)
        if "search" in args.stages:
            data = preprocess_kuairec(ARCHIVES[dataset])
            social = data.social.height > 0
            for method in args.methods:
                search_method(trials, data, method, args.budget, social, args.threads)
        if "select" in args.stages:
            social = preprocess_kuairec(ARCHIVES[dataset]).social.height > 0
            check_budgets(trials, args.budget, social, dataset, args.methods)
            chosen = select(trials)
            old = frozen.get(dataset, {}).get("chosen")
            if old is not None and (WORK / "runs" / dataset).exists() and old != chosen:
                raise SystemExit(
                    f"{dataset}: selections were frozen and tested already; a changed search is "
                    "a new run (move benchmarks/results/realdata aside and start again)"
                )
            frozen[dataset] = {"trials_sha256": trials.digest(), "budget": args.budget}
            frozen[dataset]["chosen"] = chosen
            selected_path.write_text(json.dumps(frozen, indent=2, sort_keys=True) + "\n")
            print(f"{dataset}: selections frozen to {selected_path.name}")
        if {"test", "confirm", "social"} & set(args.stages):
            entry = frozen.get(dataset)
            if entry is None or entry["trials_sha256"] != trials.digest():
                raise SystemExit(
                    f"{dataset}: run the select stage first (selections are frozen "
                    "from the finished search, and test waits for them)"
                )
            chosen, parts = entry["chosen"], args.resplits
            if "test" in args.stages:
                evaluate_frozen(dataset, config, chosen, [0], args.seeds, args.threads, parts)
            if "confirm" in args.stages:
                resplits = list(range(1, parts + 1))
                evaluate_frozen(dataset, config, chosen, resplits, args.seeds, args.threads, parts)
            if "social" in args.stages and preprocess_kuairec(ARCHIVES[dataset]).social.height:
                splits = list(range(parts + 1))
                social_ablation(dataset, config, chosen, splits, args.seeds, args.threads, parts)
    if "report" in args.stages:
        report(frozen, args, OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
