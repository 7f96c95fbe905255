# The study's figures.


rule plot_metrics_by_k:
    input:
        f"{R}/tables/metrics.tsv",
    output:
        report(
            f"{R}/figures/metrics_by_k.png",
            caption="../report/metrics_by_k.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_metrics_by_k.log",
    benchmark:
        f"{R}/benchmarks/plot_metrics_by_k.tsv"
    params:
        method_order=list(METHODS),
        split=config["plots"]["split"],
    script:
        "../../scripts/plot_metrics_by_k.py"


rule plot_pca:
    input:
        unpack(
            lambda w: {
                "item_table": data_file("items.parquet").format(**w),
                **pca_inputs(w),
            }
        ),
    output:
        report(
            f"{R}/figures/pca_embeddings.png",
            caption="../report/pca_embeddings.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_pca.log",
    benchmark:
        f"{R}/benchmarks/plot_pca.tsv"
    params:
        method_order=list(METHODS),
        methods=plain(config["plots"]["pca_methods"]),
        max_items=config["plots"]["pca_max_items"],
        seed=config["plots"]["seed"],
    script:
        "../../scripts/plot_pca.py"


rule plot_beyond_accuracy:
    input:
        table=f"{R}/tables/metrics.tsv",
        per_user=lambda w: per_user_paths(w, default_runs()),
        recs=lambda w: [
            f"{R}/recs/{m}/{v}.parquet".format(**w) for m, v in default_runs()
        ],
        item_table=data_file("items.parquet"),
    output:
        diversity=report(
            f"{R}/figures/diversity_histogram.png",
            caption="../report/diversity_histogram.rst",
            category="Figures",
        ),
        categories=report(
            f"{R}/figures/feature_diversity.png",
            caption="../report/feature_diversity.rst",
            category="Figures",
        ),
        lorenz=report(
            f"{R}/figures/lorenz_curves.png",
            caption="../report/lorenz_curves.rst",
            category="Figures",
        ),
        cohorts=report(
            f"{R}/figures/cohort_metrics.png",
            caption="../report/cohort_metrics.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_beyond_accuracy.log",
    benchmark:
        f"{R}/benchmarks/plot_beyond_accuracy.tsv"
    params:
        method_order=list(METHODS),
        runs=lambda w: [m for m, _ in default_runs()],
        k=max(config["evaluate"]["per_user_ks"]),
        cohort_ks=plain(config["evaluate"]["per_user_ks"][-2:]),
        split=config["plots"]["split"],
    script:
        "../../scripts/plot_beyond_accuracy.py"


rule plot_training_curves:
    input:
        lambda w: [
            f"{R}/models/{m}/default/curve.tsv".format(**w) for m in trained_methods()
        ],
    output:
        report(
            f"{R}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_training_curves.log",
    benchmark:
        f"{R}/benchmarks/plot_training_curves.tsv"
    params:
        method_order=list(METHODS),
        methods=lambda w: trained_methods(),
        k=config["train"]["validation"]["k"],
    script:
        "../../scripts/plot_training_curves.py"


rule plot_metrics_by_protocol:
    input:
        f"{R}/tables/metrics.tsv",
    output:
        report(
            f"{R}/figures/metrics_by_protocol.png",
            caption="../report/metrics_by_protocol.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_metrics_by_protocol.log",
    benchmark:
        f"{R}/benchmarks/plot_metrics_by_protocol.tsv"
    params:
        method_order=list(METHODS),
        split=config["plots"]["split"],
        candidates=plain(config["evaluate"]["protocols"]["candidates"]),
    script:
        "../../scripts/plot_metrics_by_protocol.py"
