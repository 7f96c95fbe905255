"""One run's full evaluation: accuracy and beyond-accuracy per split and activity cohort, with
bootstrap confidence intervals; and the cross-method summary with paired tests."""

from __future__ import annotations

import numpy as np
import polars as pl

from mp2v4rec import protocols
from mp2v4rec.beyond import beyond_accuracy
from mp2v4rec.metrics import per_user_metrics
from mp2v4rec.recommend import recommend_top_k, recs_frame, seen_matrix
from mp2v4rec.stats import SUMMARY_SCHEMA, activity_cohorts, paired_test, summarise

COHORTS = ("all", "low", "medium", "high")
LIST_LEVEL = ("coverage", "gini")  # measures of all lists together: no per-user values
METRICS_SCHEMA = {"split": pl.String, "cohort": pl.String, **SUMMARY_SCHEMA}
PROTOCOL_SCHEMA = {
    "candidates": pl.String,
    "score": pl.String,
    "beta": pl.Float64,
    "native": pl.Boolean,
    **METRICS_SCHEMA,
}


def default_protocol(table: pl.DataFrame, score: str) -> pl.DataFrame:
    """Label a run's main metrics: all unseen items as candidates, the model's own score."""
    return table.with_columns(
        pl.lit("all").alias("candidates"),
        pl.lit(score).alias("score"),
        pl.lit(None, pl.Float64).alias("beta"),
        pl.lit(True).alias("native"),
    ).select(list(PROTOCOL_SCHEMA))


def evaluated_users(users: pl.DataFrame, sample: int | None = None, seed: int = 0) -> np.ndarray:
    """Sorted indices of the evaluated users, or a seeded sample of ``sample`` of them (without
    replacement; the study evaluated 200,000 sampled users). Metrics stay exact within it."""
    evaluated = users.filter(pl.col("evaluated"))["user"].to_numpy().astype(np.int32)
    if sample is None or sample >= evaluated.size:
        return np.sort(evaluated)
    return np.sort(np.random.default_rng(seed).choice(evaluated, size=sample, replace=False))


def for_users(truths: dict[str, pl.DataFrame], users: np.ndarray) -> dict[str, pl.DataFrame]:
    """Held-out rows of the given (evaluated or sampled) users only."""
    keep = pl.Series(np.asarray(users)).implode()
    return {split: t.filter(pl.col("user").is_in(keep)) for split, t in truths.items()}


