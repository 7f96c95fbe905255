"""Rules train_mp2v and train_w2v: skip-gram on walks or watch sequences, best epoch kept."""

from mp2v4rec.io import run_rule
from mp2v4rec.jobs import skipgram_job


def main(smk):
    skipgram_job(
        **dict(smk.input.items()),
        **dict(smk.output.items()),
        kind=smk.params.kind,
        params=smk.params.train,
        validation=smk.params.validation,
        threads=smk.threads,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
