"""The tables of the real-data verdict (benchmarks/realdata.py's report stage), from the files
the earlier stages wrote: every number the README quotes is in one of them.

- ``realdata.tsv``: per dataset and method: distinct (and failed) configurations searched, and
  whether that was the whole space; the frozen choice and its validation Recall@50; on the
  selection split (split 0) test Recall@50 / NDCG@50 (mean over seeds of the mean over users,
  95 % bootstrap CI over users of the seed-averaged values, the spread over seeds); on each fresh
  split the same mean; the ratio to the strongest baseline of that split (the baseline with the
  highest *test* recall: the hardest target, not a selection); per split, the method's Recall@50
  minus the chosen MP2V-kind method's (``walk``, the higher validation recall of MP2V and
  R-MP2V) and minus popularity's, with the Holm p of ``realdata_tests.tsv`` (``_bound``: that
  p is an upper bound), where that comparison is in the pre-registered family.
- ``realdata_tests.tsv``: the pre-registered paired comparisons, per dataset and split, on
  seed-averaged per-user values of the same users, for Recall@50 and NDCG@50: every method
  against popularity, every MP2V-kind method (MP2V, R-MP2V, their other trainer) against every
  tuned baseline, R-MP2V against MP2V, MP2V and R-MP2V against W2V. Sign-flip p-values with
  their floor (100,000 flips), Holm-adjusted over the whole table (every dataset, split,
  metric and comparison: one family).
- ``realdata_mattered.tsv``: per method, trainer arm, setting and value, the mean validation
  Recall@50 and n over the round-1 random draws only (round 2 clusters around winners).
- ``realdata_search.tsv``: every trial, with its configuration key.
- ``realdata_tables.md``: the README's tables, from the rows above (``realdata_markdown``).
- ``realdata_time.tsv``: per dataset and stage (search, test on the selection split, confirm on
  the fresh splits, social), the runs made and their fit-and-score seconds summed (each run
  timed as it ran, with ``--threads`` threads; pauses and other load included).
- ``realdata_social.tsv``: the social ablation's paired contrasts (UUV - UV, weighted - uniform,
  W2V - random initialisation) per base method and split, for all users and for users with /
  without a trust link (either direction): each factor's main effect (per user, the mean of
  the four cells at one level against the four at the other; the primary tests, one Holm
  family) and its contrast within each setting of the other two factors (a second family).
  (The main effects and the two families were decided on 2026-12-07, before any
  social-ablation run existed.)
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from realdata import (
    ARCHIVES,
    BASELINES,
    FLIPS,
    SOCIAL_GRID,
    SPACES,
    WALK_METHODS,
    WORK,
    K,
    Trials,
    configurations,
    entry_id,
    key_of,
    run_path,
    social_cells,
    space_for,
    space_size,
    split_data,
    study_config,
)
from realdata_markdown import chosen_walk, markdown, paired, splits_of

from mp2v4rec.stats import bootstrap_ci, holm, holm_bounds, paired_test

METRICS = ("recall", "ndcg")


def load_runs(dataset, split, label, entry, config, seeds) -> dict | None:
    """Per-user test values of one frozen choice over ``seeds`` ([seeds, users]); None while
    any is missing (a stage not run yet); ``{"failed": n}`` when n seeds diverged."""
    paths = [run_path(dataset, split, label, s, entry_id(config, entry)) for s in seeds]
    if not all(p.exists() for p in paths):
        return None
    runs = [dict(np.load(p)) for p in paths]
    failed = sum(int(r.get("failed", 0)) for r in runs)
    if failed:
        return {"failed": failed}
    users = runs[0]["users"]
    if any(not np.array_equal(r["users"], users) for r in runs):
        raise RuntimeError(f"{dataset} {label}: seeds scored different users")
    out = {"users": users, "failed": 0}
    return out | {m: np.stack([r[m] for r in runs]) for m in METRICS}


def whole_space(config, method: str, social: bool, tried: set[str]) -> bool:
    """Whether every point of the method's space was tried (checked for spaces up to 2,000)."""
    if method not in SPACES or space_size(method, social) > 2000:
        return False
    points = configurations(space_for(method, social), 10**7, seed=0)
    return {key_of(config, method, o) for o in points} <= tried


