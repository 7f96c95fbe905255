# Strong baselines: UltraGCN and iALS (embeddings, best validation epoch kept) and UserKNN
# (recommendations directly).


rule train_ultragcn:
    input:
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
        method=alternation(methods_of("ultragcn")),
    resources:
        mem_mb=scaled(20, 2000),
        runtime=scaled(2.0, 60, per_attempt=False),
    params:
        settings=lambda w: plain(settings(w)),
        k=config["train"]["validation"]["k"],
    script:
        "../../scripts/train_ultragcn.py"


rule train_ials:
    input:
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
        method=alternation(methods_of("ials")),
    threads: config["train"]["threads"]
    resources:
        mem_mb=scaled(20, 2000),
        runtime=scaled(1.0, 30, per_attempt=False),
    params:
        settings=lambda w: plain(settings(w)),
        k=config["train"]["validation"]["k"],
    script:
        "../../scripts/train_ials.py"


rule recommend_userknn:
    input:
        unpack(held_out_inputs),
        evaluated=f"{R}/data/evaluated_users.parquet",
        train=f"{R}/data/train.parquet",
        user_table=f"{R}/data/users.parquet",
        item_table=f"{R}/data/items.parquet",
    output:
        temp(f"{R}/recs/{{method}}/{{variant}}/block{{block}}.parquet"),
    log:
        f"{R}/logs/recommend/{{method}}/{{variant}}/block{{block}}.log",
    benchmark:
        f"{R}/benchmarks/recommend/{{method}}/{{variant}}/block{{block}}.tsv"
    wildcard_constraints:
        method=alternation(methods_of("userknn")),
    resources:
        mem_mb=scaled(40, 2000),
        runtime=scaled(1.0, 30, per_attempt=False),
    params:
        settings=lambda w: plain(settings(w)),
        k=config["recommend"]["k"],
        mask_seen=config["recommend"]["mask_seen"],
        block=lambda w: int(w.block),
        n_blocks=config["recommend"]["user_blocks"],
        splits=plain(config["evaluate"]["splits"]),
    script:
        "../../scripts/recommend_userknn.py"
