"""Rule metrics_table: every run's metrics in one tidy table."""

import polars as pl

from mp2v4rec.io import script_logger, write_tsv


def main(smk):
    log = script_logger(smk.log[0], "metrics_table")
    tables = [
        pl.read_csv(path, separator="\t").select(
            pl.lit(method).alias("method"), pl.lit(variant).alias("variant"), pl.all()
        )
        for path, (method, variant) in zip(smk.input, smk.params.runs, strict=True)
    ]
    table = pl.concat(tables)
    write_tsv(table, smk.output[0])
    log.info("%d rows from %d runs", table.height, len(tables))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
