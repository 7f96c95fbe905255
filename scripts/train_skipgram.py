"""Rules train_mp2v and train_w2v: skip-gram on walks or watch sequences, best epoch kept."""

import logging

import polars as pl

from mp2v4rec.embed import fit_skipgram_method, init_vectors, load_embeddings, save_embeddings
from mp2v4rec.io import count_rows, run_rule, write_tsv

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    params = dict(smk.params.train)
    score = params.pop("score")
    init = None
    if params.pop("init", "random") == "w2v":
        users, items, _ = load_embeddings(smk.input.init)
        init = init_vectors(users, items)
        log.info("starting from W2V vectors: %d tokens", len(init))
    validation = smk.params.validation
    users, items, saved_score, curve = fit_skipgram_method(
        smk.input.corpus,
        user_vectors_from="tokens" if smk.params.kind == "mp2v" else "items",
        train=pl.read_parquet(smk.input.train),
        valid=pl.read_parquet(smk.input.valid) if validation["keep_best_epoch"] else None,
        n_users=count_rows(smk.input.user_table),
        n_items=count_rows(smk.input.item_table),
        params=params,
        score=score,
        validation_k=validation["k"],
        workers=smk.threads,
        init=init,
    )
    log.info("users with a vector: %d/%d", int((users != 0).any(axis=1).sum()), len(users))
    log.info("items with a vector: %d/%d", int((items != 0).any(axis=1).sum()), len(items))
    save_embeddings(smk.output.embeddings, users, items, saved_score)
    write_tsv(curve, smk.output.curve)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
