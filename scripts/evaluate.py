"""Rule evaluate: accuracy at each K on the validation and test splits."""

import polars as pl

from mp2v4rec.io import script_logger, write_tsv
from mp2v4rec.metrics import accuracy_metrics


def main(smk):
    log = script_logger(smk.log[0], "evaluate")
    recs = pl.read_parquet(smk.input.recs)
    tables = []
    for split in smk.params.splits:
        table = accuracy_metrics(recs, pl.read_parquet(smk.input[split]), smk.params.ks)
        tables.append(table.with_columns(pl.lit(split).alias("split")))
        log.info("%s: %s", split, table.filter(pl.col("k") == max(smk.params.ks)).rows())
    result = pl.concat(tables).select("split", "metric", "k", "value", "n_users")
    write_tsv(result, smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
