"""Rule walk_shard: one shard of the metapath walks of a walk set, as LineSentence text."""

import logging

from mp2v4rec.graph import load_graph
from mp2v4rec.io import run_rule
from mp2v4rec.walks import write_walks

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    stats = write_walks(
        load_graph(smk.input[0]),
        smk.output[0],
        **smk.params.walk,
        shard=smk.params.shard,
        n_shards=smk.params.n_shards,
        threads=smk.threads,
    )
    log.info("done: %s", stats)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
