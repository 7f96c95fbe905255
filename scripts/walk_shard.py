"""Rule walk_shard: one shard of the metapath walks of a walk set, as LineSentence text."""

from mp2v4rec.graph import load_graph
from mp2v4rec.io import script_logger
from mp2v4rec.walks import write_walks


def main(smk):
    log = script_logger(smk.log[0], "walk_shard")
    stats = write_walks(
        load_graph(smk.input[0]),
        smk.output[0],
        **smk.params.walk,
        shard=smk.params.shard,
        n_shards=smk.params.n_shards,
        threads=smk.threads,
        log=log,
    )
    log.info("done: %s", stats)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
