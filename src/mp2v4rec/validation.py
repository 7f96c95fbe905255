"""Validation during training: a metric@K of the current vectors on the validation split."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.metrics import accuracy_metrics
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix


class Validator:
    """Scores embeddings by ``metric@k`` on held-out positives, ``seen`` items masked.

    ``k`` is capped at the catalogue size.
    """

    def __init__(
        self,
        valid: pl.DataFrame,
        seen: sp.csr_matrix | None,
        *,
        k: int = 100,
        metric: str = "recall",
    ):
        self.truth = valid
        self.users = np.unique(valid["user"].to_numpy()).astype(np.int32)
        self.seen = seen
        self.k = int(k)
        self.metric = metric

    @classmethod
    def from_train(cls, train, valid, n_users: int, n_items: int, **kwargs) -> Validator:
        return cls(valid, seen_matrix(train, n_users, n_items), **kwargs)

    def __call__(self, user_vectors: np.ndarray, item_vectors: np.ndarray, score: str) -> float:
        k = min(self.k, item_vectors.shape[0])
        items, scores = recommend_top_k(
            user_vectors, item_vectors, self.users, k=k, score=score, seen=self.seen
        )
        table = accuracy_metrics(recs_frame(self.users, items, scores), self.truth, [k])
        return float(table.filter(pl.col("metric") == self.metric)["value"][0])
