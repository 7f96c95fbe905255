"""Wall time and peak memory of every stage on KuaiRec-sized synthetic data.

Runs `snakemake all` on configs/kuairec-synthetic.yaml in a fresh work directory, then gathers
the per-job Snakemake benchmark files into one table (benchmarks/results/pipeline.tsv: a row
per job, then ``total``, the whole DAG's wall seconds; beside it ``pipeline_curves.tsv``, every
trained run's seconds and validation per epoch) and prints it with the time per stage.
Target (issue 22): the whole DAG, W2V + MP2V + R-MP2V and the references with the study's
settings, in <= 720 s on 2 cores on a quiet machine.

    .venv/bin/python benchmarks/pipeline.py [--workdir DIR] [--cores 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def collect(benchmark_dir: Path) -> pl.DataFrame:
    rows = []
    for path in sorted(benchmark_dir.rglob("*.tsv")):
        stats = pl.read_csv(path, separator="\t")
        job = str(path.relative_to(benchmark_dir).with_suffix(""))
        rows.append({"job": job, "seconds": stats["s"][0], "max_rss_mb": stats["max_rss"][0]})
    return pl.DataFrame(rows).sort("seconds", descending=True)


def curves(models: Path) -> pl.DataFrame:
    """Every trained run's training curve (seconds and validation per epoch), one table."""
    frames = [
        pl.read_csv(path, separator="\t").select(
            pl.lit(str(path.parent.relative_to(models))).alias("run"), pl.all()
        )
        for path in sorted(models.rglob("curve.tsv"))
        if path.stat().st_size > 1  # popularity and random write an empty curve
    ]
    return pl.concat(frames, how="diagonal_relaxed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/kuairec-synthetic.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pipeline.tsv")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mp2v4rec-pipeline-"))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "all",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(args.cores),
        "--configfile",
        str(args.config),
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    dataset = next((workdir / "results").iterdir())
    table = collect(dataset / "benchmarks")
    total = pl.DataFrame({"job": ["total"], "seconds": [round(wall, 2)]})
    total = total.with_columns(max_rss_mb=table["max_rss_mb"].max())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pl.concat([table, total], how="vertical_relaxed").write_csv(args.out, separator="\t")
    curve_path = args.out.with_name(f"{args.out.stem}_curves.tsv")
    curves(dataset / "models").write_csv(curve_path, separator="\t", float_precision=4)
    stages = (
        table.with_columns(stage=pl.col("job").str.split("/").list.first())
        .group_by("stage")
        .agg(jobs=pl.len(), seconds=pl.col("seconds").sum().round(1))
        .sort("seconds", descending=True)
    )
    with pl.Config(tbl_rows=100, tbl_width_chars=120, fmt_str_lengths=90):
        print(table)
        print(stages)
    print(f"end to end: {wall:.0f} s with --cores {args.cores} ({workdir}); written to {args.out}")
    metrics = pl.read_csv(dataset / "tables/metrics.tsv", separator="\t")
    print(
        metrics.filter(
            (pl.col("split") == "test")
            & (pl.col("k") == 100)
            & pl.col("metric").is_in(["recall", "ndcg"])
        )
    )


if __name__ == "__main__":
    main()
