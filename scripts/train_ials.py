"""Rule train_ials: iALS factors of the best validation iteration, and the curve."""

import polars as pl

from mp2v4rec.baselines.ials import train_ials
from mp2v4rec.embed import save_embeddings
from mp2v4rec.io import count_rows, run_rule, write_tsv


def main(smk):
    s = {k: v for k, v in smk.params.settings.items() if k != "kind"}
    users, items, curve = train_ials(
        pl.read_parquet(smk.input.train),
        count_rows(smk.input.user_table),
        count_rows(smk.input.item_table),
        pl.read_parquet(smk.input.valid),
        **s,
        threads=smk.threads,
        k=smk.params.k,
    )
    save_embeddings(smk.output.embeddings, users, items, "dot")
    write_tsv(curve, smk.output.curve)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
