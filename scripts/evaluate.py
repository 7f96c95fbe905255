"""Rule evaluate: accuracy and beyond-accuracy per split and activity cohort, with CIs."""

import logging

import polars as pl

from mp2v4rec.embed import load_embeddings
from mp2v4rec.evaluation import default_protocol, evaluate_run, for_users
from mp2v4rec.io import run_rule, write_parquet, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    item_vectors = reference = None
    score = "neighbours"  # UserKNN scores lists without embeddings
    if "embeddings" in smk.input.keys():
        _, item_vectors, score = load_embeddings(smk.input.embeddings)
    if "reference" in smk.input.keys():
        reference = load_embeddings(smk.input.reference)[1]
    truths = for_users(  # the evaluated users (all, or the configured sample) only
        {split: pl.read_parquet(smk.input[split]) for split in p.splits},
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
    )
    table, per_user = evaluate_run(
        pl.read_parquet(smk.input.recs),
        truths,
        pl.read_parquet(smk.input.train),
        pl.read_parquet(smk.input.item_table),
        p.ks,
        item_vectors=item_vectors,
        reference_vectors=reference,
        per_user_ks=p.per_user_ks,
        cold=p.cold,
        n_boot=p.bootstrap,
        seed=p.seed,
    )
    headline = table.filter((pl.col("cohort") == "all") & (pl.col("k") == max(p.ks)))
    log.info("at K=%d:\n%s", max(p.ks), headline)
    write_tsv(default_protocol(table, score), smk.output.metrics)
    write_parquet(per_user, smk.output.per_user)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
