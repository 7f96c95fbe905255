"""Rule evaluate_seeded: continue each evaluated user's last train items as a playlist and
score the continuation against their held-out test items (protocol `seeded`)."""

import polars as pl

from mp2v4rec.io import script_logger, write_tsv
from mp2v4rec.serve import seeded_lists, seeded_table


def main(smk):
    log = script_logger(smk.log[0], "evaluate_seeded")
    p = smk.params
    users = pl.read_parquet(smk.input.user_table)
    items = pl.read_parquet(smk.input.item_table)
    item_vectors = score = None  # popularity: the reference line, no embeddings
    if "embeddings" in smk.input.keys():
        from mp2v4rec.embed import load_embeddings

        _, item_vectors, score = load_embeddings(smk.input.embeddings)
    evaluated = pl.read_parquet(smk.input.evaluated)["user"]
    recs, counts = seeded_lists(
        item_vectors,
        score,
        pl.read_parquet(smk.input.train),
        evaluated.to_numpy(),
        n_users=users.height,
        n_items=items.height,
        seed_items=p.seed_items,
        k=max(p.ks),
        log=log,
    )
    test = pl.read_parquet(smk.input.test).filter(pl.col("user").is_in(evaluated.implode()))
    table = seeded_table(recs, test, p.ks, n_boot=p.bootstrap, seed=p.seed)
    log.info("%s; at K=%d:\n%s", counts, max(p.ks), table.filter(pl.col("k") == max(p.ks)))
    write_tsv(table, smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
