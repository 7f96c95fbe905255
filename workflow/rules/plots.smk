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
    params:
        split=config["plots"]["split"],
    script:
        "../../scripts/plot_metrics_by_k.py"


rule plot_pca:
    input:
        unpack(
            lambda w: {
                "item_table": f"{R}/data/items.parquet".format(**w),
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
    params:
        methods=plain(config["plots"]["pca_methods"]),
        max_items=config["plots"]["pca_max_items"],
        seed=config["plots"]["seed"],
    script:
        "../../scripts/plot_pca.py"
