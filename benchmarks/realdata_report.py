"""The tables of the real-data verdict (benchmarks/realdata.py's report stage), from the files
the earlier stages wrote: every number the README quotes is in one of them.

- ``realdata.tsv``: per dataset and method: distinct configurations searched, the frozen
  choice, validation Recall@50 of the choice, selection-split test Recall@50 / NDCG@50 (mean
  over seeds of the mean over users, 95 % bootstrap CI over users of the seed-averaged values,
  the spread over seeds), the fresh splits' mean and range, the ratio to the best baseline.
- ``realdata_tests.tsv``: the pre-registered paired comparisons per dataset on the selection
  split (seed-averaged per-user Recall@50, same users): every method against popularity and
  against the best baseline (chosen on validation), the best MP2V-kind method (chosen on
  validation) against the best baseline, R-MP2V against MP2V. Sign-flip p-values with their
  floor (100,000 flips), Holm-adjusted over each dataset's family.
- ``realdata_fresh.tsv``: per dataset, fresh split and method, the test Recall@50 over seeds,
  and the method's rank, beside the selection split's rank.
- ``realdata_mattered.tsv``: per method, setting and value, mean validation Recall@50 and n
  over the round-1 random draws only (round 2 clusters around winners).
- ``realdata_search.tsv``: every trial.
- ``realdata_social.tsv``: the social ablation (see realdata.py), paired UUV - UV differences
  per sampling and initialisation, overall and for users with / without friends.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from realdata import (
    ARCHIVES,
    BASELINES,
    FLIPS,
    WALK_METHODS,
    WORK,
    K,
    Trials,
    run_path,
    social_cells,
    split_data,
    study_config,
)

from mp2v4rec.stats import bootstrap_ci, holm, paired_test


def load_runs(dataset, split, label, seeds) -> dict | None:
    """Per-user test values of one label over ``seeds`` ([seeds, users]); None if any is
    missing (a stage not run yet)."""
    paths = [run_path(dataset, split, label, s) for s in seeds]
    if not all(p.exists() for p in paths):
        return None
    runs = [dict(np.load(p)) for p in paths]
    users = runs[0]["users"]
    if any(not np.array_equal(r["users"], users) for r in runs):
        raise RuntimeError(f"{dataset} {label}: seeds scored different users")
    return {
        "users": users,
        "recall": np.stack([r["recall"] for r in runs]),
        "ndcg": np.stack([r["ndcg"] for r in runs]),
    }


def best_by_validation(chosen: dict, labels) -> str | None:
    scored = [lab for lab in labels if lab in chosen and chosen[lab]["valid_recall"] is not None]
    return max(scored, key=lambda lab: chosen[lab]["valid_recall"]) if scored else None


def method_rows(dataset, chosen, seeds, resplits) -> list[dict]:
    rows = []
    for label, entry in chosen.items():
        runs = load_runs(dataset, 0, label, seeds)
        row = {
            "dataset": dataset,
            "method": label,
            "distinct": entry["distinct"],
            "valid_recall": entry["valid_recall"],
            "selected": json.dumps(entry["overrides"], sort_keys=True),
        }
        if runs is not None:
            row["n_users"] = int(runs["users"].size)
            for name in ("recall", "ndcg"):
                mean, low, high = bootstrap_ci(runs[name].mean(axis=0), n_boot=10_000)
                row |= {f"{name}@{K}": mean, f"{name}_low": low, f"{name}_high": high}
            per_seed = runs["recall"].mean(axis=1)
            row["recall_seed_sd"] = float(per_seed.std(ddof=1)) if per_seed.size > 1 else 0.0
        fresh = [load_runs(dataset, r, label, seeds) for r in resplits]
        fresh = [f["recall"].mean() for f in fresh if f is not None]
        if fresh:
            row |= {
                "fresh_recall": float(np.mean(fresh)),
                "fresh_min": float(min(fresh)),
                "fresh_max": float(max(fresh)),
                "fresh_splits": len(fresh),
            }
        rows.append(row)
    return rows


def comparisons(dataset, chosen, seeds) -> list[dict]:
    """The pre-registered family of paired tests of one dataset (selection split)."""
    runs = {lab: load_runs(dataset, 0, lab, seeds) for lab in chosen}
    runs = {lab: r for lab, r in runs.items() if r is not None}
    best_base = best_by_validation(chosen, [b for b in BASELINES if b != "popularity"])
    best_walk = best_by_validation(chosen, [m for m in chosen if m.split(".")[0] in WALK_METHODS])
    pairs = [(lab, "popularity", "vs popularity") for lab in runs if lab != "popularity"]
    pairs += [(lab, best_base, "vs best baseline") for lab in runs if lab != best_base]
    pairs += [
        (best_walk, best_base, "best MP2V-kind vs best baseline"),
        ("rmp2v", "mp2v", "R-MP2V vs MP2V"),
    ]
    rows = []
    for a, b, what in pairs:
        if a not in runs or b not in runs:
            continue
        x, y = runs[a]["recall"].mean(axis=0), runs[b]["recall"].mean(axis=0)
        test = paired_test(x, y, n_boot=10_000, n_flips=FLIPS)
        ratio = x.mean() / y.mean() if y.mean() > 0 else float("nan")
        rows.append(
            {
                "dataset": dataset,
                "comparison": what,
                "a": a,
                "b": b,
                "recall_a": float(x.mean()),
                "recall_b": float(y.mean()),
                "ratio": ratio,
                "diff": test["diff"],
                "diff_low": test["low"],
                "diff_high": test["high"],
                "p_value": test["p_value"],
                "p_floor": test["p_floor"],
                "n_users": test["n_users"],
            }
        )
    p_holm = holm([r["p_value"] for r in rows])
    for row, p in zip(rows, p_holm, strict=True):
        row["p_holm"] = float(p)
    return rows


def fresh_rows(dataset, chosen, seeds, resplits) -> list[dict]:
    rows = []
    for split in [0, *resplits]:
        scores = {}
        for label in chosen:
            runs = load_runs(dataset, split, label, seeds)
            if runs is not None:
                scores[label] = float(runs["recall"].mean())
        order = sorted(scores, key=scores.get, reverse=True)
        rows += [
            {
                "dataset": dataset,
                "split": split,
                "method": lab,
                f"recall@{K}": scores[lab],
                "rank": order.index(lab) + 1,
            }
            for lab in order
        ]
    return rows


def mattered(dataset: str, trials: Trials) -> list[dict]:
    """Mean validation recall per setting value over round-1 random draws (config.yaml's own
    settings, the empty override, left out: it is not a random draw)."""
    rows = []
    for r in trials.rows:
        if r["round"] != 1 or not r["overrides"] or np.isnan(r["valid_recall"]):
            continue
        for axis, value in r["overrides"].items():
            rows.append(
                {
                    "dataset": dataset,
                    "method": r["method"],
                    "setting": axis,
                    "value": json.dumps(value),
                    "valid_recall": r["valid_recall"],
                }
            )
    if not rows:
        return []
    table = (
        pl.DataFrame(rows)
        .group_by("dataset", "method", "setting", "value")
        .agg(pl.col("valid_recall").mean().alias("mean_valid_recall"), pl.len().alias("n"))
    )
    return table.sort("method", "setting", "value").to_dicts()


def social_rows(dataset, chosen, seeds, splits) -> list[dict]:
    """Paired UUV - UV per (method, sampling, init) over every split's users (seed-averaged),
    overall and by whether the user has a friend."""
    rows = []
    for split in splits:
        data = None
        cells = dict(social_cells(chosen))
        for label in cells:
            if ".metapath-UUV." not in label:
                continue
            uv = label.replace(".metapath-UUV.", ".metapath-UV.")
            a = load_runs(dataset, split, "social." + label, seeds)
            b = load_runs(dataset, split, "social." + uv, seeds)
            if a is None or b is None:
                continue
            data = data if data is not None else split_data(dataset, split)
            friends = np.isin(a["users"], data.social["user"].to_numpy())
            method, _, rest = label.partition(".")
            for cohort, keep in (
                ("all", slice(None)),
                ("with friends", friends),
                ("without friends", ~friends),
            ):
                x, y = a["recall"].mean(axis=0)[keep], b["recall"].mean(axis=0)[keep]
                test = paired_test(x, y, n_boot=10_000, n_flips=FLIPS)
                rows.append(
                    {
                        "dataset": dataset,
                        "split": split,
                        "method": method,
                        "cell": rest.replace("metapath-UUV.", ""),
                        "cohort": cohort,
                        "uuv": float(x.mean()),
                        "uv": float(y.mean()),
                        "diff": test["diff"],
                        "diff_low": test["low"],
                        "diff_high": test["high"],
                        "p_value": test["p_value"],
                        "p_floor": test["p_floor"],
                        "n_users": test["n_users"],
                    }
                )
    p_holm = holm([r["p_value"] for r in rows])
    for row, p in zip(rows, p_holm, strict=True):
        row["p_holm"] = float(p)
    return rows


def write(rows: list[dict], path) -> pl.DataFrame | None:
    if not rows:
        return None
    table = pl.DataFrame(rows, infer_schema_length=None)
    table.write_csv(path, separator="\t", float_precision=6)
    return table


def report(frozen: dict, args, out) -> None:
    config = study_config()
    resplits = list(range(1, args.resplits + 1))
    tables = {
        "realdata": [],
        "realdata_tests": [],
        "realdata_fresh": [],
        "realdata_mattered": [],
        "realdata_search": [],
        "realdata_social": [],
    }
    for dataset in ARCHIVES:
        trials = Trials(WORK / f"trials-{dataset}.jsonl", config)
        tables["realdata_search"] += [
            {
                "dataset": dataset,
                **{k: r[k] for k in ("method", "arm", "round", "valid_recall", "seconds")},
                "overrides": json.dumps(r["overrides"], sort_keys=True),
            }
            for r in trials.rows
        ]
        tables["realdata_mattered"] += mattered(dataset, trials)
        if dataset not in frozen:
            continue
        chosen = frozen[dataset]["chosen"]
        tables["realdata"] += method_rows(dataset, chosen, args.seeds, resplits)
        tables["realdata_tests"] += comparisons(dataset, chosen, args.seeds)
        tables["realdata_fresh"] += fresh_rows(dataset, chosen, args.seeds, resplits)
        tables["realdata_social"] += social_rows(dataset, chosen, args.seeds, [0, *resplits])
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, float_precision=4):
        for name, rows in tables.items():
            table = write(rows, out / f"{name}.tsv")
            if table is not None and name != "realdata_search":
                print(name)
                print(table)
