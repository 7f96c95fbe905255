"""Rule recommend: top-K items for one block of the evaluated users by the method's model (its
kind's: vectors, item-item weights, or UserKNN's neighbour sums), one list per held-out split."""

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import run_rule
from mp2v4rec.jobs import recommend_job


def main(smk):
    recommend_job(
        model=smk.input.get("model"),
        train=smk.input.train,
        user_table=smk.input.user_table,
        item_table=smk.input.item_table,
        evaluated=smk.input.evaluated,
        held_out={split: smk.input[split] for split in SPLITS},
        output=smk.output[0],
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
