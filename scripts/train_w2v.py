"""Rule train_w2v: item2vec on watch sequences; a user is the mean of their train items."""

import polars as pl

from mp2v4rec.embed import mean_item_vectors, save_embeddings, token_matrix, train_skipgram
from mp2v4rec.io import count_rows, script_logger


def main(smk):
    log = script_logger(smk.log[0], "train_w2v")
    wv = train_skipgram(smk.input.corpus, **smk.params.train, workers=smk.threads, log=log)
    n_users = count_rows(smk.input.user_table)
    n_items = count_rows(smk.input.item_table)
    items = token_matrix(wv, "i", n_items)
    users = mean_item_vectors(items, pl.read_parquet(smk.input.train), n_users)
    save_embeddings(smk.output[0], users, items, "cosine")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
