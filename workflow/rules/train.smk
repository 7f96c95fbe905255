# Training: skip-gram on metapath walks (MP2V, R-MP2V), on watch sequences (W2V), and the
# simple baselines (popularity, random). Every method writes the same embeddings contract.


rule train_mp2v:
    input:
        unpack(mp2v_inputs),
        train=f"{R}/data/train.parquet",
        valid=f"{R}/data/valid.parquet",
        user_table=f"{R}/data/users.parquet",
        item_table=f"{R}/data/items.parquet",
    output:
        embeddings=f"{R}/models/{{method}}/{{variant}}/embeddings.npz",
        curve=f"{R}/models/{{method}}/{{variant}}/curve.tsv",
    log:
        f"{R}/logs/train/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        method=alternation(methods_of("mp2v")),
    threads: config["train"]["threads"]
    resources:
        mem_mb=scaled(4, 2000),
        runtime=scaled(1.0, 30, per_attempt=False),
    params:
        train=train_params,
        kind=lambda w: METHODS[w.method]["kind"],
        validation=plain(config["train"]["validation"]),
    script:
        "../../scripts/train_skipgram.py"


rule train_w2v:
    input:
        corpus=f"{R}/sequences/corpus.txt",
        train=f"{R}/data/train.parquet",
        valid=f"{R}/data/valid.parquet",
        user_table=f"{R}/data/users.parquet",
        item_table=f"{R}/data/items.parquet",
    output:
        embeddings=f"{R}/models/{{method}}/{{variant}}/embeddings.npz",
        curve=f"{R}/models/{{method}}/{{variant}}/curve.tsv",
    log:
        f"{R}/logs/train/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        method=alternation(methods_of("w2v")),
    threads: config["train"]["threads"]
    resources:
        mem_mb=scaled(4, 2000),
        runtime=scaled(2.0, 30, per_attempt=False),
    params:
        train=train_params,
        kind=lambda w: METHODS[w.method]["kind"],
        validation=plain(config["train"]["validation"]),
    script:
        "../../scripts/train_skipgram.py"


rule train_simple:
    input:
        train=f"{R}/data/train.parquet",
        user_table=f"{R}/data/users.parquet",
        item_table=f"{R}/data/items.parquet",
    output:
        f"{R}/models/{{method}}/{{variant}}/embeddings.npz",
    log:
        f"{R}/logs/train/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        method=alternation(methods_of("popularity") + methods_of("random")),
    resources:
        mem_mb=scaled(4, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    params:
        settings=lambda w: plain(settings(w)),
    script:
        "../../scripts/train_simple.py"
