"""Rule metrics_table: every run's metrics, under every protocol, in one tidy table."""

import logging

import polars as pl

from mp2v4rec.io import run_rule, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def read(path, method, variant):
    return pl.read_csv(path, separator="\t").select(
        pl.lit(method).alias("method"), pl.lit(variant).alias("variant"), pl.all()
    )


def main(smk):
    runs = smk.params.runs
    tables = [read(path, m, v) for path, (m, v) in zip(smk.input.metrics, runs, strict=True)]
    for path in smk.input.protocols:  # metrics/{method}/{variant}.protocols.tsv
        method, variant = path.split("/")[-2], path.split("/")[-1].removesuffix(".protocols.tsv")
        tables.append(read(path, method, variant))
    for path in smk.input.seeded:  # metrics/{method}/default.seeded.tsv: playlist continuation
        seeded = read(path, path.split("/")[-2], "default").drop("protocol")
        tables.append(seeded.with_columns(candidates=pl.lit("seeded"), native=pl.lit(True)))
    table = pl.concat(tables, how="diagonal_relaxed")
    write_tsv(table, smk.output[0])
    log.info("%d rows from %d runs", table.height, len(runs))


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