def method_rows(dataset, chosen, config, seeds, splits, social, trials) -> list[dict]:
    rows = []
    runs = {
        split: {lab: load_runs(dataset, split, lab, e, config, seeds) for lab, e in chosen.items()}
        for split in splits
    }
    for label, entry in chosen.items():
        method = entry["method"]
        tried = {r["key"] for r in trials.of(method)}
        row = {
            "dataset": dataset,
            "method": label,
            "arm": entry["arm"],
            "distinct": entry["distinct"],
            "failed": entry.get("failed", 0),
            "whole_space": whole_space(config, method, social, tried),
            "valid_recall": entry["valid_recall"],
            "selected": json.dumps(entry["overrides"], sort_keys=True),
        }
        for split in splits:
            r = runs[split][label]
            if r is None or r["failed"]:
                row[f"split{split}_failed_seeds"] = None if r is None else r["failed"]
                continue
            strongest = max(
                (runs[split][b]["recall"].mean() for b in BASELINES
                 if b in chosen and runs[split][b] is not None and not runs[split][b]["failed"]),
                default=float("nan"),
            )  # fmt: skip
            row |= split_summary(r, split, strongest)
        rows.append(row)
    return rows


def split_summary(r: dict, split: int, strongest: float) -> dict:
    out = {f"split{split}_n_users": int(r["users"].size)}
    for m in METRICS:
        mean, low, high = bootstrap_ci(r[m].mean(axis=0), n_boot=10_000)
        out |= {f"split{split}_{m}@{K}": mean}
        if split == 0:
            out |= {f"split0_{m}_low": low, f"split0_{m}_high": high}
    per_seed = r["recall"].mean(axis=1)
    out[f"split{split}_recall_seed_sd"] = float(per_seed.std(ddof=1)) if per_seed.size > 1 else 0.0
    out[f"split{split}_ratio_to_strongest_baseline"] = float(r["recall"].mean() / strongest)
    return out


def comparison_pairs(chosen: dict) -> list[tuple[str, str, str]]:
    """The fixed, deduplicated family of (a, b, what) pairs."""
    walk = [lab for lab in chosen if chosen[lab]["method"] in WALK_METHODS]
    tuned = [b for b in BASELINES if b in chosen and b != "popularity"]
    pairs = [(lab, "popularity", "vs popularity") for lab in chosen if lab != "popularity"]
    pairs += [(a, b, "MP2V-kind vs baseline") for a in walk for b in tuned]
    pairs += [("rmp2v", "mp2v", "R-MP2V vs MP2V")]
    pairs += [(a, "w2v", "vs W2V") for a in ("mp2v", "rmp2v")]
    seen, out = set(), []
    for a, b, what in pairs:
        if a in chosen and b in chosen and frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            out.append((a, b, what))
    return out


def comparisons(dataset, chosen, config, seeds, splits) -> list[dict]:
    rows = []
    for split in splits:
        runs = {lab: load_runs(dataset, split, lab, e, config, seeds) for lab, e in chosen.items()}
        for a, b, what in comparison_pairs(chosen):
            ra, rb = runs[a], runs[b]
            row = {"dataset": dataset, "split": split, "comparison": what, "a": a, "b": b}
            if ra is None or rb is None or ra["failed"] or rb["failed"]:
                rows += [row | {"metric": m, "status": "missing or failed"} for m in METRICS]
                continue
            if not np.array_equal(ra["users"], rb["users"]):
                raise RuntimeError(f"{dataset} split {split}: {a} and {b} scored other users")
            for m in METRICS:
                x, y = ra[m].mean(axis=0), rb[m].mean(axis=0)
                t = paired_test(x, y, n_boot=10_000, n_flips=FLIPS)
                rows.append(row | {
                    "metric": m, "status": "ok", "a_value": float(x.mean()),
                    "b_value": float(y.mean()),
                    "ratio": float(x.mean() / y.mean()) if y.mean() > 0 else float("nan"),
                    "diff": t["diff"], "diff_low": t["low"], "diff_high": t["high"],
                    "p_value": t["p_value"], "p_floor": t["p_floor"], "n_users": t["n_users"],
                })  # fmt: skip
    return rows


def mattered(dataset: str, trials: Trials) -> list[dict]:
    """Mean validation recall per setting value over round-1 random draws (config.yaml's own
    settings, the empty override, left out: it is not a random draw), per trainer arm."""
    rows = []
    for r in trials.rows:
        if r["round"] != 1 or not r["overrides"] or np.isnan(r["valid_recall"]):
            continue
        for axis, value in r["overrides"].items():
            rows.append({"dataset": dataset, "method": r["method"], "arm": r["arm"] or "",
                         "setting": axis, "value": json.dumps(value),
                         "valid_recall": r["valid_recall"]})  # fmt: skip
    if not rows:
        return []
    table = (
        pl.DataFrame(rows)
        .group_by("dataset", "method", "arm", "setting", "value")
        .agg(pl.col("valid_recall").mean().alias("mean_valid_recall"), pl.len().alias("n"))
    )
    return table.sort("method", "arm", "setting", "value").to_dicts()


