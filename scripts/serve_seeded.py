"""Rule evaluate_seeded: continue each evaluated user's last train items as a playlist and
score the continuation against their held-out test items (protocol `seeded`): the user's train
items and validation positives never take a slot, cold test pairs follow evaluate.cold. A model
scored against context vectors continues in the item table (context or input) that scores
better on validation."""

import logging

import polars as pl

from mp2v4rec.evaluation import for_users, headline_truths
from mp2v4rec.io import count_rows, run_rule, write_tsv
from mp2v4rec.kinds import kind_of
from mp2v4rec.models import load_model
from mp2v4rec.protocols import choose_item_space, seeded_lists, seeded_table

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    p = smk.params
    model = None  # popularity: the reference line, no model
    if "model" in smk.input.keys():
        model = load_model(kind_of(p.settings).model, smk.input.model, p.settings)
    evaluated = pl.read_parquet(smk.input.evaluated)["user"].to_numpy()
    train = pl.read_parquet(smk.input.train)
    held_out = for_users(
        {split: pl.read_parquet(smk.input[split]) for split in ("valid", "test")}, evaluated
    )
    sizes = dict(n_users=count_rows(smk.input.user_table), n_items=count_rows(smk.input.item_table))
    if model is not None:  # context-scored models: the item table chosen on validation
        space, recall = choose_item_space(
            model,
            train,
            held_out["valid"],
            evaluated,
            **sizes,
            seed_items=p.seed_items,
            k=max(p.ks),
        )
        model = model if space == "own" else model.item_space(space)
    recs, counts = seeded_lists(
        model,
        train,
        evaluated,
        **sizes,
        seed_items=p.seed_items,
        k=max(p.ks),
        exclude=held_out["valid"],
    )
    truths, _ = headline_truths(held_out, train, p.cold)
    table = seeded_table(recs, truths["test"], p.ks, n_boot=p.bootstrap, seed=p.seed)
    log.info("%s; at K=%d:\n%s", counts, max(p.ks), table.filter(pl.col("k") == max(p.ks)))
    write_tsv(table, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
