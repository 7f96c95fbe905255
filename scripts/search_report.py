"""Rule search_report: the selected cell's metrics (test reported, chosen on validation)."""

import json
import logging

import polars as pl

from mp2v4rec.io import run_rule, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    winner = json.loads(open(smk.input.best).read())
    table = pl.read_csv(smk.input.metrics, separator="\t").select(
        pl.lit(winner["method"]).alias("method"),
        pl.lit(winner["variant"]).alias("variant"),
        pl.all(),
    )
    write_tsv(table, smk.output[0])
    log.info("winner %s: %s", winner["variant"], winner["selected_on"])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