def friends_of(data) -> np.ndarray:
    """Users with a trust link in either direction (the walks use the symmetrised graph)."""
    return np.union1d(data.social["user"].to_numpy(), data.social["friend"].to_numpy())


MAIN = "averaged over the others"  # the ``held`` of a main effect
COHORTS = ("all", "with a trust link", "without")


def social_rows(dataset, chosen, config, seeds, splits, parts) -> list[dict]:
    """Paired contrasts of each social factor per split and cohort: its main effect (every
    user's recall averaged over the four cells at each level of the factor; Holm family "main
    effects") and the contrast within each setting of the other two factors (family "within
    cells"). A contrast with a cell not run yet or failed is a row with that status."""
    cells = dict(social_cells(chosen))
    rows = []
    for split in splits:
        runs = {lab: load_runs(dataset, split, "social." + lab, e, config, seeds)
                for lab, e in cells.items()}  # fmt: skip
        friends = None
        for method, factor, held, high, low in social_contrasts(cells):
            family = "main effects" if held == MAIN else "within cells"
            head = {"dataset": dataset, "split": split, "method": method,
                    "contrast": f"{factor}: {SOCIAL_GRID[factor][1]} - {SOCIAL_GRID[factor][0]}",
                    "held": held, "family": family}  # fmt: skip
            gone = [lab for lab in high + low if runs[lab] is None or runs[lab]["failed"]]
            if gone:
                status = "failed" if any(runs[lab] is not None for lab in gone) else "missing"
                rows += [head | {"cohort": c, "status": f"{status}: {len(gone)} cells"}
                         for c in COHORTS]  # fmt: skip
                continue
            users = runs[high[0]]["users"]
            if any(not np.array_equal(runs[lab]["users"], users) for lab in high + low):
                raise RuntimeError(f"{dataset} split {split}: social cells scored other users")
            if friends is None:
                friends = friends_of(split_data(dataset, split, parts))
            x = np.mean([runs[lab]["recall"].mean(axis=0) for lab in high], axis=0)
            y = np.mean([runs[lab]["recall"].mean(axis=0) for lab in low], axis=0)
            linked = np.isin(users, friends)
            for cohort, keep in zip(COHORTS, (np.ones_like(linked), linked, ~linked), strict=True):
                t = paired_test(x[keep], y[keep], n_boot=10_000, n_flips=FLIPS)
                rows.append(head | {"cohort": cohort, "status": "ok",
                                    "high": float(x[keep].mean()) if keep.any() else None,
                                    "low": float(y[keep].mean()) if keep.any() else None,
                                    "diff": t["diff"], "diff_low": t["low"],
                                    "diff_high": t["high"], "p_value": t["p_value"],
                                    "p_floor": t["p_floor"], "n_users": t["n_users"]})  # fmt: skip
    return rows


def social_contrasts(cells: dict) -> list[tuple[str, str, str, list[str], list[str]]]:
    """(method, factor, held, high cells, low cells) of every contrast: per method and factor
    the main effect (held ``MAIN``, four cells a side), then one contrast per setting of the
    other two factors (one cell a side)."""
    out = []
    levels = {}
    for label in cells:
        method, _, rest = label.partition(".")
        levels[label] = (method, dict(part.split("-", 1) for part in rest.split(".")))
    for method in dict.fromkeys(m for m, _ in levels.values()):
        mine = {lab: lev for lab, (m, lev) in levels.items() if m == method}
        for factor, (low, high) in SOCIAL_GRID.items():
            side = {v: [lab for lab, lev in mine.items() if lev[factor] == v] for v in (low, high)}
            out.append((method, factor, MAIN, side[high], side[low]))
            for lab in side[high]:
                other = mine[lab] | {factor: low}
                match = [o for o, lev in mine.items() if lev == other]
                held = ", ".join(f"{k} {v}" for k, v in mine[lab].items() if k != factor)
                out.append((method, factor, held, [lab], match))
    return out


def time_rows(dataset: str, trials: Trials) -> list[dict]:
    """Runs and summed seconds per stage, from the trials and the run files."""
    spent = {"search": [r["seconds"] for r in trials.rows]}
    for path in sorted((WORK / "runs" / dataset).glob("split*/*.npz")):
        stage = "social" if path.name.startswith("social.") else "test"
        stage = "confirm" if stage == "test" and path.parent.name != "split0" else stage
        with np.load(path) as f:
            spent.setdefault(stage, []).append(float(f["seconds"]))
    return [
        {"dataset": dataset, "stage": stage, "runs": len(s), "seconds": round(sum(s), 1),
         "hours": round(sum(s) / 3600, 2)}
        for stage, s in spent.items()
    ]  # fmt: skip


