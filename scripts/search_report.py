"""Rule search_report: the selected cell's metrics (test reported, chosen on validation)."""

import json

import polars as pl

from mp2v4rec.io import script_logger, write_tsv


def main(smk):
    log = script_logger(smk.log[0], "search_report")
    winner = json.loads(open(smk.input.best).read())
    table = pl.read_csv(smk.input.metrics, separator="\t").select(
        pl.lit(winner["method"]).alias("method"),
        pl.lit(winner["variant"]).alias("variant"),
        pl.all(),
    )
    write_tsv(table, smk.output[0])
    log.info("winner %s: %s", winner["variant"], winner["selected_on"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
