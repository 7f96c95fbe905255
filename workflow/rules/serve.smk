# Serving artefacts for a platform (neighbour lists, every user's top-K, exported vectors, an ANN
# index for large catalogues; read by the `mp2v4rec` command) and the seed-based evaluation.


def served_model(wildcards):
    """The method's default run's model (vectors or item-item weights); the popularity
    reference line of the seeded protocol needs none."""
    if wildcards.method == "popularity":
        return {}
    return run_model(wildcards.dataset, wildcards.method, "default")


rule serve:
    input:
        unpack(served_model),
        train=data_file("train.parquet"),
        valid=data_file("valid.parquet"),
        evaluated=data_file("evaluated_users.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
    output:
        directory(f"{R}/serve/{{method}}"),
    log:
        f"{R}/logs/serve/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/serve/{{method}}.tsv"
    wildcard_constraints:
        method=alternation(SERVE_METHODS),
    threads: config["serve"]["threads"]
    resources:
        mem_mb=scaled(12, 2000),
        runtime=scaled(0.2, 10, per_attempt=False),
    params:
        settings=lambda w: plain(METHODS[w.method]),
        seed_items=config["serve"]["seed_items"],
        neighbours=config["serve"]["neighbours"],
        k=config["serve"]["k"],
        exact_max_items=config["serve"]["exact_max_items"],
        ann=plain(config["serve"]["ann"]),
    script:
        "../../scripts/serve_build.py"


rule evaluate_seeded:
    input:
        unpack(served_model),
        unpack(held_out_inputs),
        evaluated=data_file("evaluated_users.parquet"),
        train=data_file("train.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
    output:
        f"{R}/metrics/{{method}}/default.seeded.tsv",
    log:
        f"{R}/logs/evaluate_seeded/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate_seeded/{{method}}.tsv"
    wildcard_constraints:
        method=alternation(SEEDED_METHODS),
    resources:
        mem_mb=scaled(8, 1000),
        runtime=scaled(0.1, 10, per_attempt=False),
    params:
        settings=lambda w: plain(METHODS.get(w.method, {"kind": "popularity"})),
        seed_items=config["serve"]["seed_items"],
        cold=config["evaluate"]["cold"],
        ks=plain(config["evaluate"]["ks"]),
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["evaluate"]["seed"],
    script:
        "../../scripts/serve_seeded.py"


rule plot_seeded:
    input:
        expand(
            f"{R}/metrics/{{method}}/default.seeded.tsv",
            method=SEEDED_METHODS,
            allow_missing=True,
        ),
    output:
        report(
            f"{R}/figures/seeded_continuation.png",
            caption="../report/seeded_continuation.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/plot_seeded.log",
    benchmark:
        f"{R}/benchmarks/plot_seeded.tsv"
    params:
        methods=SEEDED_METHODS,
        seed_items=config["serve"]["seed_items"],
        method_order=list(METHODS),
    script:
        "../../scripts/serve_plot.py"
