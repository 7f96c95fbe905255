"""Rule recommend: top-K items by embedding score for one block of the evaluated users, one
list per held-out split (train items and the other split's positives masked)."""

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import run_rule
from mp2v4rec.jobs import recommend_job


def main(smk):
    recommend_job(
        embeddings=smk.input.embeddings,
        train=smk.input.train,
        evaluated=smk.input.evaluated,
        held_out={split: smk.input[split] for split in SPLITS},
        output=smk.output[0],
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
