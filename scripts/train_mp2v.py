"""Rule train_mp2v: skip-gram on metapath walks; user and item vectors from their tokens."""


from mp2v4rec.embed import save_embeddings, token_matrix, train_skipgram
from mp2v4rec.io import count_rows, script_logger


def main(smk):
    log = script_logger(smk.log[0], "train_mp2v")
    wv = train_skipgram(smk.input.corpus, **smk.params.train, workers=smk.threads, log=log)
    n_users = count_rows(smk.input.user_table)
    n_items = count_rows(smk.input.item_table)
    users, items = token_matrix(wv, "u", n_users), token_matrix(wv, "i", n_items)
    log.info("users with a vector: %d/%d", int((users != 0).any(axis=1).sum()), n_users)
    log.info("items with a vector: %d/%d", int((items != 0).any(axis=1).sum()), n_items)
    save_embeddings(smk.output[0], users, items, "cosine")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