def with_holm(rows: list[dict], family: str | None = None) -> list[dict]:
    """Holm over every row with a p-value, one family per value of the ``family`` column (all
    rows one family without it). ``p_holm_bound``: the adjusted value rests on sampled sign
    flips at their floor (the row's own p-value or a smaller one's, through Holm's running
    maximum), so it is an upper bound, not a measurement."""
    sampled = 1.0 / (FLIPS + 1)  # an exact test's floor (2 / 2^n) is a measured p-value
    for name in dict.fromkeys(r.get(family) for r in rows):
        mine = [r for r in rows if r.get(family) == name]
        p = np.array([r.get("p_value", np.nan) for r in mine], dtype=float)
        floor = np.array([r.get("p_floor", np.nan) for r in mine], dtype=float)
        censored = (p <= floor * (1 + 1e-9)) & np.isclose(floor, sampled, rtol=1e-9, atol=0)
        for row, value, bound in zip(mine, holm(p), holm_bounds(p, censored), strict=True):
            row["p_holm"] = None if np.isnan(value) else float(value)
            row["p_holm_bound"] = None if np.isnan(value) else bool(bound)
    return rows


def with_paired(rows: list[dict], tests: list[dict], metric: str = "recall") -> list[dict]:
    """``rows`` (realdata.tsv) with, per split, each method minus the chosen walk method and
    minus popularity: the Holm-adjusted paired tests of ``tests``, signed as named; None where
    the family has no such comparison (or its runs are missing)."""
    datasets = {r["dataset"] for r in rows}
    walks = {d: chosen_walk([r for r in rows if r["dataset"] == d]) for d in datasets}
    out = []
    for row in rows:
        mine = [t for t in tests if t["dataset"] == row["dataset"]]
        row = row | {"walk": walks[row["dataset"]]}
        for split in splits_of([row]):
            for what, other in (("walk", row["walk"]), ("popularity", "popularity")):
                diff, t = paired(mine, split, metric, row["method"], other)
                row |= {
                    f"split{split}_{metric}_minus_{what}": diff,
                    f"split{split}_{metric}_minus_{what}_p_holm": t and t["p_holm"],
                    f"split{split}_{metric}_minus_{what}_bound": t and t["p_holm_bound"],
                }
        out.append(row)
    return out


def write(rows: list[dict], path) -> pl.DataFrame | None:
    if not rows:
        return None
    table = pl.DataFrame(rows, infer_schema_length=None)
    table.write_csv(path, separator="\t", float_precision=6)
    return table


def report(frozen: dict, args, out) -> None:
    config = study_config()
    parts = args.resplits
    splits = list(range(parts + 1))
    names = ("realdata", "realdata_tests", "realdata_mattered", "realdata_search")
    tables = {name: [] for name in (*names, "realdata_social", "realdata_time")}
    for dataset in ARCHIVES:
        trials = Trials(WORK / f"trials-{dataset}.jsonl", config)
        tables["realdata_search"] += [
            {"dataset": dataset, "method": r["method"], "arm": r["arm"], "round": r["round"],
             "valid_recall": r["valid_recall"], "seconds": r["seconds"],
             "overrides": json.dumps(r["overrides"], sort_keys=True), "key": r["key"]}
            for r in trials.rows
        ]  # fmt: skip
        tables["realdata_mattered"] += mattered(dataset, trials)
        tables["realdata_time"] += time_rows(dataset, trials)
        if dataset not in frozen:
            continue
        chosen = frozen[dataset]["chosen"]
        social = split_data(dataset, 0, parts).social.height > 0
        tables["realdata"] += method_rows(
            dataset, chosen, config, args.seeds, splits, social, trials
        )
        tables["realdata_tests"] += comparisons(dataset, chosen, config, args.seeds, splits)
        if social:
            tables["realdata_social"] += social_rows(
                dataset, chosen, config, args.seeds, splits, parts
            )
    tables["realdata_tests"] = with_holm(tables["realdata_tests"])
    tables["realdata"] = with_paired(tables["realdata"], tables["realdata_tests"])
    tables["realdata_social"] = with_holm(tables["realdata_social"], family="family")
    (out / "realdata_tables.md").write_text(markdown(tables))
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, float_precision=4):
        for name, rows in tables.items():
            table = write(rows, out / f"{name}.tsv")
            if table is not None and name != "realdata_search":
                print(name)
                print(table)
