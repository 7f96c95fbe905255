"""Validation during training: Recall@K of the current vectors on the validation split."""

from __future__ import annotations

import numpy as np
import polars as pl

from mp2v4rec.metrics import accuracy_metrics
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix


class Validator:
    """Scores embeddings by ``metric@k`` on held-out positives, train items masked."""

    def __init__(
        self,
        train: pl.DataFrame,
        valid: pl.DataFrame,
        n_users: int,
        n_items: int,
        *,
        k: int = 100,
        metric: str = "recall",
    ):
        self.truth = valid
        self.users = np.unique(valid["user"].to_numpy()).astype(np.int32)
        self.seen = seen_matrix(train, n_users, n_items)
        self.k = min(k, n_items)
        self.metric = metric

    def __call__(self, user_vectors: np.ndarray, item_vectors: np.ndarray, score: str) -> float:
        items, scores = recommend_top_k(
            user_vectors, item_vectors, self.users, k=self.k, score=score, seen=self.seen
        )
        table = accuracy_metrics(recs_frame(self.users, items, scores), self.truth, [self.k])
        return float(table.filter(pl.col("metric") == self.metric)["value"][0])
