"""Rule evaluate_protocols: a run under other candidate sets and score functions, graded NDCG and
AUC / GAUC on the observed block."""

import logging

import polars as pl

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.evaluation import evaluate_protocols
from mp2v4rec.io import run_rule, write_tsv
from mp2v4rec.models import load_embeddings

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p, proto = smk.params, smk.params.protocols
    user_vectors, item_vectors, native = load_embeddings(smk.input.embeddings)
    table = evaluate_protocols(
        user_vectors,
        item_vectors,
        native,
        pl.read_parquet(smk.input.train),
        {split: pl.read_parquet(smk.input[split]) for split in SPLITS},
        pl.read_parquet(smk.input.item_table),
        pl.read_parquet(smk.input.block),
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
        splits=p.splits,
        candidate_sets=proto["candidates"],
        scores=proto["scores"],
        ks=p.ks,
        k=p.k,
        cold=p.cold,
        n_negatives=proto["sampled_negatives"],
        blend_grid=tuple(proto["blend_grid"]),
        graded_cap=proto["graded_cap"],
        threshold=p.threshold,
        n_boot=p.bootstrap,
        seed=p.seed,
        recs=pl.read_parquet(smk.input.recs),
    )
    log.info(
        "%d rows; at K=%d:\n%s",
        table.height,
        p.k,
        table.filter(
            (pl.col("cohort") == "all") & (pl.col("split") == "test") & pl.col("k").is_in([0, p.k])
        ),
    )
    write_tsv(table, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
