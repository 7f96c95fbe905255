"""Rule merge_recs: the top-K lists of every user block as one table."""

from mp2v4rec.io import run_rule
from mp2v4rec.jobs import merge_recs_job


def main(smk):
    merge_recs_job(blocks=smk.input.blocks, evaluated=smk.input.evaluated, output=smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
