"""The README's real-data tables, written by the report stage to ``realdata_tables.md`` from the
rows of ``realdata.tsv``, ``realdata_tests.tsv`` and ``realdata_social.tsv``: the README quotes
these tables verbatim (tests/test_realdata_readme.py checks it), so no number is typed by hand.

Holm-adjusted p-values print with two significant digits, trailing zero kept (three where two
would round across 0.05); one that rests on sampled sign flips at their floor (``p_holm_bound``)
is only an upper bound and prints as "≤ x", rounded up. A cell whose runs are missing or failed
prints "–", and a line under the table says which.
"""

from __future__ import annotations

import math
import re

NAMES = {
    "ials": "iALS", "ease": "EASE", "userknn": "UserKNN", "w2v": "W2V", "itemknn": "ItemKNN",
    "rp3b": "RP3β", "ultragcn": "UltraGCN", "mp2v": "MP2V", "rmp2v": "R-MP2V",
    "popularity": "popularity", "random": "random",
}  # fmt: skip
ARMS = {"gensim": "gensim", "shared": "one-table"}
WALK = ("mp2v", "rmp2v")


def split_name(split: int) -> str:
    return "selection split" if split == 0 else f"fresh split {split}"


def splits_of(rows: list[dict]) -> list[int]:
    """The splits a dataset's rows cover (split 0 first)."""
    found = {int(m[1]) for r in rows for k in r if (m := re.match(r"split(\d+)_", k))}
    return sorted(found | {r["split"] for r in rows if isinstance(r.get("split"), int)})


def name(label: str) -> str:
    method, _, arm = label.partition(".")
    return NAMES[method] + (f", {ARMS[arm]} trainer" if arm else "")


def ceil2(x: float) -> float:
    """``x`` rounded up to two significant digits (a bound stays a bound)."""
    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / step - 1e-9) * step


def p_text(row: dict) -> str:
    if row.get("p_holm") is None:
        return "n/a"
    p = row["p_holm"]
    if row["p_holm_bound"]:
        return f"≤ {ceil2(p):#.2g}"
    if p >= 0.995:
        return "1"  # Holm's cap, or as near it as two digits tell
    text = f"{p:#.2g}"  # '#' keeps a trailing zero: 0.10, not 0.1
    return text if (float(text) < 0.05) == (p < 0.05) else f"{p:#.3g}"


def diff_text(x: float) -> str:
    """A signed difference to three decimals; one that rounds to zero prints unsigned."""
    text = f"{x:+.3f}"
    return "0.000" if float(text) == 0 else text


