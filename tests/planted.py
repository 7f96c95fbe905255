"""Small interaction tables for the baseline tests: hand-written pairs and planted communities."""

import numpy as np
import polars as pl


def frame(pairs, weights=None):
    return pl.DataFrame(
        {
            "user": pl.Series([u for u, _ in pairs], dtype=pl.Int32),
            "item": pl.Series([i for _, i in pairs], dtype=pl.Int32),
            "weight": pl.Series(weights or [1.0] * len(pairs), dtype=pl.Float32),
            "timestamp": pl.Series(range(len(pairs)), dtype=pl.Int64),
        }
    )


def planted(seed=0, n_users=200, n_items=300, n_comm=4, per_user=24, n_valid=6, noise=0.1):
    """Users and items in ``n_comm`` communities; users mostly pick popular in-community items."""
    rng = np.random.default_rng(seed)
    user_comm, item_comm = np.arange(n_users) % n_comm, np.arange(n_items) % n_comm
    pop = rng.permutation(1.0 / np.sqrt(np.arange(1, n_items + 1)))
    picks = np.stack(
        [
            rng.choice(n_items, per_user + n_valid, replace=False, p=p / p.sum())
            for p in (pop * np.where(item_comm == c, 1.0, noise) for c in user_comm)
        ]
    )

    def table(block):
        return pl.DataFrame(
            {
                "user": np.repeat(np.arange(n_users, dtype=np.int32), block.shape[1]),
                "item": block.ravel().astype(np.int32),
                "weight": (rng.random(block.size) + 0.5).astype(np.float32),
                "timestamp": np.arange(block.size, dtype=np.int64),
            }
        )

    return table(picks[:, :per_user]), table(picks[:, per_user:]), n_users, n_items
