"""Simple baselines expressed in the embeddings contract, so they share recommend/evaluate.

- popularity: every user gets the items with the most train positives (score = dot of a
  constant user vector with the item's count);
- random: seeded Gaussian vectors scored by cosine, a ranking independent of the data.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mp2v4rec.models import Embeddings


def popularity_embeddings(train: pl.DataFrame, n_users: int, n_items: int):
    counts = np.bincount(train["item"].to_numpy(), minlength=n_items).astype(np.float32)
    return np.ones((n_users, 1), dtype=np.float32), counts[:, None], "dot"


def random_embeddings(n_users: int, n_items: int, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, dim), dtype=np.float32)
    items = rng.standard_normal((n_items, dim), dtype=np.float32)
    return users, items, "cosine"


def fit_popularity(data, settings):
    return Embeddings(*popularity_embeddings(data.train, data.n_users, data.n_items))


def fit_random(data, settings):
    return Embeddings(
        *random_embeddings(data.n_users, data.n_items, settings["dim"], settings["seed"])
    )