def num(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def configurations(row: dict, rows: list[dict]) -> str:
    """How many distinct configurations the choice came from, as the README words it."""
    method, _, arm = row["method"].partition(".")
    if row["distinct"] == 0:
        return "–"
    if arm:
        return f"(its {row['distinct']})"
    if method in WALK:
        per_arm = {r["method"].partition(".")[2]: r["distinct"] for r in rows
                   if r["method"].startswith(method + ".")}  # fmt: skip
        per_arm[row["arm"]] = row["distinct"] - sum(per_arm.values())
        return " + ".join(f"{per_arm[a]} {ARMS[a]}" for a in ("gensim", "shared") if a in per_arm)
    return f"{row['distinct']}" + (" (whole space)" if row["whole_space"] else "")


def method_table(rows: list[dict]) -> list[str]:
    """One dataset's methods, highest selection-split test Recall@50 first; a line under it
    for every choice with failed seeds or runs not made yet."""
    fresh = [s for s in splits_of(rows) if s > 0]
    out = [
        "| method | configurations | valid R@50 | test R@50 (95 % CI) | NDCG@50 | sd over seeds | "
        + "".join(f"{split_name(s)} | " for s in fresh)
        + f"× strongest baseline (split {' / '.join(str(s) for s in [0, *fresh])}) |",
        "|---" * (7 + len(fresh)) + "|",
    ]
    notes = []
    for row in sorted(rows, key=lambda r: -(r.get("split0_recall@50") or -1.0)):
        get = {k: num(v) for k, v in row.items() if isinstance(v, float | type(None))}
        ratios = " / ".join(
            num(row.get(f"split{s}_ratio_to_strongest_baseline"), 2) for s in [0, *fresh]
        )
        test = get.get("split0_recall@50", "–")
        if test != "–":
            test += f" ({get['split0_recall_low']}–{get['split0_recall_high']})"
        cells = [name(row["method"]), configurations(row, rows), get["valid_recall"], test]
        cells += [get.get(k, "–") for k in ("split0_ndcg@50", "split0_recall_seed_sd")]
        cells += [get.get(f"split{s}_recall@50", "–") for s in fresh] + [ratios]
        out.append(f"| {' | '.join(cells)} |")
        states = [
            f"split {s} " + ("not run yet" if failed is None else f"{failed} seed(s) failed")
            for s in [0, *fresh]
            if f"split{s}_n_users" not in row
            for failed in [row.get(f"split{s}_failed_seeds")]
        ]
        if states:
            notes.append(f"{name(row['method'])}: {', '.join(states)}.")
    return out + ([""] + notes if notes else [])


def chosen_walk(rows: list[dict]) -> str | None:
    """The MP2V-kind method with the highest validation recall (None before any is chosen)."""
    walk = [r for r in rows if r["method"] in WALK and r["valid_recall"] is not None]
    return max(walk, key=lambda r: r["valid_recall"])["method"] if walk else None


def tests_table(rows: list[dict], tests: list[dict], metric: str = "recall") -> list[str]:
    """The walk method chosen on validation minus every other method, per split (Holm p)."""
    best = chosen_walk(rows)
    if best is None:
        return []
    others = sorted(
        (r for r in rows if r["method"] not in (*WALK, "random") and "." not in r["method"]),
        key=lambda r: (r["method"] in ("w2v", "popularity"), r["method"] == "popularity",
                       -(r.get("split0_recall@50") or -1.0)),
    )  # fmt: skip
    splits = splits_of(rows)
    heads = " | ".join(split_name(s) for s in splits)
    out = [f"| {name(best)} − … (Holm p) | {heads} |", "|---" * (1 + len(splits)) + "|"]
    pairs = [(best, r["method"], name(r["method"])) for r in others]
    pairs.append(("rmp2v", "mp2v", "R-MP2V − MP2V"))
    for a, b, label in pairs:
        cells = []
        for split in splits:
            diff, t = paired(tests, split, metric, a, b)
            cells.append("–" if t is None else f"{diff_text(diff)} ({p_text(t)})")
        out.append(f"| {label} | {' | '.join(cells)} |")
    return out


def paired(tests: list[dict], split: int, metric: str, a: str, b: str) -> tuple:
    """(a − b, the test row) from the measured paired test of ``a`` and ``b`` in either order;
    (None, None) when the family has none."""
    for t in tests:
        measured = (t["split"], t["metric"], t.get("status")) == (split, metric, "ok")
        if measured and {t["a"], t["b"]} == {a, b}:
            return (t["diff"] if t["a"] == a else -t["diff"]), t
    return None, None


def tests_summary(rows: list[dict], tests: list[dict]) -> list[str]:
    """Per metric: how many of the chosen walk method's differences from a tuned baseline or
    W2V are negative, and how many of those (and of the positive ones) survive Holm."""
    best = chosen_walk(rows)
    if best is None:
        return []
    out = []
    for metric in ("recall", "ndcg"):
        diffs = []
        for t in tests:
            if t["metric"] != metric or t.get("status") != "ok" or best not in (t["a"], t["b"]):
                continue
            other = t["b"] if t["a"] == best else t["a"]
            if other in (*WALK, "popularity", "random") or "." in other:
                continue
            diffs.append((t["diff"] if t["a"] == best else -t["diff"], t["p_holm"]))
        neg = [p for d, p in diffs if d < 0]
        pos = [p for d, p in diffs if d > 0]
        out.append(
            f"- {metric}: {name(best)} minus a tuned baseline or W2V, {len(diffs)} comparisons "
            f"(every split): {len(neg)} negative ({sum(p < 0.05 for p in neg)} with Holm p < "
            f"0.05), {len(pos)} positive ({sum(p < 0.05 for p in pos)} with Holm p < 0.05)."
        )
    return out


def social_table(social: list[dict]) -> list[str]:
    """Each factor's main effect per base method and cohort, per split (Holm p)."""
    main = [r for r in social if r["family"] == "main effects"]
    if not main:
        return []
    splits = splits_of(main)
    out = [
        f"| base settings | contrast | users | {' | '.join(split_name(s) for s in splits)} "
        "| users per split |",
        "|---" * (4 + len(splits)) + "|",
    ]
    keys = list(dict.fromkeys((r["method"], r["contrast"], r["cohort"]) for r in main))
    for method, contrast, cohort in keys:
        key = (method, contrast, cohort)
        mine = {r["split"]: r for r in main if (r["method"], r["contrast"], r["cohort"]) == key}
        ok = {s: r for s, r in mine.items() if r["status"] == "ok" and r["n_users"]}
        cells = [f"{diff_text(ok[s]['diff'])} ({p_text(ok[s])})" if s in ok else "–"
                 for s in splits]  # fmt: skip
        n = " / ".join(str(ok[s]["n_users"]) if s in ok else "–" for s in splits)
        out.append(f"| {name(method)} | {contrast} | {cohort} | {' | '.join(cells)} | {n} |")
    tested = sum(r.get("p_holm") is not None for r in main)
    if all(r["status"] == "ok" for r in main):
        family = [f"Holm over all {tested} main-effect tests (a row with no user in its cohort is "
                  "not a test)."]  # fmt: skip
    else:
        family = [f"Holm over the {tested} main-effect tests measured, of {len(main)} when every "
                  "run is in (a row with no user in its cohort is not a test); a partial family's "
                  "adjusted values can never fall as it fills."]  # fmt: skip
    gone = [r for r in main if r["status"] != "ok" and r["cohort"] == "all"]
    notes = [f"{name(r['method'])} {r['contrast']} on the {split_name(r['split'])}: "
             f"{r['status']}." for r in gone]  # fmt: skip
    return out + [""] + family + ([""] + notes if notes else [])


def within_cells(social: list[dict]) -> list[str]:
    """One line: how the within-cell contrasts came out after Holm."""
    within = [r for r in social if r["family"] == "within cells"]
    cells = [r for r in within if r.get("p_holm") is not None]
    if not within:
        return []
    low = [r for r in cells if r["p_holm"] < 0.05]
    up = sum(r["diff"] > 0 for r in low)
    return [
        f"Within-cell contrasts (`realdata_social.tsv`, one factor moved with the other two held): "
        f"{len(cells)} tests (Holm over these), {len(low)} with Holm p < 0.05 ({up} positive, "
        f"{len(low) - up} negative); {len(within) - len(cells)} not tested (runs missing, or no "
        "user in the cohort)."
    ]


def markdown(tables: dict[str, list[dict]]) -> str:
    """Every dataset's tables, one section each."""
    parts = []
    for dataset in dict.fromkeys(r["dataset"] for r in tables["realdata"]):
        rows = [r for r in tables["realdata"] if r["dataset"] == dataset]
        tests = [r for r in tables["realdata_tests"] if r["dataset"] == dataset]
        social = [r for r in tables["realdata_social"] if r["dataset"] == dataset]
        parts.append(f"## {dataset}\n")
        for title, lines in (
            ("Methods (realdata.tsv)", method_table(rows)),
            ("Paired differences, Recall@50 (realdata_tests.tsv)", tests_table(rows, tests)),
            ("Paired differences, NDCG@50 (realdata_tests.tsv)", tests_table(rows, tests, "ndcg")),
            ("Paired differences, counted", tests_summary(rows, tests)),
            ("Social ablation, main effects on Recall@50 (realdata_social.tsv)",
             social_table(social)),
            ("Social ablation, within cells", within_cells(social)),
        ):  # fmt: skip
            if lines:
                parts.append(f"### {title}\n\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)
