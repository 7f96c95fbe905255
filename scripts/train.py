"""Rules train and train_item_item: a method's model by its kind's fit function (the registry
of kinds), the best validation epoch kept where the kind has a curve."""

from threadpoolctl import threadpool_limits

from mp2v4rec.io import run_rule
from mp2v4rec.jobs import train_job


def main(smk):
    outputs = dict(smk.output.items())
    with threadpool_limits(limits=smk.threads):  # BLAS in EASE's solve and the matrix fits
        train_job(
            **dict(smk.input.items()),
            output=outputs.get("embeddings", smk.output[0]),
            curve=outputs.get("curve"),
            settings=smk.params.settings,
            validation=smk.params.validation,
            threads=smk.threads,
        )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
