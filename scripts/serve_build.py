"""Rule serve: a method's serving artefacts (neighbour lists, every user's top-K; for embeddings
also the exported vectors and an ANN index for large catalogues) in results/{dataset}/serve/."""

import logging

import numba
import polars as pl
from threadpoolctl import threadpool_limits

from mp2v4rec.io import count_rows, run_rule
from mp2v4rec.kinds import kind_of
from mp2v4rec.models import load_model
from mp2v4rec.protocols import choose_item_space
from mp2v4rec.serve import build_serve


def main(smk):
    p = smk.params
    model = load_model(kind_of(p.settings).model, smk.input.model, p.settings)
    train = pl.read_parquet(smk.input.train)
    users = pl.read_parquet(smk.input.user_table)
    space, recall = choose_item_space(
        model,
        train,
        pl.read_parquet(smk.input.valid),
        pl.read_parquet(smk.input.evaluated)["user"].to_numpy(),
        n_users=users.height,
        n_items=count_rows(smk.input.item_table),
        seed_items=p.seed_items,
        k=p.neighbours,
    )
    numba.set_num_threads(min(smk.threads, numba.config.NUMBA_NUM_THREADS))  # top-k kernel
    with threadpool_limits(limits=smk.threads):  # matrix products; faiss gets `threads`
        meta = build_serve(
            smk.output[0],
            method=smk.wildcards.method,
            model=model,
            item_space=(space, recall),
            users=users,
            items=pl.read_parquet(smk.input.item_table),
            train=train,
            neighbours=p.neighbours,
            k=p.k,
            exact_max_items=p.exact_max_items,
            ann=p.ann,
            threads=smk.threads,
        )
    logging.getLogger("mp2v4rec.rules").info("served: %s", meta)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