def evaluate_run(
    recs: pl.DataFrame,
    truths: dict[str, pl.DataFrame],
    train: pl.DataFrame,
    items: pl.DataFrame,
    ks: list[int],
    *,
    item_vectors: np.ndarray | None = None,
    reference_vectors: np.ndarray | None = None,
    per_user_ks: list[int] = (),
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Metrics of one run as ``(table, per_user)``.

    ``table``: split, cohort (all/low/medium/high train activity), metric, k, value, 95 %
    bootstrap CI over users, n_users. ``per_user``: user, split, metric, k, value for the
    ``per_user_ks`` (for paired tests and distributions).
    """
    n_items = items.height
    tables, per_user_rows = [], []
    for split, truth in truths.items():
        users, accuracy = per_user_metrics(recs, truth, ks)
        frame, beyond = beyond_accuracy(
            recs,
            train,
            n_items,
            ks,
            item_vectors=item_vectors,
            reference_vectors=reference_vectors,
            item_categories=items,
            users=users,
        )
        values = {(m, k): accuracy[m][:, j] for m in accuracy for j, k in enumerate(ks)}
        values.update(beyond)
        cohort_of = activity_cohorts(train, users)["cohort"].to_numpy()
        for cohort in COHORTS:
            mask = np.ones(users.size, bool) if cohort == "all" else cohort_of == cohort
            if not mask.any():
                continue
            summary = summarise(
                {key: v[mask] for key, v in values.items()}, n_boot=n_boot, seed=seed
            )
            tables.append(
                summary.with_columns(pl.lit(split).alias("split"), pl.lit(cohort).alias("cohort"))
            )
        lists = frame.filter(pl.col("metric").is_in(LIST_LEVEL))
        tables.append(
            lists.with_columns(
                pl.lit(split).alias("split"),
                pl.lit("all").alias("cohort"),
                pl.lit(None, pl.Float64).alias("ci_low"),
                pl.lit(None, pl.Float64).alias("ci_high"),
                pl.lit(int(users.size)).alias("n_users"),
            )
        )
        for (metric, k), v in values.items():
            if k in per_user_ks:
                per_user_rows.append(
                    pl.DataFrame(
                        {
                            "user": users.astype(np.int32),
                            "split": split,
                            "metric": metric,
                            "k": int(k),
                            "value": v.astype(np.float64),
                        }
                    )
                )
    table = pl.concat([t.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA) for t in tables])
    order = {m: i for i, m in enumerate(["recall", "ndcg", "precision", "hitrate"])}
    table = table.sort(
        pl.col("split"),
        pl.col("cohort").replace_strict({c: i for i, c in enumerate(COHORTS)}),
        pl.col("metric").replace_strict(order, default=len(order)),
        pl.col("metric"),
        pl.col("k"),
    )
    per_user = pl.concat(per_user_rows) if per_user_rows else pl.DataFrame()
    return table, per_user


def paired_comparisons(
    per_user: dict[str, pl.DataFrame],
    baseline: str,
    *,
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
    n_boot: int = 1000,
    seed: int = 0,
) -> pl.DataFrame:
    """Every run against ``baseline`` on the same users: difference, bootstrap CI, p-values."""
    rows = []
    base = per_user[baseline].filter(pl.col("split") == split)
    for run, frame in per_user.items():
        joined = (
            frame.filter(pl.col("split") == split)
            .join(base, on=["user", "split", "metric", "k"], suffix="_base")
            .filter(pl.col("metric").is_in(metrics))
            .sort("metric", "k", "user")
        )
        for (metric, k), group in joined.group_by(["metric", "k"], maintain_order=True):
            test = paired_test(
                group["value"].to_numpy(), group["value_base"].to_numpy(), n_boot=n_boot, seed=seed
            )
            rows.append(
                {
                    "run": run,
                    "baseline": baseline,
                    "split": split,
                    "metric": metric,
                    "k": int(k),
                    **{key: int(v) if key == "n_users" else float(v) for key, v in test.items()},
                }
            )
    return pl.DataFrame(rows)


def summary_table(
    tables: dict[str, pl.DataFrame],
    per_user: dict[str, pl.DataFrame],
    baselines: list[str],
    *,
    ks: list[int],
    select_k: int,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pl.DataFrame, str]:
    """Headline test metrics of every run with CIs, and a paired test against the best
    baseline, the baseline chosen by validation Recall@``select_k`` (never by test)."""

    def valid_recall(run):
        t = tables[run]
        row = t.filter(
            (pl.col("split") == "valid")
            & (pl.col("cohort") == "all")
            & (pl.col("metric") == "recall")
            & (pl.col("k") == select_k)
        )
        return row["value"][0] if row.height else -np.inf

    best = max(baselines, key=valid_recall)
    headline = pl.concat(
        [
            t.filter(
                (pl.col("split") == "test")
                & (pl.col("cohort") == "all")
                & pl.col("metric").is_in(["recall", "ndcg"])
                & pl.col("k").is_in(ks)
            ).select(
                pl.lit(run).alias("run"), "metric", "k", "value", "ci_low", "ci_high", "n_users"
            )
            for run, t in tables.items()
        ]
    )
    tests = paired_comparisons(per_user, best, n_boot=n_boot, seed=seed).select(
        "run",
        "metric",
        "k",
        pl.col("diff").alias("diff_vs_baseline"),
        pl.col("low").alias("diff_ci_low"),
        pl.col("high").alias("diff_ci_high"),
        pl.col("p_value"),
        pl.col("t_p_value"),
    )
    summary = headline.join(tests, on=["run", "metric", "k"], how="left").with_columns(
        pl.lit(best).alias("baseline")
    )
    return summary, best


def supported_scores(native: str) -> list[str]:
    """Score functions a model supports: its own, dot for cosine models, and the popularity
    blend (its own score + beta * log(1 + popularity), beta chosen on validation)."""
    return [native] + (["dot"] if native == "cosine" else []) + ["popblend"]


def evaluate_protocols(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    native: str,
    train: pl.DataFrame,
    truths: dict[str, pl.DataFrame],
    items: pl.DataFrame,
    block: pl.DataFrame,
    users: np.ndarray,
    *,
    candidate_sets: list[str],
    scores: list[str],
    ks: list[int],
    k: int,
    n_negatives: int = 100,
    blend_grid: tuple[float, ...] = protocols.BLEND_GRID,
    graded_cap: float = 5.0,
    threshold: float = 2.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> pl.DataFrame:
    """One run under every (candidate set, score function) protocol but the default one
    (all items, the model's own score), plus graded NDCG and AUC / GAUC on the observed block.

    Columns: candidates, score, beta, native (score is the model's own), split, cohort, metric,
    k, value, ci_low, ci_high, n_users.
    """
    n_users, n_items = user_vectors.shape[0], item_vectors.shape[0]
    truths = for_users(truths, users)
    seen = seen_matrix(train, n_users, n_items)
    popularity = protocols.item_popularity(train, n_items)
    block_set = protocols.block_items(block)
    cand_of = {"all": None, "block": block_set}
    tables = []

    def label(frame, candidates, score, beta):
        return frame.with_columns(
            pl.lit(candidates).alias("candidates"),
            pl.lit(score).alias("score"),
            pl.lit(beta, pl.Float64).alias("beta"),
            pl.lit(score == native).alias("native"),
        )

    # per split: the other splits, and the observed block for graded relevance without the
    # train pairs and the other splits' pairs (the same for every score function)
    others = {split: [t for s, t in truths.items() if s != split] for split in truths}
    graded_blocks = {
        split: block.join(
            pl.concat([train.select("user", "item"), *[t.select("user", "item") for t in rest]]),
            on=["user", "item"],
            how="anti",
        )
        for split, rest in others.items()
    }
    for score in [s for s in supported_scores(native) if s in scores]:
        base, beta, bias = native if score == "popblend" else score, None, None
        if score == "popblend":
            beta, _ = protocols.select_blend_beta(
                user_vectors,
                item_vectors,
                train,
                truths["valid"],
                n_items,
                grid=blend_grid,
                k=k,
                score=base,
            )
            bias = protocols.blend_bias(popularity, beta)
        for split, truth in truths.items():
            other, graded_block = others[split], graded_blocks[split]
            weights = graded_block["weight"]
            if (weights >= threshold).any() and (weights < threshold).any():
                # observed negatives exist (KuaiRec's small matrix; not held-out event pairs)
                auc = protocols.block_auc(
                    user_vectors,
                    item_vectors,
                    graded_block,
                    score=base,
                    threshold=threshold,
                    item_bias=bias,
                )
                tables.append(
                    label(
                        pl.DataFrame(
                            {
                                "split": split,
                                "cohort": "all",
                                "metric": ["auc", "gauc"],
                                "k": [0, 0],
                                "value": [auc["auc"], auc["gauc"]],
                                "n_users": auc["n_users"],
                            }
                        ),
                        "block",
                        score,
                        beta,
                    )
                )
            for candidates in [c for c in ("all", "block") if c in candidate_sets]:
                top, top_scores = recommend_top_k(
                    user_vectors,
                    item_vectors,
                    users,
                    k=k,
                    score=base,
                    seen=seen,
                    item_bias=bias,
                    candidates=cand_of[candidates],
                )
                recs = recs_frame(users, top, top_scores)
                graded = protocols.graded_metrics(recs, graded_block, ks, cap=graded_cap)
                tables.append(
                    label(
                        graded.with_columns(
                            pl.lit(split).alias("split"), pl.lit("all").alias("cohort")
                        ),
                        candidates,
                        score,
                        beta,
                    )
                )
                if (candidates, score) != ("all", native):
                    table, _ = evaluate_run(
                        recs,
                        {split: truth},
                        train,
                        items,
                        ks,
                        item_vectors=item_vectors,
                        n_boot=n_boot,
                        seed=seed,
                    )
                    tables.append(label(table, candidates, score, beta))
            if "sampled" in candidate_sets:
                su, pos, neg = protocols.sample_negatives(
                    train, truth, n_items, n_negatives=n_negatives, seed=seed, exclude=other
                )
                ranks = protocols.sampled_ranks(
                    user_vectors, item_vectors, su, pos, neg, score=base, item_bias=bias
                )
                sampled = protocols.sampled_metrics(su, ranks, ks)
                tables.append(
                    label(
                        sampled.with_columns(
                            pl.lit(split).alias("split"), pl.lit("all").alias("cohort")
                        ),
                        "sampled",
                        score,
                        beta,
                    )
                )
    columns = list(PROTOCOL_SCHEMA)
    schema = PROTOCOL_SCHEMA
    return pl.concat(
        [
            t.with_columns(*[pl.lit(None).alias(c) for c in columns if c not in t.columns])
            .select(columns)
            .cast(schema)
            for t in tables
        ]
    )
