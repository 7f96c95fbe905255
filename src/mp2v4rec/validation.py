"""Validation during training: a metric@K of the current vectors on the validation split."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec.metrics import accuracy_metrics
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix


class Validator:
    """Scores embeddings by ``metric@k`` on held-out positives, ``seen`` (train) items masked.

    Cold pairs (a user or item without any ``seen`` entry) are left out, as in the evaluation's
    headline: no trained model can reach them. The test split is never read during training, so
    its pairs are not masked here (the evaluate rule's validation lists mask them). ``k`` is
    capped at the catalogue size.
    """

    def __init__(
        self,
        valid: pl.DataFrame,
        seen: sp.csr_matrix | None,
        *,
        k: int = 100,
        metric: str = "recall",
    ):
        if seen is not None:
            seen = sp.csr_matrix(seen)
            warm_users = np.flatnonzero(np.diff(seen.indptr) > 0)
            warm_items = np.unique(seen.indices)
            valid = valid.filter(
                pl.col("user").is_in(pl.Series(warm_users).implode())
                & pl.col("item").is_in(pl.Series(warm_items).implode())
            )
        self.truth = valid
        self.users = np.unique(valid["user"].to_numpy()).astype(np.int32)
        self.seen = seen
        self.k = int(k)
        self.metric = metric

    @classmethod
    def from_train(cls, train, valid, n_users: int, n_items: int, **kwargs) -> Validator:
        return cls(valid, seen_matrix(train, n_users, n_items), **kwargs)

    def __call__(self, user_vectors: np.ndarray, item_vectors: np.ndarray, score: str) -> float:
        if not self.users.size:  # every validation pair is cold
            return float("nan")
        k = min(self.k, item_vectors.shape[0])
        items, scores = recommend_top_k(
            user_vectors, item_vectors, self.users, k=k, score=score, seen=self.seen
        )
        table = accuracy_metrics(recs_frame(self.users, items, scores), self.truth, [k])
        return float(table.filter(pl.col("metric") == self.metric)["value"][0])
