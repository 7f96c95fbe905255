# Top-K recommendation for the evaluated users, accuracy metrics, and the summary table.


rule recommend:
    input:
        embeddings=f"{R}/models/{{method}}/{{variant}}/embeddings.npz",
        train=f"{R}/data/train.parquet",
        user_table=f"{R}/data/users.parquet",
    output:
        f"{R}/recs/{{method}}/{{variant}}.parquet",
    log:
        f"{R}/logs/recommend/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/recommend/{{method}}/{{variant}}.tsv"
    resources:
        mem_mb=scaled(8, 2000),
        runtime=scaled(0.2, 10, per_attempt=False),
    params:
        k=config["recommend"]["k"],
        mask_seen=config["recommend"]["mask_seen"],
        chunk_size=config["recommend"]["chunk_size"],
    script:
        "../../scripts/recommend.py"


rule evaluate:
    input:
        recs=f"{R}/recs/{{method}}/{{variant}}.parquet",
        valid=f"{R}/data/valid.parquet",
        test=f"{R}/data/test.parquet",
    output:
        f"{R}/metrics/{{method}}/{{variant}}.tsv",
    log:
        f"{R}/logs/evaluate/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{method}}/{{variant}}.tsv"
    resources:
        mem_mb=scaled(8, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    params:
        ks=plain(config["evaluate"]["ks"]),
        splits=plain(config["evaluate"]["splits"]),
    script:
        "../../scripts/evaluate.py"


rule metrics_table:
    input:
        run_metrics,
    output:
        report(
            f"{R}/tables/metrics.tsv",
            caption="../report/metrics_table.rst",
            category="Tables",
        ),
    log:
        f"{R}/logs/metrics_table.log",
    params:
        runs=lambda w: [list(r) for r in runs()],
    script:
        "../../scripts/metrics_table.py"
