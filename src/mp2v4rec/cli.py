"""The ``mp2v4rec`` command: look at a run's serving artefacts by hand.

    mp2v4rec similar   RESULTS_DIR --method M --item RAW_ID [-n 20]
    mp2v4rec recommend RESULTS_DIR --method M --user RAW_ID [-n 20]
    mp2v4rec playlist  RESULTS_DIR --method M --seed-items A,B,C [-n 30] [--diversity 0.3]
                       [--max-per-category 3]

RESULTS_DIR is ``results/{dataset}``: the command reads ``serve/{method}/`` (written by the
workflow's serve stage) and ``data/items.parquet`` / ``data/users.parquet`` for raw ids and
categories. Output is a table, or JSON with ``--json``. A bad folder, method or id is one line
on stderr: exit code 1 for a missing or incomplete results folder, 2 for a wrong argument.

Imports stay light (argparse and json here; polars and numpy when a command runs; faiss only for
a playlist over an ANN-indexed catalogue), so a query answers well under a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROG = "mp2v4rec"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class CliError(Exception):
    """A one-line error for the user, with the exit code to leave with."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# --- locating things -------------------------------------------------------------------------


class Run:
    """One method's serving folder inside a results folder."""

    opened: list[Run] = []  # this command's runs, so main can name a damaged file

    def __init__(self, results_dir: str, method: str):
        self.root = Path(results_dir)
        if not self.root.is_dir():
            raise CliError(
                f"no results folder {str(self.root)!r} (give results/{{dataset}}, the folder "
                "holding serve/ and data/)",
                1,
            )
        served = self.root / "serve"
        methods = sorted(p.name for p in served.glob("*") if (p / "serve.json").is_file())
        if not methods:
            raise CliError(
                f"{self.root} has no served method (no serve/*/serve.json): run the workflow's "
                "serve stage first (snakemake all)",
                1,
            )
        if method not in methods:
            raise CliError(
                f"method {method!r} is not served in {self.root}; served methods: "
                f"{', '.join(methods)}"
            )
        self.method = method
        self.dir = served / method
        self.touched: list[Path] = []  # artefacts this command opened, for damage messages
        Run.opened.append(self)
        meta_path = self.dir / "serve.json"
        try:
            self.meta = json.loads(meta_path.read_text())
            self.files = self.meta["files"]
            for key in ("score", "n_items", "n_users", "search"):
                self.meta[key]  # noqa: B018 - every command reads these
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise self.damaged(meta_path, f"not a complete serve.json ({exc})") from None

    def rebuild(self, path: Path) -> str:
        """The command that rebuilds ``path``."""
        if path.parent == self.root / "data":
            return f"delete it and rerun the workflow (snakemake --cores all all) for {self.root}"
        return f"rebuild with: snakemake --cores all --forcerun serve {self.dir}"

    def damaged(self, path: Path, what: str) -> CliError:
        return CliError(f"{path} is damaged: {what}; {self.rebuild(path)}", 1)

    def _checked(self, path: Path) -> Path:
        """``path`` if it is there and, for parquet, its footer and schema read."""
        if not path.is_file():
            raise CliError(f"{path} is missing; {self.rebuild(path)}", 1)
        if path.suffix == ".parquet":
            import polars as pl

            try:
                pl.read_parquet_schema(path)
            except Exception as exc:  # noqa: BLE001 - any reader error is damage to report
                raise self.damaged(
                    path, f"not a readable parquet file ({first_line(exc)})"
                ) from None
        self.touched.append(path)
        return path

    def path(self, key: str) -> Path:
        if key not in self.files:
            raise CliError(
                f"{self.method} is served without {key.replace('_', ' ')} (its kind, "
                f"{self.meta.get('model', 'embeddings')}, has none); use a method with "
                "embeddings for this command",
                1,
            )
        path = self._checked(self.dir / self.files[key])
        recorded = self.meta.get("sha256", {}).get(key)
        if recorded is not None:
            from mp2v4rec.serve import file_digest

            if file_digest(path) != recorded:
                raise self.damaged(path, "its contents differ from the digest in serve.json")
        return path

    def data(self, name: str) -> Path:
        return self._checked(self.root / "data" / f"{name}.parquet")


