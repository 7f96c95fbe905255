# Training: every kind's fit function from the registry (mp2v4rec.kinds) through one script.
# Kinds with vectors write embeddings.npz and their validation curve; item-item kinds (EASE,
# RP3beta, ItemKNN) write their weights; UserKNN stores nothing (recommend fits it from train).


rule train:
    input:
        unpack(train_inputs),
    output:
        embeddings=model_file("embeddings"),
        curve=f"{R}/models/{{method}}/{{variant}}/curve.tsv",
    log:
        f"{R}/logs/train/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        method=alternation(methods_where(model="embeddings")),
    threads: config["train"]["threads"]
    resources:
        mem_mb=scaled(20, 2000),
        runtime=scaled(2.0, 60, per_attempt=False),
    params:
        settings=train_params,
        validation=plain(config["train"]["validation"]),
    script:
        "../../scripts/train.py"


rule train_item_item:
    input:
        unpack(train_inputs),
    output:
        model_file("item_item"),
    log:
        f"{R}/logs/train/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{method}}/{{variant}}.tsv"
    wildcard_constraints:
        method=alternation(methods_where(model="item_item")),
    threads: config["train"]["threads"]
    resources:
        mem_mb=scaled(40, 4000),
        runtime=scaled(1.0, 30, per_attempt=False),
    params:
        settings=train_params,
        validation=plain(config["train"]["validation"]),
    script:
        "../../scripts/train.py"
