# Top-K recommendation for the evaluated users (one job per user block, gathered by merge_recs;
# one list per held-out split), accuracy metrics, and the summary table.


rule evaluated_users:
    input:
        data_file("users.parquet"),
    output:
        data_file("evaluated_users.parquet"),
    log:
        f"{R}/logs/evaluated_users.log",
    benchmark:
        f"{R}/benchmarks/evaluated_users.tsv"
    params:
        sample=config["evaluate"]["sample_users"],
        seed=config["evaluate"]["seed"],
    script:
        "../../scripts/evaluated_users.py"


rule recommend:
    input:
        unpack(held_out_inputs),
        unpack(model_inputs),
        evaluated=data_file("evaluated_users.parquet"),
        train=data_file("train.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
    output:
        temp(f"{R}/recs/{{method}}/{{variant}}/block{{block}}.parquet"),
    log:
        f"{R}/logs/recommend/{{method}}/{{variant}}/block{{block}}.log",
    benchmark:
        f"{R}/benchmarks/recommend/{{method}}/{{variant}}/block{{block}}.tsv"
    resources:
        mem_mb=scaled(8, 2000),
        runtime=scaled(0.2, 10, per_attempt=False),
    params:
        settings=lambda w: plain(settings(w)),
        k=config["recommend"]["k"],
        mask_seen=config["recommend"]["mask_seen"],
        chunk_size=config["recommend"]["chunk_size"],
        block=lambda w: int(w.block),
        n_blocks=config["recommend"]["user_blocks"],
        splits=plain(config["evaluate"]["splits"]),
    script:
        "../../scripts/recommend.py"


rule merge_recs:
    input:
        blocks=rec_blocks,
        evaluated=data_file("evaluated_users.parquet"),
    output:
        f"{R}/recs/{{method}}/{{variant}}.parquet",
    log:
        f"{R}/logs/merge_recs/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/merge_recs/{{method}}/{{variant}}.tsv"
    script:
        "../../scripts/merge_recs.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
        unpack(held_out_inputs),
        evaluated=data_file("evaluated_users.parquet"),
        recs=f"{R}/recs/{{method}}/{{variant}}.parquet",
        train=data_file("train.parquet"),
        item_table=data_file("items.parquet"),
    output:
        metrics=f"{R}/metrics/{{method}}/{{variant}}.tsv",
        per_user=f"{R}/metrics/{{method}}/{{variant}}.per_user.parquet",
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
        per_user_ks=plain(config["evaluate"]["per_user_ks"]),
        cold=config["evaluate"]["cold"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["evaluate"]["seed"],
    script:
        "../../scripts/evaluate.py"


rule evaluate_protocols:
    input:
        unpack(held_out_inputs),
        evaluated=data_file("evaluated_users.parquet"),
        embeddings=f"{R}/models/{{method}}/{{variant}}/embeddings.npz",
        recs=f"{R}/recs/{{method}}/{{variant}}.parquet",
        train=data_file("train.parquet"),
        block=data_file("block.parquet"),
        item_table=data_file("items.parquet"),
    output:
        f"{R}/metrics/{{method}}/{{variant}}.protocols.tsv",
    log:
        f"{R}/logs/evaluate_protocols/{{method}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate_protocols/{{method}}/{{variant}}.tsv"
    resources:
        mem_mb=scaled(8, 1000),
        runtime=scaled(0.2, 10, per_attempt=False),
    params:
        protocols=plain(config["evaluate"]["protocols"]),
        splits=plain(config["evaluate"]["splits"]),
        cold=config["evaluate"]["cold"],
        ks=plain(config["evaluate"]["ks"]),
        k=config["recommend"]["k"],
        threshold=lambda w: relevance_threshold(w.dataset),
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["evaluate"]["seed"],
    script:
        "../../scripts/evaluate_protocols.py"


rule metrics_table:
    input:
        metrics=run_metrics,
        protocols=protocol_metrics,
        seeded=seeded_metrics,
    output:
        report(
            f"{R}/tables/metrics.tsv",
            caption="../report/metrics_table.rst",
            category="Tables",
        ),
    log:
        f"{R}/logs/metrics_table.log",
    benchmark:
        f"{R}/benchmarks/metrics_table.tsv"
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
    benchmark:
        f"{R}/benchmarks/ablation_table.tsv"
    params:
        variants=lambda w: grid_variants(ABLATION["grid"]),
        axes=list(ABLATION["grid"]),
        metrics=plain(ABLATION["metrics"]),
        ks=plain(ABLATION["ks"]),
        method=ABLATION["method"],
        method_order=list(METHODS),
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
    benchmark:
        f"{R}/benchmarks/search_select.tsv"
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
    benchmark:
        f"{R}/benchmarks/search_report.tsv"
    script:
        "../../scripts/search_report.py"


rule summary_table:
    input:
        metrics=lambda w: metrics_paths(w, default_runs()),
        per_user=lambda w: per_user_paths(w, default_runs()),
    output:
        report(
            f"{R}/tables/summary.tsv",
            caption="../report/summary_table.rst",
            category="Tables",
        ),
    log:
        f"{R}/logs/summary_table.log",
    benchmark:
        f"{R}/benchmarks/summary_table.tsv"
    params:
        runs=lambda w: [m for m, _ in default_runs()],
        baselines=lambda w: baseline_methods(),
        ks=plain(config["evaluate"]["per_user_ks"]),
        bootstrap=config["evaluate"]["bootstrap"],
        permutations=config["evaluate"]["permutations"],
        seed=config["evaluate"]["seed"],
    script:
        "../../scripts/summary_table.py"