def parse_id(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise CliError(f"{what} id {text!r} is not an integer (raw ids are integers)") from None


def lookup_items(run: Run, raw_ids: list[int]) -> dict[int, dict]:
    """Raw item id -> {index, category, categories} for the ids in the catalogue."""
    import polars as pl

    rows = (
        pl.scan_parquet(run.data("items"))
        .filter(pl.col("raw_id").is_in(raw_ids))
        .select("item", "raw_id", "category", "categories")
        .collect()
    )
    return {r["raw_id"]: r for r in rows.iter_rows(named=True)}


def categories_of(run: Run, items: list[int]) -> dict[int, list[int]]:
    """Item index -> its categories (an empty list when none is known)."""
    import polars as pl

    rows = (
        pl.scan_parquet(run.data("items"))
        .filter(pl.col("item").is_in(items))
        .select("item", "categories")
        .collect()
    )
    return {i: list(c or []) for i, c in rows.iter_rows()}


def result_rows(run: Run, frame, cats: dict | None = None) -> list[dict]:
    """Output rows (rank, raw_id, index, score, ..., categories) from a frame of ranked items;
    ``cats``: their categories when already read."""
    cats = cats if cats is not None else categories_of(run, frame["index"].to_list())
    return [r | {"categories": cats.get(r["index"], [])} for r in frame.iter_rows(named=True)]


def unknown_item(run: Run, raw_id: int) -> CliError:
    return CliError(
        f"item {raw_id} is not in the catalogue of {run.root} ({run.meta['n_items']:,} items; "
        "ids are the raw item ids of data/items.parquet)"
    )


# --- output ----------------------------------------------------------------------------------


def fmt_categories(cats: list[int] | None) -> str:
    return ", ".join(str(c) for c in cats) if cats else "-"


def emit(args, header: str, query: dict, rows: list[dict]) -> None:
    if args.json:
        out = {"method": args.method, "score": query.pop("score"), "query": query}
        print(json.dumps(out | {"results": rows}, indent=2))
        return
    print(header)
    if not rows:
        print("(no results)")
        return
    id_width = max(6, *(len(str(r["raw_id"])) for r in rows))
    print(f"{'rank':>4}  {'raw_id':>{id_width}}  {'score':>9}  categories")
    for r in rows:
        line = f"{r['rank']:>4}  {r['raw_id']:>{id_width}}  {r['score']:>9.4f}  "
        line += fmt_categories(r.get("categories"))
        if r.get("fallback"):
            line += "  (popularity)"
        print(line)


# --- commands --------------------------------------------------------------------------------


def cmd_similar(args) -> None:
    import polars as pl

    run = Run(args.results_dir, args.method)
    raw = parse_id(args.item, "item")
    found = lookup_items(run, [raw])
    if raw not in found:
        raise unknown_item(run, raw)
    item = found[raw]["item"]
    rows = (
        pl.scan_parquet(run.path("neighbours"))
        .filter((pl.col("item") == item) & (pl.col("rank") <= args.n))
        .select("rank", raw_id="neighbour_raw_id", index="neighbour", score="score")
        .collect()
        .sort("rank")
    )
    if rows.height == 0:
        raise CliError(
            f"item {raw} has no vector in {run.method} (it never occurred in training), so it "
            "has no similar items"
        )
    results = result_rows(run, rows)
    score = run.meta["score"]
    header = (
        f"items similar to {raw} (categories {fmt_categories(found[raw]['categories'])}) "
        f"by {run.method} ({score})"
    )
    emit(args, header, {"item": raw, "index": item, "score": score}, results)


def cmd_recommend(args) -> None:
    import polars as pl

    run = Run(args.results_dir, args.method)
    raw = parse_id(args.user, "user")
    users = (
        pl.scan_parquet(run.data("users")).filter(pl.col("raw_id") == raw).select("user").collect()
    )
    if users.height == 0:
        raise CliError(
            f"user {raw} is not among the {run.meta['n_users']:,} users of {run.root} "
            "(ids are the raw user ids of data/users.parquet)"
        )
    user = users["user"][0]
    rows = (
        pl.scan_parquet(run.path("user_recs"))
        .filter((pl.col("user") == user) & (pl.col("rank") <= args.n))
        .select(
            "rank",
            pl.col("item_raw_id").alias("raw_id"),
            pl.col("item").alias("index"),
            "score",
            "fallback",
        )
        .collect()
        .sort("rank")
    )
    if rows.height == 0:
        raise CliError(
            f"user {raw} has no train history, so {run.method} has no list for them "
            f"({run.meta.get('users_served', 0):,} users have one)"
        )
    results = result_rows(run, rows)
    fallback = bool(rows["fallback"][0])
    score = "popularity" if fallback else run.meta["score"]
    note = " (popularity fallback: the user's vector is zero)" if fallback else ""
    header = f"top {rows.height} for user {raw} by {run.method} ({score}, train items masked){note}"
    emit(args, header, {"user": raw, "index": user, "fallback": fallback, "score": score}, results)


def item_vectors(run: Run, items=None):
    """``(indices, vectors)`` of the given items (all items when None) from item_vectors.parquet."""
    import numpy as np
    import polars as pl

    scan = pl.scan_parquet(run.path("item_vectors"))
    if items is not None:
        scan = scan.filter(pl.col("item").is_in([int(i) for i in items]))
    frame = scan.select("item", "vector").collect().sort("item")
    return frame["item"].to_numpy().astype(np.int64), frame["vector"].to_numpy()


def playlist_candidates(run: Run, seeds, score: str, pool_size: int):
    """``(indices, vectors, query)``: every item with its vector, or for an ANN-served method
    the ``pool_size`` nearest candidates of the seeds' query from the index."""

    from mp2v4rec.serve import ann_search, read_index, seed_query

    if run.meta["search"] != "ann":
        idx, vecs = item_vectors(run)
        return idx, vecs, seed_query(vecs[seeds], score)
    _, seed_vecs = item_vectors(run, seeds)  # candidates from the index, vectors of those only
    query = seed_query(seed_vecs, score)
    index = read_index(run.path("index"))
    pool, _ = ann_search(
        index, query[None], pool_size + seeds.size, run.meta["ann"]["nprobe"], score
    )
    idx, vecs = item_vectors(run, pool[0][pool[0] >= 0])
    return idx, vecs, query


def cmd_playlist(args) -> None:
    import numpy as np

    from mp2v4rec.serve import in_space, mmr

    if not 0.0 <= args.diversity <= 1.0:
        raise CliError(f"--diversity must be between 0 and 1, got {args.diversity}")
    if args.max_per_category is not None and args.max_per_category < 1:
        raise CliError(f"--max-per-category must be at least 1, got {args.max_per_category}")
    run = Run(args.results_dir, args.method)
    raws = [parse_id(t, "seed item") for t in args.seed_items.split(",") if t.strip()]
    if not raws:
        raise CliError("--seed-items needs at least one raw item id, e.g. --seed-items 12,40")
    found = lookup_items(run, raws)
    missing = [r for r in raws if r not in found]
    if missing:
        raise unknown_item(run, missing[0])
    seeds = np.array(sorted({found[r]["item"] for r in raws}), dtype=np.int64)
    score = run.meta["score"]
    pool_size = max(20 * args.n, 1000)
    idx, vecs, query = playlist_candidates(run, seeds, score, pool_size)
    if not np.any(query):
        raise CliError(
            f"none of the seed items has a vector in {run.method} (they never occurred in "
            "training); seed with other items"
        )
    space = in_space(vecs, score)
    relevance = space @ query
    keep = np.any(vecs != 0, axis=1) & ~np.isin(idx, seeds)  # seeds and untrained items out
    cand = np.flatnonzero(keep)
    cand = cand[np.lexsort((idx[cand], -relevance[cand]))][:pool_size]
    cats = categories_of(run, idx[cand].tolist())
    primary = np.array([(cats.get(int(i)) or [-1])[0] for i in idx[cand]], dtype=np.int64)
    order = mmr(
        relevance[cand],
        space[cand],
        args.n,
        diversity=args.diversity,
        categories=primary,
        max_per_category=args.max_per_category,
    )
    import polars as pl

    chosen = cand[order]
    ranked = pl.DataFrame(
        {
            "rank": np.arange(1, chosen.size + 1),
            "index": idx[chosen],
            "score": relevance[chosen].astype(np.float64),
        }
    )
    items = pl.scan_parquet(run.data("items")).select(index="item", raw_id="raw_id")
    ranked = ranked.lazy().join(items, on="index", how="left", maintain_order="left")
    ranked = ranked.select("rank", "raw_id", "index", "score").collect()
    results = result_rows(run, ranked, cats)
    cap = "" if args.max_per_category is None else f", at most {args.max_per_category}/category"
    header = (
        f"playlist continuing {', '.join(map(str, raws))} by {run.method} ({score} to the "
        f"seeds' mean; "
        f"diversity {args.diversity:g}{cap})"
    )
    if len(results) < args.n:
        why = "the category cap" if args.max_per_category is not None else "the catalogue"
        header += f"\n{len(results)} of {args.n} items: {why} leaves no more candidates"
    query_info = {
        "seed_items": raws,
        "diversity": args.diversity,
        "max_per_category": args.max_per_category,
        "score": score,
    }
    emit(args, header, query_info, results)


# --- entry point -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Look up similar items, a user's recommendations or a playlist continuation "
        "in a run's serving artefacts (results/{dataset}/serve/{method}/).",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text, func, n):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("results_dir", metavar="RESULTS_DIR", help="results/{dataset}")
        p.add_argument("--method", required=True, help="a served method, e.g. mp2v")
        p.add_argument("-n", type=int, default=n, help=f"list length (default {n})")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=func)
        return p

    command("similar", "items most similar to an item", cmd_similar, 20).add_argument(
        "--item", required=True, help="raw item id"
    )
    command("recommend", "a user's top items (train items masked)", cmd_recommend, 20).add_argument(
        "--user", required=True, help="raw user id"
    )
    p = command("playlist", "continue a playlist from its seed items", cmd_playlist, 30)
    p.add_argument("--seed-items", required=True, help="comma-separated raw item ids")
    p.add_argument(
        "--diversity",
        type=float,
        default=0.0,
        help="MMR trade-off: 0 ranks by similarity to the seeds only, 1 by novelty only",
    )
    p.add_argument(
        "--max-per-category", type=int, default=None, help="at most this many items per category"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.n < 1:
        print(f"{PROG}: error: -n must be at least 1, got {args.n}", file=sys.stderr)
        return 2
    Run.opened.clear()
    try:
        args.func(args)
    except CliError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.code
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except Exception as exc:  # noqa: BLE001 - a damaged artefact found while reading it
        run = Run.opened[-1] if Run.opened else None
        if run is None or not run.touched:
            raise
        names = ", ".join(str(p) for p in dict.fromkeys(run.touched))
        print(
            f"{PROG}: error: reading {names} failed ({first_line(exc)}): a file is damaged; "
            f"{run.rebuild(run.touched[-1])}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
