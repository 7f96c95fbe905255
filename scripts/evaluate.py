"""Rule evaluate: accuracy and beyond-accuracy per split and activity cohort, with CIs."""

from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import run_rule
from mp2v4rec.jobs import evaluate_job


def main(smk):
    inputs = smk.input
    evaluate_job(
        recs=inputs.recs,
        evaluated=inputs.evaluated,
        held_out={split: inputs[split] for split in SPLITS},
        train=inputs.train,
        item_table=inputs.item_table,
        embeddings=inputs.get("embeddings"),
        reference=inputs.get("reference"),
        **dict(smk.output.items()),
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
