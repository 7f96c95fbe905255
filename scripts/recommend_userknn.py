"""Rule recommend_userknn: top-K lists from cosine user-user neighbours for one block of the
evaluated users, one list per held-out split (as rule recommend)."""

import polars as pl

from mp2v4rec.baselines.userknn import userknn_scorer
from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import count_rows, run_rule, write_parquet
from mp2v4rec.recommend import split_recs, user_block


def main(smk):
    p, s = smk.params, smk.params.settings
    n_users, n_items = count_rows(smk.input.user_table), count_rows(smk.input.item_table)
    train = pl.read_parquet(smk.input.train)
    users = user_block(pl.read_parquet(smk.input.evaluated)["user"].to_numpy(), p.block, p.n_blocks)
    recs = split_recs(
        userknn_scorer(
            train, n_users, n_items, k_neighbors=s["k_neighbors"], weighted=s["weighted"]
        ),
        users,
        train,
        {split: pl.read_parquet(smk.input[split]) for split in SPLITS},
        n_users,
        n_items,
        splits=p.splits,
        k=p.k,
        mask_seen=p.mask_seen,
        chunk_size=s["chunk_size"],
    )
    write_parquet(recs, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
