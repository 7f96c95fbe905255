"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) through the ``implicit`` library (CPU).

Confidence ``c_ui = 1 + alpha * r_ui`` for the train pairs (``r`` = the summed interaction
weight, or 1 with ``binary=True``) and 1 elsewhere, preference 1 on the train pairs. ``implicit``
reads each stored value as the *whole* confidence ``c_ui`` (its own ``alpha`` only rescales the
stored values, giving ``alpha * r``), so the matrix handed to it holds ``1 + alpha * r`` and its
``alpha`` stays 1.

Validation uses ``fit``'s per-iteration callback: after every ALS sweep (users, then items) the
current factors are scored by Recall@k on ``valid``, and the best sweep's factors are kept
(a single fit, so the conjugate-gradient warm starts are those of an uninterrupted run). BLAS is
limited to one thread during the fit, as ``implicit`` recommends; its own ``threads`` do the work.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from mp2v4rec.baselines.userknn import rating_matrix
from mp2v4rec.config import defaults
from mp2v4rec.io import InputError
from mp2v4rec.models import Embeddings
from mp2v4rec.recommend import seen_matrix
from mp2v4rec.validation import Validator

log = logging.getLogger(__name__)
DEFAULTS = defaults("ials")  # the config schema's


def confidence_matrix(
    train: pl.DataFrame, n_users: int, n_items: int, alpha: float, binary: bool = False
) -> sp.csr_matrix:
    """float32 user x item CSR of ``1 + alpha * r`` on the train pairs."""
    C = rating_matrix(train, n_users, n_items, weighted=not binary)
    C.data = 1.0 + alpha * C.data
    return C.astype(np.float32)


def train_ials(
    train: pl.DataFrame,
    n_users: int,
    n_items: int,
    valid: pl.DataFrame | None,
    *,
    factors: int = DEFAULTS["factors"],
    regularization: float = DEFAULTS["regularization"],
    iterations: int = DEFAULTS["iterations"],
    alpha: float = DEFAULTS["alpha"],
    seed: int = DEFAULTS["seed"],
    threads: int = 1,
    k: int = 100,
    binary: bool = DEFAULTS["binary"],
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """Fit iALS; return ``(user_vectors, item_vectors, curve)`` of the best iteration (dot score).

    ``curve``: epoch (iteration, from 1), loss (``implicit``'s training loss), valid_recall
    (Recall@``k`` with train items masked; NaN without ``valid``, in which case the last
    iteration's factors are returned). Reproducible for a given ``seed`` with ``threads=1``.
    """
    for name, value in (
        ("factors", factors),
        ("iterations", iterations),
        ("threads", threads),
        ("k", k),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"ials.{name} must be a positive integer, got {value!r}")
    for name, value in (("regularization", regularization), ("alpha", alpha)):
        if not np.isfinite(value) or value < 0:
            raise InputError(f"ials.{name} must be a finite number >= 0, got {value!r}")
    from implicit.cpu.als import AlternatingLeastSquares  # imported late: slow import

    C = confidence_matrix(train, n_users, n_items, alpha, binary)
    if C.nnz == 0:
        raise InputError("ials: the train table has no interactions")
    use_valid = valid is not None and valid.height > 0
    validator = Validator(valid, seen_matrix(train, n_users, n_items), k=k) if use_valid else None
    curve: list[tuple[int, float, float]] = []
    best: dict = {"recall": -np.inf}

    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=int(factors),
            regularization=float(regularization),
            alpha=1.0,  # the confidence is already in C
            iterations=int(iterations),
            calculate_training_loss=True,
            num_threads=int(threads),
            random_state=int(seed),
        )

        def on_iteration(iteration: int, elapsed: float, loss: float | None) -> None:
            U, V = model.user_factors, model.item_factors
            recall = validator(U, V, "dot") if use_valid else float("nan")
            curve.append((iteration + 1, float("nan") if loss is None else float(loss), recall))
            if not use_valid or recall > best["recall"]:
                best.update(recall=recall, U=U.copy(), V=V.copy())
            log.info(
                "ials iteration %d/%d (%.1fs): loss %.5g, valid recall@%d %.5f",
                iteration + 1,
                iterations,
                elapsed,
                curve[-1][1],
                k,
                recall,
            )

        model.fit(C, show_progress=False, callback=on_iteration)
    frame = pl.DataFrame(
        curve,
        schema={"epoch": pl.Int64, "loss": pl.Float64, "valid_recall": pl.Float64},
        orient="row",
    )
    U = np.ascontiguousarray(best["U"], dtype=np.float32)
    V = np.ascontiguousarray(best["V"], dtype=np.float32)
    return U, V, frame


def fit(data, settings):
    """The registry's fit: iALS factors of the best validation iteration, scored by dot."""
    params = {k: v for k, v in settings.items() if k != "kind"}
    users, items, curve = train_ials(
        data.train,
        data.n_users,
        data.n_items,
        data.valid,
        **params,
        threads=data.threads,
        k=data.validation_k,
    )
    return Embeddings(users, items, "dot", curve)
