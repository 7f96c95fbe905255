# The graph and the corpora skip-gram trains on: metapath walks (sharded) and W2V sequences.


rule build_graph:
    input:
        train=data_file("train.parquet"),
        social=data_file("social.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
    output:
        f"{R}/graph/graph.npz",
    log:
        f"{R}/logs/build_graph.log",
    benchmark:
        f"{R}/benchmarks/build_graph.tsv"
    resources:
        mem_mb=scaled(8, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    params:
        symmetric_social=config["graph"]["symmetric_social"],
    script:
        "../../scripts/build_graph.py"


rule walk_shard:
    input:
        f"{R}/graph/graph.npz",
    output:
        temp(f"{R}/walks/{{walkset}}/shard{{shard}}.txt"),
    log:
        f"{R}/logs/walks/{{walkset}}/shard{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/walks/{{walkset}}/shard{{shard}}.tsv"
    threads: config["walks"]["threads"]
    resources:
        mem_mb=scaled(4, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    params:
        walk=lambda w: plain(walk_settings(config, w.walkset)),
        shard=lambda w: int(w.shard),
        n_shards=config["walks"]["shards"],
    script:
        "../../scripts/walk_shard.py"


rule walk_corpus:
    input:
        walk_shards,
    output:
        f"{R}/walks/{{walkset}}/corpus.txt",
    log:
        f"{R}/logs/walks/{{walkset}}/corpus.log",
    benchmark:
        f"{R}/benchmarks/walks/{{walkset}}/corpus.tsv"
    shell:
        "(cat {input} > {output}.tmp && mv {output}.tmp {output} && wc -l {output}) > {log} 2>&1"


rule sequences:
    input:
        data_file("train.parquet"),
    output:
        f"{R}/sequences/corpus.txt",
    log:
        f"{R}/logs/sequences.log",
    benchmark:
        f"{R}/benchmarks/sequences.tsv"
    resources:
        mem_mb=scaled(8, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    script:
        "../../scripts/sequences.py"
