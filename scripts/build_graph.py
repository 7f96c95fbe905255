"""Rule build_graph: CSR adjacency per relation from the train interactions and friendships."""

from mp2v4rec.io import run_rule
from mp2v4rec.jobs import graph_job


def main(smk):
    graph_job(**dict(smk.input.items()), output=smk.output[0], **dict(smk.params.items()))


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
