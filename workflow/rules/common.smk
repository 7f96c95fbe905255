# Helpers shared by the rules: config validation, wildcard constraints, params and targets.
import glob
import re

from mp2v4rec.config import (
    train_settings,
    grid_variants,
    method_settings,
    validate_config,
    walk_settings,
    walkset_name,
)
from mp2v4rec.datasets.common import SPLITS
from mp2v4rec.io import InputError
from mp2v4rec.config import serve_methods
from mp2v4rec.kinds import kind_of
from mp2v4rec import kinds
from mp2v4rec.models import MODEL_FILES

try:
    validate_config(config)
except InputError as err:
    raise WorkflowError(str(err)) from None

DATASETS = config["datasets"]
METHODS = config["methods"]
R = "results/{dataset}"
ABLATION = config["ablation"]
SEARCH = config["search"]
SERVE_METHODS = serve_methods(config)
SEEDED_METHODS = list(dict.fromkeys([*SERVE_METHODS, "popularity"]))


def plain(value):
    """Config values as builtins with sorted keys, so params compare stably across runs."""
    if isinstance(value, dict):
        return {k: plain(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def scaled(per_input_mb, floor, per_attempt=True):
    """A resource that grows with the job's input size (MB) and with each retry."""

    def resource(wildcards, input, attempt):
        return int(
            max(floor, per_input_mb * input.size_mb) * (attempt if per_attempt else 1)
        )

    return resource


def alternation(names):
    """A wildcard constraint matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def datasets_with(**wanted):
    return [
        n for n, d in DATASETS.items() if all(d.get(k) == v for k, v in wanted.items())
    ]


def methods_where(**wanted):
    """Configured methods whose kind (mp2v4rec.kinds) has these attributes."""
    return kinds.methods_where(METHODS, **wanted)


def kind(method):
    return kind_of(METHODS[method])


def data_file(name):
    """A file of the preprocess stage: results/{dataset}/data/{name}."""
    return f"{R}/data/{name}"


def model_file(model, method="{method}", variant="{variant}"):
    """Where a run's model of this type (embeddings, item_item) lives."""
    return f"{R}/models/{method}/{variant}/{MODEL_FILES[model]}"


def archive_path(wildcards):
    if DATASETS[wildcards.dataset]["source"] == "synthetic":
        return f"resources/{wildcards.dataset}/synthetic_KuaiRec.zip"
    return f"resources/{wildcards.dataset}/KuaiRec.zip"


EVENT_TABLES = ["events", "follows", "items", "eval_events"]
EVENT_INPUTS = {
    t: "item_meta" if t == "items" else t for t in EVENT_TABLES
}  # "items" is reserved


def event_files(wildcards):
    """Input files of an event-log dataset per table (globs expanded), or the generator's."""
    dataset = DATASETS[wildcards.dataset]
    if dataset["source"] == "synthetic":
        folder = f"resources/{wildcards.dataset}/synthetic_events"
        return {EVENT_INPUTS[t]: f"{folder}/{t}.parquet" for t in EVENT_TABLES}
    files = {}
    for table in EVENT_TABLES:
        given = dataset["files"].get(table)
        if given is None:
            continue
        patterns = [given] if isinstance(given, str) else given
        found = sorted(f for p in patterns for f in (glob.glob(p) or [p]))
        files[EVENT_INPUTS[table]] = found
    return files


def settings(wildcards):
    return method_settings(config, wildcards.method, wildcards.variant)


def train_params(wildcards):
    """The settings a run's training reads: for a kind on a corpus only its trainer's keys
    (the corpus settings are in the corpus path), for other kinds all of them."""
    s = settings(wildcards)
    if kind(wildcards.method).corpus is None:
        return plain(s)
    return plain(train_settings(s) | {"kind": s["kind"]})


def train_inputs(wildcards):
    """The split tables, and the corpus of a kind that trains on one (walks: also the W2V
    model an init~w2v run starts from)."""
    tables = {
        "train": "train",
        "valid": "valid",
        "user_table": "users",
        "item_table": "items",
    }
    inputs = {
        key: data_file(f"{name}.parquet").format(**wildcards)
        for key, name in tables.items()
    }
    s, corpus = settings(wildcards), kind(wildcards.method).corpus
    if corpus == "sequences":
        inputs["corpus"] = f"{R}/sequences/corpus.txt".format(**wildcards)
    elif corpus == "walks":
        inputs["corpus"] = f"{R}/walks/{walkset_name(s)}/corpus.txt".format(**wildcards)
        if s["init"] == "w2v":
            inputs["init"] = model_file(
                "embeddings", s["init_method"], "default"
            ).format(**wildcards)
    return inputs


def run_model(dataset, method, variant):
    """A run's stored model (embeddings or item-item weights), where its kind stores one."""
    model = kind(method).model
    if model not in MODEL_FILES:
        return {}
    return {"model": model_file(model, method, variant).format(dataset=dataset)}


def model_inputs(wildcards):
    return run_model(wildcards.dataset, wildcards.method, wildcards.variant)


def fan_out(pattern, n):
    """Input function: the ``n`` files of a fan-out (``{index}`` = 0..n-1: walk shards of
    start nodes, recommend blocks of users) that a gather rule merges."""

    def files(wildcards):
        return [pattern.format(**wildcards, index=i) for i in range(n)]

    return files


walk_shards = fan_out(
    f"{R}/walks/{{walkset}}/shard{{index}}.txt", config["walks"]["shards"]
)
rec_blocks = fan_out(
    f"{R}/recs/{{method}}/{{variant}}/block{{index}}.parquet",
    config["recommend"]["user_blocks"],
)


def runs():
    """(method, variant) pairs that `all` evaluates: every method, then the ablation cells."""
    cells = grid_variants(ABLATION["grid"])
    return default_runs() + [(ABLATION["method"], v) for v in cells]


def default_runs():
    return [(m, "default") for m in METHODS]


def baseline_methods():
    """Methods a paired test compares against (kinds marked compared: all but MP2V)."""
    return methods_where(compared=True)


def trained_methods():
    """Methods with a per-epoch validation curve."""
    return methods_where(curve=True)


def per_user_paths(wildcards, pairs):
    return [
        f"{R}/metrics/{m}/{v}.per_user.parquet".format(dataset=wildcards.dataset)
        for m, v in pairs
    ]


def metrics_paths(wildcards, pairs):
    return [
        f"{R}/metrics/{m}/{v}.tsv".format(dataset=wildcards.dataset) for m, v in pairs
    ]


def run_metrics(wildcards):
    return metrics_paths(wildcards, runs())


def protocol_metrics(wildcards):
    """Protocol tables of the default runs of methods with embeddings."""
    pairs = [(m, v) for m, v in default_runs() if has_embeddings(m)]
    return [
        f"{R}/metrics/{m}/{v}.protocols.tsv".format(dataset=wildcards.dataset)
        for m, v in pairs
    ]


def seeded_metrics(wildcards):
    """The seeded-continuation tables of the served methods (and popularity)."""
    if not SERVE_METHODS:
        return []
    return [
        f"{R}/metrics/{m}/default.seeded.tsv".format(dataset=wildcards.dataset)
        for m in SEEDED_METHODS
    ]


def relevance_threshold(dataset):
    """Observed block pairs at or above this weight are relevant (AUC over the block)."""
    spec = DATASETS[dataset]
    if spec["kind"] == "kuairec":
        return float(spec["preprocess"]["positive_threshold"])
    return float(spec["preprocess"]["positive_min_score"])


def ablation_metrics(wildcards):
    method = ABLATION["method"]
    return metrics_paths(
        wildcards, [(method, v) for v in grid_variants(ABLATION["grid"])]
    )


def search_metrics(wildcards):
    method = SEARCH["method"]
    return metrics_paths(
        wildcards, [(method, v) for v in grid_variants(SEARCH["grid"])]
    )


def search_winner_metrics(wildcards):
    """Test metrics of the cell chosen on validation (known once search_select has run)."""
    import json

    best = checkpoints.search_select.get(**wildcards).output.best
    with open(best) as f:
        winner = json.load(f)
    return f"{R}/metrics/{winner['method']}/{winner['variant']}.tsv".format(**wildcards)


def held_out_inputs(wildcards):
    """Both held-out splits: each split's lists mask the other one's pairs."""
    return {
        split: data_file(f"{split}.parquet").format(**wildcards) for split in SPLITS
    }


def has_embeddings(method):
    return kind(method).has_vectors


def evaluate_inputs(wildcards):
    """The run's own item vectors and the shared reference space, where they exist."""
    inputs = {}
    if has_embeddings(wildcards.method):
        inputs["embeddings"] = (
            f"{R}/models/{{method}}/{{variant}}/embeddings.npz".format(**wildcards)
        )
    reference = config["evaluate"]["reference_method"]
    if reference is not None and has_embeddings(reference):
        inputs["reference"] = f"{R}/models/{reference}/default/embeddings.npz".format(
            **wildcards
        )
    return inputs


def pca_inputs(wildcards):
    return {
        m: f"{R}/models/{m}/default/embeddings.npz".format(dataset=wildcards.dataset)
        for m in config["plots"]["pca_methods"]
    }


def all_targets():
    targets = [
        f"{R}/tables/metrics.tsv",
        f"{R}/tables/summary.tsv",
        f"{R}/figures/metrics_by_k.png",
        f"{R}/figures/diversity_histogram.png",
        f"{R}/figures/training_curves.png",
        f"{R}/figures/metrics_by_protocol.png",
    ]
    if config["plots"]["pca_methods"]:
        targets += [f"{R}/figures/pca_embeddings.png"]
    if ABLATION["grid"]:
        targets += [f"{R}/tables/ablation.tsv", f"{R}/figures/ablation.png"]
    if SERVE_METHODS:
        targets += [f"{R}/serve/{m}" for m in SERVE_METHODS]
        targets += [f"{R}/figures/seeded_continuation.png"]
    return expand(targets, dataset=list(DATASETS))


wildcard_constraints:
    dataset=alternation(DATASETS),
    method=alternation(METHODS),
    variant=r"default|[a-z]+~[^_/]+(_[a-z]+~[^_/]+)*",
    walkset=r"metapath~[^/]+",
    shard=r"\d+",
    block=r"\d+",
