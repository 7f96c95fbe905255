"""Planted-signal experiments: one ablation cell end to end, in memory, from library calls.

A cell is generate (synthetic KuaiRec) -> preprocess -> graph -> walks -> skip-gram ->
recommend (train items and validation pairs masked) -> test Recall@K and NDCG@K over the
evaluated users (warm pairs: the default protocol), the chain
the workflow runs for one MP2V variant, without Snakemake and with files only in a temporary
directory. :func:`planted_data` builds the prepared dataset once; :func:`run_cell` trains and
scores one (metapath, sampling, seed) on it; :func:`planted_ablation` runs a grid over seeds,
each seed generating its own world (generator seed = cell seed) shared by all the cells.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from mp2v4rec.config import METAPATHS
from mp2v4rec.datasets.common import Prepared
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.datasets.synthetic import write_synthetic_kuairec
from mp2v4rec.evaluation import score_split
from mp2v4rec.methods import fit_method

WALK = dict(walk_length=15, walks_per_node=10)  # configs/demo.yaml's mp2v
SKIPGRAM = dict(
    dim=32,
    window=6,
    negative=6,
    epochs=5,
    alpha=0.025,
    min_alpha=1.0e-4,
    sample=1e-3,
    ns_exponent=0.75,
)


def planted_data(
    generator: dict, preprocess: dict | None = None, workdir: str | os.PathLike | None = None
) -> Prepared:
    """Generate a synthetic KuaiRec archive with ``generator`` params and preprocess it."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        archive = Path(tmp) / "KuaiRec.zip"
        write_synthetic_kuairec(archive, **generator)
        return preprocess_kuairec(archive, **(preprocess or {}))


def run_cell(
    data: Prepared,
    *,
    metapath: str | list[str],
    sampling: str,
    seed: int,
    walk: dict | None = None,
    skipgram: dict | None = None,
    ks: tuple[int, ...] = (50, 100),
    keep_best_epoch: bool = False,
    symmetric_social: bool = True,
    workers: int = 1,
    workdir: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Test ``recall@k`` and ``ndcg@k`` (mean over the evaluated users) of one MP2V variant.

    ``metapath`` is a name of :data:`METAPATHS` or a list of relations; ``walk`` and ``skipgram``
    override :data:`WALK` and :data:`SKIPGRAM`; ``seed`` seeds the walks and the skip-gram model.
    With ``keep_best_epoch`` the epoch with the best validation Recall@max(ks) is kept, as the
    workflow does by default. ``workers=1`` makes the result reproducible bit for bit.
    """
    relations = METAPATHS[metapath] if isinstance(metapath, str) else list(metapath)
    settings = {
        "kind": "mp2v",
        "trainer": "gensim",  # the study's trainer, as config.yaml's mp2v
        "metapath": "cell",
        "sampling": sampling,
        "start": "users",
        **WALK,
        **(walk or {}),
        **SKIPGRAM,
        **(skipgram or {}),
        "score": "cosine",
        "seed": seed,
    }
    fitted = fit_method(
        data,
        settings,
        metapaths={"cell": relations},
        symmetric_social=symmetric_social,
        validation_k=max(ks),
        keep_best_epoch=keep_best_epoch,
        threads=workers,
        workdir=workdir,
    )
    users = data.users.filter("evaluated")["user"].to_numpy()
    _, values = score_split(fitted.scorer, data, users, split="test", ks=list(ks))
    return {
        f"{metric}@{k}": float(values[metric][:, j].mean())
        for metric in ("recall", "ndcg")
        for j, k in enumerate(ks)
    }


def shuffle_weights(data: Prepared, seed: int = 0) -> Prepared:
    """The same dataset with the train weights permuted across interactions (a control: the
    positives are unchanged but their watch ratios no longer say which ones are in-community)."""
    rng = np.random.default_rng(seed)
    weights = data.train["weight"].to_numpy()[rng.permutation(data.train.height)]
    return replace(data, train=data.train.with_columns(weight=pl.Series(weights)))


def planted_ablation(
    generator: dict,
    *,
    seeds: list[int],
    metapaths: list[str] = ("UV", "UUV"),
    samplings: list[str] = ("uniform", "weighted"),
    preprocess: dict | None = None,
    world_seed: int | None = None,
    transform: Callable[[Prepared], Prepared] | None = None,
    **cell,
) -> pl.DataFrame:
    """Every (metapath, sampling) over ``seeds``: one row per cell and seed.

    Seed ``s`` seeds the walks and skip-gram and, unless ``world_seed`` fixes one world for all
    seeds (as the workflow's ablation does), generates the world with generator seed ``s``
    (shared by the cells of that seed). ``transform`` edits the prepared data (e.g.
    :func:`shuffle_weights`); ``cell`` goes to :func:`run_cell`.
    """
    rows, data = [], None
    for seed in seeds:
        if data is None or world_seed is None:
            data = planted_data(
                {**generator, "seed": seed if world_seed is None else world_seed}, preprocess
            )
            data = transform(data) if transform is not None else data
        for metapath, sampling in itertools.product(metapaths, samplings):
            scores = run_cell(data, metapath=metapath, sampling=sampling, seed=seed, **cell)
            rows.append({"metapath": metapath, "sampling": sampling, "seed": seed, **scores})
    return pl.DataFrame(rows)


def summarise(runs: pl.DataFrame) -> pl.DataFrame:
    """Mean and standard deviation over seeds of every metric column, per cell."""
    metrics = [c for c in runs.columns if "@" in c]
    keys = [c for c in runs.columns if c not in metrics and c != "seed"]
    return runs.group_by(keys, maintain_order=True).agg(
        pl.len().alias("n_seeds"),
        *[pl.col(m).mean().alias(f"{m}_mean") for m in metrics],
        *[pl.col(m).std().alias(f"{m}_std") for m in metrics],
    )


def paired_difference(runs: pl.DataFrame, metric: str, column: str, better, worse) -> np.ndarray:
    """Per-seed ``metric`` of ``column == better`` minus ``column == worse``, other keys equal."""
    keys = [c for c in runs.columns if "@" not in c and c != column]
    a = runs.filter(pl.col(column) == better).select(*keys, pl.col(metric).alias("a"))
    b = runs.filter(pl.col(column) == worse).select(*keys, pl.col(metric).alias("b"))
    joined = a.join(b, on=keys).sort(keys)
    return (joined["a"] - joined["b"]).to_numpy()
