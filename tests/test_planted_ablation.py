"""MP2V's extensions on planted synthetic data: the social hop and weighted walks must pay off
where the data says they should, and not where it says they should not.

The world (``mp2v4rec.experiments``; the same knobs as benchmarks/planted_ablation.py, at
400 users x 600 items): users have sparse histories (~3 train positives per evaluated user) but
~10 friends, 90 % in their own community, so the UUV social hop finds their community; most
watches are outside the community and the cross-community ones that pass the positive threshold
have lower watch ratios (median 1.2 vs 8), so weighted walks stay inside it. Every seed is its
own world and its own walks and skip-gram (one worker: deterministic). A claim holds when the
per-seed paired difference is positive for every seed and its mean exceeds both an absolute
margin and twice its standard deviation over the seeds.
"""

import numpy as np
import polars as pl
import pytest
from planted import frame

from mp2v4rec.datasets.common import Prepared
from mp2v4rec.experiments import (
    paired_difference,
    planted_data,
    run_cell,
    shuffle_weights,
    summarise,
)

SEEDS = [0, 1, 2]
METRIC = "recall@50"
WORLD = dict(
    n_users=400,
    n_items=600,
    n_communities=8,
    small_users=150,
    small_items=200,
    interactions_per_user=10,
    social_users=1.0,
    friends_per_user=10,
    homophily=0.9,
    in_community=0.2,
    other_ratio=1.2,
    match_ratio=8.0,
    zipf=1.1,
)
# (label, generator overrides, data transform, metapath, sampling)
CELLS = [
    ("UV uniform", {}, None, "UV", "uniform"),
    ("UUV uniform", {}, None, "UUV", "uniform"),
    ("UV weighted", {}, None, "UV", "weighted"),
    ("UUV uniform, homophily 0", {"homophily": 0.0}, None, "UUV", "uniform"),
    ("UV weighted, shuffled weights", {}, shuffle_weights, "UV", "weighted"),
]


@pytest.fixture(scope="module")
def recall():
    """{cell label: Recall@50 per seed} (walk and skip-gram settings of configs/demo.yaml)."""
    out = {label: [] for label, *_ in CELLS}
    for seed in SEEDS:
        worlds = {}
        for label, overrides, transform, metapath, sampling in CELLS:
            key = (tuple(sorted(overrides.items())), transform)
            if key not in worlds:
                data = planted_data({**WORLD, **overrides, "seed": seed})
                worlds[key] = transform(data) if transform else data
            scores = run_cell(
                worlds[key], metapath=metapath, sampling=sampling, seed=seed, ks=(50,)
            )
            out[label].append(scores[METRIC])
    return {label: np.array(values) for label, values in out.items()}


def gain(recall, better, worse):
    d = recall[better] - recall[worse]
    print(f"{better} - {worse}: {np.round(d, 4)} mean {d.mean():+.4f} sd {d.std(ddof=1):.4f}")
    return d


def assert_clear_gain(d, margin):
    assert (d > 0).all(), d
    assert d.mean() > margin, d
    assert d.mean() > 2 * d.std(ddof=1), d


@pytest.mark.slow  # ~20 s for the 15 cells, once per module
def test_social_hop_beats_no_social_with_homophily(recall):
    assert_clear_gain(gain(recall, "UUV uniform", "UV uniform"), margin=0.03)


@pytest.mark.slow  # ~20 s for the 15 cells, once per module
def test_weighted_walks_beat_uniform_when_the_weight_carries_the_signal(recall):
    assert_clear_gain(gain(recall, "UV weighted", "UV uniform"), margin=0.01)


@pytest.mark.slow  # ~20 s for the 15 cells, once per module
def test_no_social_gain_without_homophily(recall):
    # same interactions, random friends: the social hop leads out of the community
    assert gain(recall, "UUV uniform, homophily 0", "UV uniform").mean() < 0


@pytest.mark.slow  # ~20 s for the 15 cells, once per module
def test_no_weighted_gain_when_weights_are_shuffled(recall):
    # same positives, weights permuted: whatever weighting does now is not the planted signal
    real = gain(recall, "UV weighted", "UV uniform").mean()
    shuffled = gain(recall, "UV weighted, shuffled weights", "UV uniform").mean()
    assert shuffled < real / 2


def test_shuffle_weights_permutes_only_the_weights():
    pairs = [(0, 0), (0, 1), (1, 2), (2, 0), (2, 3)]
    empty = frame([]).head(0)
    social = pl.DataFrame(schema={"user": pl.Int32, "friend": pl.Int32})
    data = Prepared(frame(pairs, [1.0, 2.0, 3.0, 4.0, 5.0]), empty, empty, social, None, None, {})
    out = shuffle_weights(data, seed=1)
    assert out.train.drop("weight").equals(data.train.drop("weight"))
    assert sorted(out.train["weight"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert out.train["weight"].to_list() != data.train["weight"].to_list()
    assert data.train["weight"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]  # input untouched


def test_summarise_and_paired_difference():
    runs = pl.DataFrame(
        {
            "metapath": ["UV", "UV", "UUV", "UUV"],
            "sampling": ["uniform"] * 4,
            "seed": [0, 1, 1, 0],
            "recall@50": [0.1, 0.2, 0.5, 0.3],
        }
    )
    d = paired_difference(runs, "recall@50", "metapath", "UUV", "UV")
    assert np.allclose(d, [0.2, 0.3])  # seed-aligned, not row-aligned
    s = summarise(runs).sort("metapath")
    assert s["n_seeds"].to_list() == [2, 2]
    assert np.allclose(s["recall@50_mean"], [0.4, 0.15])
    assert np.allclose(s["recall@50_std"], [np.std([0.5, 0.3], ddof=1), np.std([0.1, 0.2], ddof=1)])
