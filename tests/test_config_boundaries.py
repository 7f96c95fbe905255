"""No value that validation accepts may crash a rule: every key the config holds (defaults
filled in) gets its boundary values (0, -1, an empty list, an unknown name); each is refused at
validation with its key named, or it runs through a tiny DAG (both dataset kinds, every method
kind, ablation, search, serve) to exit 0."""

import copy

import pytest
import yaml
from schema_walk import boundary_edits, conflict, edited
from snakemake_runner import snakemake

from mp2v4rec.config import validate_config
from mp2v4rec.io import InputError

BASE = """
datasets:
  tiny:
    kind: kuairec
    source: synthetic
    synthetic: {n_users: 80, n_items: 120, n_communities: 4, interactions_per_user: 25,
                small_users: 30, small_items: 60, seed: 1}
  ev:
    kind: events
    source: synthetic
    synthetic: {n_users: 60, n_items: 80, n_events: 10000, n_artists: 10, n_genres: 4,
                n_communities: 3, follows_per_user: 4, seed: 1}
    preprocess: {min_user_interactions: 3, min_item_interactions: 2, seed: 1}
methods:
  w2v: {kind: w2v, dim: 8, window: 3, negative: 3, epochs: 2, seed: 1}
  mp2v: {kind: mp2v, metapath: UUV, walk_length: 6, walks_per_node: 2, dim: 8, window: 2,
         epochs: 1, init: w2v, seed: 1}
  mp2vshared: {kind: mp2v, trainer: shared, sampling: weighted, walk_length: 6,
               walks_per_node: 2, dim: 8, window: 1, epochs: 1, score: dot, seed: 1}
  ultragcn: {kind: ultragcn, dim: 8, epochs: 2, batch_size: 256, seed: 1}
  ials: {kind: ials, factors: 4, iterations: 2, seed: 1}
  userknn: {kind: userknn, k_neighbors: 20}
  ease: {kind: ease, l2: 50.0}
  rp3b: {kind: rp3b, k_neighbors: 20}
  itemknn: {kind: itemknn, k_neighbors: 20}
  popularity: {kind: popularity}
  random: {kind: random, dim: 4, seed: 1}
walks: {shards: 1, threads: 1}
train: {threads: 1, validation: {k: 20}}
recommend: {k: 20}
evaluate: {ks: [1, 10, 20], per_user_ks: [10, 20], bootstrap: 20, seed: 1,
           protocols: {sampled_negatives: 5}}
plots: {pca_max_items: 50, seed: 1}
serve: {methods: [mp2v, ease], neighbours: 5, k: 10, exact_max_items: 50,
        ann: {queries: 20, seed: 1}}
ablation: {method: mp2v, grid: {seed: [1], sampling: [uniform], metapath: [UUV], length: [6],
                              pernode: [2], start: [users], negative: [3], epochs: [1],
                              alpha: [0.025], trainer: [gensim], sample: [0.001], negexp: [0.75],
                              score: [cosine], init: [w2v]}, ks: [10]}
search: {method: mp2v, grid: {dim: [8], window: [1]}, k: 20}
"""


def base() -> dict:
    return validate_config(yaml.safe_load(BASE))


def classify() -> tuple[list, list]:
    """(accepted edits, refusals whose message misses the key)."""
    config, accepted, unnamed = base(), [], []
    for key, value in boundary_edits(config):
        try:
            validate_config(edited(config, key, value))
        except InputError as err:
            if ".".join(map(str, key)) not in str(err):
                unnamed.append((key, value, str(err)))
        else:
            accepted.append((key, value))
    return accepted, unnamed


def batches(accepted: list) -> list[list]:
    """Accepted edits packed into few runs: each joins the first run it does not conflict with
    and that still validates with it (a pair can be refused where each alone is not)."""
    config, runs = base(), []
    for key, value in accepted:
        for run in runs:
            if any(conflict(key, k) for k, _ in run):
                continue
            try:
                validate_config(_apply(config, [*run, (key, value)]))
            except InputError:
                continue
            run.append((key, value))
            break
        else:
            runs.append([(key, value)])
    return runs


def _apply(config: dict, edits: list, trim: bool = False) -> dict:
    """The config with ``edits``; with ``trim``, only the datasets the edits touch (all when
    none does): a run of one dataset's values need not rerun the other."""
    config = copy.deepcopy(config)
    for key, value in edits:
        config = edited(config, key, value)
    touched = {key[1] for key, _ in edits if key[0] == "datasets"}
    if trim and touched:
        config["datasets"] = {k: v for k, v in config["datasets"].items() if k in touched}
    return config


def test_the_walk_covers_every_kind_of_key():
    keys = {".".join(map(str, k)) for k, _ in boundary_edits(base())}
    for key in (
        "datasets.tiny.synthetic.social_users",
        "datasets.ev.preprocess.event_weights.play",
        "methods.ultragcn.ii_neighbor_num",
        "methods.rp3b.alpha",
        "evaluate.protocols.candidates",
        "plots.pca_methods",
        "serve.ann.nlist",
        "ablation.grid.seed",
        "search.grid.window",
        "metapaths.UUV",
    ):
        assert key in keys
    assert len(keys) > 150


def test_refusals_name_the_key():
    accepted, unnamed = classify()
    assert not unnamed, "\n".join(f"{'.'.join(map(str, k))}={v!r}: {m}" for k, v, m in unnamed)
    taken = {(".".join(map(str, k)), repr(v)) for k, v in accepted}
    # values rules could not use (each crashed one once) are now refused
    for key, value in (
        ("evaluate.per_user_ks", []),
        ("methods.ials.seed", -1),
        ("ablation.grid.seed", [-1]),
        ("datasets.ev.preprocess.cutoff_time", -1),
        ("methods.mp2v.walk_length", 2.0),
        ("search.grid.window", ["a_b"]),
    ):
        assert (key, repr(value)) not in taken


@pytest.mark.slow
def test_accepted_boundary_values_run_the_dag(tmp_path):
    accepted, _ = classify()
    failures = []
    for i, run in enumerate(batches(accepted)):
        workdir = tmp_path / f"run{i}"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(_apply(base(), run, trim=True)))
        args = ("--configfile", str(workdir / "config.yaml"), "--cores", "2", "--keep-going")
        proc = snakemake(workdir, *args, "all", "search", check=False)
        if proc.returncode != 0:
            logs = [
                f"{log.relative_to(workdir)}: {log.read_text().strip().splitlines()[-1:]}"
                for log in sorted(workdir.glob("results/*/logs/**/*.log"))
                if "Traceback" in log.read_text() or "ERROR" in log.read_text()
            ]
            edits = [f"{'.'.join(map(str, k))}={v!r}" for k, v in run]
            failures.append(f"run {i} with {edits}:\n  " + "\n  ".join(logs or [proc.stderr]))
    assert not failures, "\n".join(failures)
