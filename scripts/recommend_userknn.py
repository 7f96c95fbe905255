"""Rule recommend_userknn: top-K lists from cosine user-user neighbours, for one block of the
evaluated users."""

import numpy as np
import polars as pl

from mp2v4rec.baselines.userknn import userknn_recommend
from mp2v4rec.io import count_rows, script_logger, write_parquet
from mp2v4rec.recommend import recs_frame, user_block


def main(smk):
    log = script_logger(smk.log[0], "recommend_userknn")
    s = smk.params.settings
    users = pl.read_parquet(smk.input.user_table)
    evaluated = user_block(
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
        smk.params.block,
        smk.params.n_blocks,
    ).astype(np.int32)
    items, scores = userknn_recommend(
        pl.read_parquet(smk.input.train),
        users.height,
        count_rows(smk.input.item_table),
        evaluated,
        k_neighbors=s["k_neighbors"],
        k=smk.params.k,
        mask_seen=smk.params.mask_seen,
        weighted=s["weighted"],
        chunk_size=s["chunk_size"],
        log=log,
    )
    write_parquet(recs_frame(evaluated, items, scores), smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
