"""Rule recommend: top-K items by embedding score for one block of the evaluated users, one
list per held-out split (train items and the other split's positives masked)."""

import logging

import polars as pl

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.embed import load_embeddings
from mp2v4rec.io import run_rule, write_parquet
from mp2v4rec.recommend import embedding_scorer, split_recs, user_block

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    user_vectors, item_vectors, score = load_embeddings(smk.input.embeddings)
    users = user_block(  # this job's block of the evaluated users
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(), p.block, p.n_blocks
    )
    recs = split_recs(
        embedding_scorer(user_vectors, item_vectors, score=score),
        users,
        pl.read_parquet(smk.input.train),
        {split: pl.read_parquet(smk.input[split]) for split in SPLITS},
        user_vectors.shape[0],
        item_vectors.shape[0],
        splits=p.splits,
        k=p.k,
        mask_seen=p.mask_seen,
        chunk_size=p.chunk_size,
    )
    log.info("%d users, %d recommendations (%s score)", users.size, recs.height, score)
    write_parquet(recs, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
