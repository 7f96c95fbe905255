"""Rule train_simple: popularity and random baselines in the embeddings contract."""

import logging

import polars as pl

from mp2v4rec.baselines.simple import popularity_embeddings, random_embeddings
from mp2v4rec.embed import save_embeddings
from mp2v4rec.io import count_rows, run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    s = smk.params.settings
    n_users = count_rows(smk.input.user_table)
    n_items = count_rows(smk.input.item_table)
    if s["kind"] == "popularity":
        vectors = popularity_embeddings(pl.read_parquet(smk.input.train), n_users, n_items)
    else:
        vectors = random_embeddings(n_users, n_items, s["dim"], s["seed"])
    save_embeddings(smk.output[0], *vectors)
    log.info("%s baseline for %d users x %d items", s["kind"], n_users, n_items)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
