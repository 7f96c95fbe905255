"""Rule recommend_userknn: top-K lists from cosine user-user neighbours for one block of the
evaluated users, one list per held-out split (as rule recommend)."""

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import run_rule
from mp2v4rec.jobs import recommend_userknn_job


def main(smk):
    p, s = smk.params, smk.params.settings
    recommend_userknn_job(
        train=smk.input.train,
        user_table=smk.input.user_table,
        item_table=smk.input.item_table,
        evaluated=smk.input.evaluated,
        held_out={split: smk.input[split] for split in SPLITS},
        output=smk.output[0],
        k_neighbors=s["k_neighbors"],
        weighted=s["weighted"],
        chunk_size=s["chunk_size"],
        **{key: p[key] for key in ("k", "mask_seen", "block", "n_blocks", "splits")},
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
