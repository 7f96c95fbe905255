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


rule ablation_table:
    input:
        ablation_metrics,
    output:
        table=report(
            f"{R}/tables/ablation.tsv",
            caption="../report/ablation.rst",
            category="Tables",
        ),
        figure=report(
            f"{R}/figures/ablation.png",
            caption="../report/ablation.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/ablation_table.log",
    params:
        variants=lambda w: grid_variants(ABLATION["grid"]),
        axes=list(ABLATION["grid"]),
        metrics=plain(ABLATION["metrics"]),
        ks=plain(ABLATION["ks"]),
        method=ABLATION["method"],
    script:
        "../../scripts/ablation_table.py"


checkpoint search_select:
    input:
        search_metrics,
    output:
        table=f"{R}/tables/search.tsv",
        best=f"{R}/search/best.json",
    log:
        f"{R}/logs/search_select.log",
    params:
        variants=lambda w: grid_variants(SEARCH["grid"]),
        method=SEARCH["method"],
        metric=SEARCH["metric"],
        k=SEARCH["k"],
    script:
        "../../scripts/search_select.py"


rule search_report:
    input:
        best=f"{R}/search/best.json",
        metrics=search_winner_metrics,
    output:
        f"{R}/tables/search_best.tsv",
    log:
        f"{R}/logs/search_report.log",
    script:
        "../../scripts/search_report.py"
