"""Rule recommend: top-K items by embedding score for one block of the evaluated users."""

import numpy as np
import polars as pl

from mp2v4rec.embed import load_embeddings
from mp2v4rec.io import script_logger, write_parquet
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix, user_block


def main(smk):
    log = script_logger(smk.log[0], "recommend")
    user_vectors, item_vectors, score = load_embeddings(smk.input.embeddings)
    users = pl.read_parquet(smk.input.user_table)
    evaluated = user_block(  # this job's block of the evaluated users
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
        smk.params.block,
        smk.params.n_blocks,
    )
    seen = None
    if smk.params.mask_seen:
        seen = seen_matrix(pl.read_parquet(smk.input.train), users.height, item_vectors.shape[0])
    items, scores = recommend_top_k(
        user_vectors,
        item_vectors,
        evaluated,
        k=smk.params.k,
        score=score,
        seen=seen,
        chunk_size=smk.params.chunk_size,
        log=log,
    )
    recs = recs_frame(evaluated.astype(np.int32), items, scores)
    log.info("%d users, %d recommendations (%s score)", evaluated.size, recs.height, score)
    write_parquet(recs, smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
