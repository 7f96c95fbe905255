"""Rule summary_table: headline test metrics with CIs and paired tests against the best
baseline (chosen on validation)."""

import logging

import polars as pl

from mp2v4rec.evaluation import summary_table
from mp2v4rec.io import run_rule, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    tables = {
        r: pl.read_csv(f, separator="\t") for r, f in zip(p.runs, smk.input.metrics, strict=True)
    }
    per_user = {r: pl.read_parquet(f) for r, f in zip(p.runs, smk.input.per_user, strict=True)}
    summary, best = summary_table(
        tables,
        per_user,
        p.baselines,
        ks=p.ks,
        select_k=max(p.ks),
        n_boot=p.bootstrap,
        n_flips=p.permutations,
        seed=p.seed,
    )
    log.info("best baseline on validation Recall@%d: %s", max(p.ks), best)
    write_tsv(summary, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
