"""Rule walk_shard: one shard of the metapath walks of a walk set, as LineSentence text."""

from mp2v4rec.io import run_rule
from mp2v4rec.jobs import walk_job


def main(smk):
    p = smk.params
    walk_job(
        graph=smk.input[0],
        output=smk.output[0],
        walk=p.walk,
        shard=p.shard,
        n_shards=p.n_shards,
        threads=smk.threads,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
