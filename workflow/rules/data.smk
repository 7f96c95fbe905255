# Obtaining and preprocessing datasets: download (verified) or synthesize, then the study's split.


rule download_kuairec:
    output:
        "resources/{dataset}/KuaiRec.zip",
    log:
        "results/{dataset}/logs/download_kuairec.log",
    benchmark:
        "results/{dataset}/benchmarks/download_kuairec.tsv"
    wildcard_constraints:
        dataset=alternation(datasets_with(kind="kuairec", source="download")),
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        download=lambda w: plain(DATASETS[w.dataset]["download"]),
        archive=lambda w: DATASETS[w.dataset]["archive"],
    script:
        "../../scripts/download_kuairec.py"


rule synthesize_kuairec:
    output:
        "resources/{dataset}/synthetic_KuaiRec.zip",
    log:
        "results/{dataset}/logs/synthesize_kuairec.log",
    benchmark:
        "results/{dataset}/benchmarks/synthesize_kuairec.tsv"
    wildcard_constraints:
        dataset=alternation(datasets_with(kind="kuairec", source="synthetic")),
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        synthetic=lambda w: plain(DATASETS[w.dataset]["synthetic"]),
    script:
        "../../scripts/synthesize_kuairec.py"


rule preprocess_kuairec:
    input:
        archive=archive_path,
    output:
        train=data_file("train.parquet"),
        valid=data_file("valid.parquet"),
        test=data_file("test.parquet"),
        social=data_file("social.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
        stats=data_file("stats.json"),
        block=data_file("block.parquet"),
    log:
        f"{R}/logs/preprocess_kuairec.log",
    benchmark:
        f"{R}/benchmarks/preprocess_kuairec.tsv"
    wildcard_constraints:
        dataset=alternation(datasets_with(kind="kuairec")),
    resources:
        mem_mb=scaled(12, 2000),
        runtime=scaled(0.2, 10, per_attempt=False),
    params:
        preprocess=lambda w: plain(DATASETS[w.dataset]["preprocess"]),
    script:
        "../../scripts/preprocess_kuairec.py"


rule synthesize_events:
    output:
        multiext(
            "resources/{dataset}/synthetic_events/",
            *[f"{t}.parquet" for t in EVENT_TABLES],
        ),
    log:
        "results/{dataset}/logs/synthesize_events.log",
    benchmark:
        "results/{dataset}/benchmarks/synthesize_events.tsv"
    wildcard_constraints:
        dataset=alternation(datasets_with(kind="events", source="synthetic")),
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        synthetic=lambda w: plain(DATASETS[w.dataset]["synthetic"]),
    script:
        "../../scripts/synthesize_events.py"


rule preprocess_events:
    input:
        unpack(event_files),
    output:
        train=data_file("train.parquet"),
        valid=data_file("valid.parquet"),
        test=data_file("test.parquet"),
        social=data_file("social.parquet"),
        user_table=data_file("users.parquet"),
        item_table=data_file("items.parquet"),
        stats=data_file("stats.json"),
        block=data_file("block.parquet"),
    log:
        f"{R}/logs/preprocess_events.log",
    benchmark:
        f"{R}/benchmarks/preprocess_events.tsv"
    wildcard_constraints:
        dataset=alternation(datasets_with(kind="events")),
    resources:
        mem_mb=scaled(40, 2000),
        runtime=scaled(0.5, 10, per_attempt=False),
    params:
        preprocess=lambda w: plain(DATASETS[w.dataset]["preprocess"]),
        columns=lambda w: plain(DATASETS[w.dataset]["columns"]),
    script:
        "../../scripts/preprocess_events.py"
