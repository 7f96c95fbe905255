"""One run's full evaluation: accuracy and beyond-accuracy per split and activity cohort, with
bootstrap confidence intervals; and the cross-method summary with paired tests.

Cold held-out pairs (user or item without any train positive) cannot be reached by a model
trained on the train pairs, while a random list can hit them. They are scored as their own
``cold`` cohort, and the headline (cohort ``all`` and the activity cohorts) leaves them out unless
``cold="include"`` (the study's protocol, which kept them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from mp2v4rec import protocols
from mp2v4rec.beyond import beyond_accuracy
from mp2v4rec.datasets.common import SPLITS, Prepared, cold_mask
from mp2v4rec.io import InputError
from mp2v4rec.metrics import METRICS, per_user_metrics
from mp2v4rec.recommend import (
    Fallback,
    Scorer,
    embedding_scorer,
    held_out_masks,
    popularity_fallback,
    rank_users,
    recs_frame,
    seen_matrix,
    split_recs,
)
from mp2v4rec.stats import COHORTS as ACTIVITY_COHORTS
from mp2v4rec.stats import SUMMARY_SCHEMA, activity_cohorts, holm, paired_test, summarise

COHORTS = ("all", *ACTIVITY_COHORTS, "cold")
COLD_MODES = ("exclude", "include")
LIST_LEVEL = ("coverage", "gini")  # measures of all lists together: no per-user values
METRICS_SCHEMA = {"split": pl.String, "cohort": pl.String, **SUMMARY_SCHEMA}
PROTOCOL_SCHEMA = {
    "candidates": pl.String,
    "score": pl.String,
    "beta": pl.Float64,
    "native": pl.Boolean,
    **METRICS_SCHEMA,
}


def _labelled(frame: pl.DataFrame, **labels) -> pl.DataFrame:
    """``frame`` in PROTOCOL_SCHEMA, with constant label columns added (others null)."""
    frame = frame.with_columns(
        *[pl.lit(v).alias(c) for c, v in labels.items()],
        *[pl.lit(None).alias(c) for c in PROTOCOL_SCHEMA if c not in frame and c not in labels],
    )
    return frame.select(list(PROTOCOL_SCHEMA)).cast(PROTOCOL_SCHEMA)


def default_protocol(table: pl.DataFrame, score: str) -> pl.DataFrame:
    """Label a run's main metrics: all unseen items as candidates, the model's own score."""
    return _labelled(table, candidates="all", score=score, native=True)


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


def split_cold(truth: pl.DataFrame, train: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(warm, cold)`` rows of a held-out table by the cold rule (``datasets.common.cold_mask``:
    the user or the item has no train positive)."""
    cold = cold_mask(truth, train)
    return truth.filter(~cold), truth.filter(cold)


def headline_truths(
    truths: dict[str, pl.DataFrame], train: pl.DataFrame, cold: str
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Per split, the held-out rows the headline scores (``cold="exclude"``: the warm ones;
    ``"include"``: all) and the cold rows (their own cohort)."""
    if cold not in COLD_MODES:
        raise InputError(f"evaluate.cold must be one of {list(COLD_MODES)}, got {cold!r}")
    parts = {split: split_cold(truth, train) for split, truth in truths.items()}
    headline = {s: (warm if cold == "exclude" else truths[s]) for s, (warm, _) in parts.items()}
    return headline, {s: c for s, (_, c) in parts.items()}


def split_lists(recs: pl.DataFrame, split: str) -> pl.DataFrame:
    """The lists made for one held-out split (train masked; for test, validation too)."""
    if "split" not in recs.columns:
        raise InputError(
            f"recs table has no 'split' column (columns: {recs.columns}); it was written by an "
            "older version: rerun the recommend jobs (snakemake --forcerun recommend)"
        )
    lists = recs.filter(pl.col("split") == split)
    if not lists.height:
        raise InputError(f"recs table has no lists for split {split!r}; rerun the recommend jobs")
    return lists.drop("split")


def score_split(
    scorer: Scorer,
    data: Prepared,
    users: np.ndarray,
    *,
    split: str,
    ks: list[int],
    cold: str = "exclude",
    mask_other: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-user accuracy of one split of a prepared dataset in memory, as the recommend and
    evaluate rules compute it: ``(users, {metric: [n_users, len(ks)]})`` over the headline
    users of ``split`` among ``users``.

    Validation lists mask train only, test lists train and validation; ``mask_other=False``
    with ``cold="include"`` is the study's protocol (train items masked only, cold pairs
    counted)."""
    held_out = {"valid": data.valid, "test": data.test}
    masks = held_out if mask_other else {split: held_out[split]}
    n_users, n_items = data.users.height, data.items.height
    lists = split_recs(
        scorer, users, data.train, masks, n_users, n_items, splits=[split], k=max(ks)
    )
    truths, _ = headline_truths(for_users(held_out, users), data.train, cold)
    return per_user_metrics(split_lists(lists, split), truths[split], ks)


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
    cold: str = "exclude",
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Metrics of one run as ``(table, per_user)``; ``recs`` holds one list per user and split
    (column ``split``), ``truths`` every held-out row of the evaluated users.

    ``table``: split, cohort (all; low/medium/high train activity; cold: the cold held-out
    pairs alone, accuracy only), metric, k, value, 95 % bootstrap CI over users, n_users.
    ``per_user``: user, split, metric, k, value of the headline users for the ``per_user_ks``
    (for paired tests and distributions).
    """
    headline, colds = headline_truths(truths, train, cold)
    tables, per_user_rows = [], []
    for split, truth in headline.items():
        lists = split_lists(recs, split)
        if colds[split].height:
            tables.append(_cold_table(lists, colds[split], ks, split, n_boot, seed))
        if not truth.height:
            continue
        users, accuracy = per_user_metrics(lists, truth, ks)
        frame, beyond = beyond_accuracy(
            lists,
            train,
            items.height,
            ks,
            item_vectors=item_vectors,
            reference_vectors=reference_vectors,
            item_categories=items,
            users=users,
        )
        values = {(m, k): accuracy[m][:, j] for m in accuracy for j, k in enumerate(ks)}
        values.update(beyond)
        tables += _cohort_tables(values, activity_cohorts(train, users), split, n_boot, seed)
        tables.append(
            frame.filter(pl.col("metric").is_in(LIST_LEVEL)).with_columns(
                pl.lit(split).alias("split"),
                pl.lit("all").alias("cohort"),
                pl.lit(None, pl.Float64).alias("ci_low"),
                pl.lit(None, pl.Float64).alias("ci_high"),
                pl.lit(int(users.size)).alias("n_users"),
            )
        )
        per_user_rows += [
            pl.DataFrame(
                {
                    "user": users.astype(np.int32),
                    "split": split,
                    "metric": metric,
                    "k": int(k),
                    "value": v.astype(np.float64),
                }
            )
            for (metric, k), v in values.items()
            if k in per_user_ks
        ]
    table = pl.concat([t.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA) for t in tables])
    order = {m: i for i, m in enumerate(METRICS)}
    table = table.sort(
        pl.col("split"),
        pl.col("cohort").replace_strict({c: i for i, c in enumerate(COHORTS)}),
        pl.col("metric").replace_strict(order, default=len(order)),
        pl.col("metric"),
        pl.col("k"),
    )
    per_user = pl.concat(per_user_rows) if per_user_rows else pl.DataFrame()
    return table, per_user


def _cold_table(lists, cold_truth, ks, split, n_boot, seed) -> pl.DataFrame:
    """Accuracy of the cold held-out pairs alone (cohort ``cold``)."""
    _, accuracy = per_user_metrics(lists, cold_truth, ks)
    values = {(m, k): accuracy[m][:, j] for m in accuracy for j, k in enumerate(ks)}
    summary = summarise(values, n_boot=n_boot, seed=seed)
    return summary.with_columns(pl.lit(split).alias("split"), pl.lit("cold").alias("cohort"))


def _cohort_tables(values, cohorts: pl.DataFrame, split, n_boot, seed) -> list[pl.DataFrame]:
    """Every per-user measure summarised over all users and per activity cohort."""
    cohort_of = cohorts["cohort"].to_numpy()
    tables = []
    for cohort in COHORTS[:-1]:
        mask = np.ones(cohort_of.size, bool) if cohort == "all" else cohort_of == cohort
        if not mask.any():
            continue
        summary = summarise({key: v[mask] for key, v in values.items()}, n_boot=n_boot, seed=seed)
        tables.append(
            summary.with_columns(pl.lit(split).alias("split"), pl.lit(cohort).alias("cohort"))
        )
    return tables


def paired_comparisons(
    per_user: dict[str, pl.DataFrame],
    baseline: str,
    *,
    split: str = "test",
    metrics: tuple[str, ...] = ("recall", "ndcg"),
    n_boot: int = 1000,
    n_flips: int = 10_000,
    seed: int = 0,
) -> pl.DataFrame:
    """Every run against ``baseline`` on the same users: difference, bootstrap CI, sign-flip
    p-value (``n_flips`` assignments) with its floor, and the paired t-test's."""
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
                group["value"].to_numpy(),
                group["value_base"].to_numpy(),
                n_boot=n_boot,
                n_flips=n_flips,
                seed=seed,
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
    n_flips: int = 10_000,
    seed: int = 0,
) -> tuple[pl.DataFrame, str]:
    """Headline test metrics of every run with CIs, and a paired test against the best
    baseline, the baseline chosen by validation Recall@``select_k`` (never by test). The table
    makes many comparisons, so ``p_holm`` adjusts the sign-flip p-values over all of them
    (Holm); ``p_floor`` is the smallest p-value the test resolves."""

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
    tests = paired_comparisons(per_user, best, n_boot=n_boot, n_flips=n_flips, seed=seed)
    tests = tests.filter(pl.col("run") != best)
    tests = tests.select(
        "run",
        "metric",
        "k",
        pl.col("diff").alias("diff_vs_baseline"),
        pl.col("low").alias("diff_ci_low"),
        pl.col("high").alias("diff_ci_high"),
        pl.col("p_value"),
        pl.Series("p_holm", holm(tests["p_value"].to_numpy())),
        pl.col("p_floor"),
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


@dataclass
class _ProtocolData:
    """What every protocol of one run shares: the held-out splits of the evaluated users, the
    headline truths, the masks, the popularity, and the observed blocks for graded relevance."""

    users: np.ndarray
    train: pl.DataFrame
    held_out: dict[str, pl.DataFrame]
    truths: dict[str, pl.DataFrame]
    seen: sp.csr_matrix
    masks: dict[str, sp.csr_matrix | None]
    fallback: Fallback
    popularity: np.ndarray
    graded_blocks: dict[str, protocols.Block]
    block_items: np.ndarray
    negatives: dict = field(default_factory=dict)  # split -> the sampled protocol's draw


def _protocol_data(train, held_out, block, users, splits, n_users, n_items, cold):
    held_out = for_users(held_out, users)
    graded_blocks = {}
    for split in splits:  # the observed block without train pairs and earlier splits' pairs
        earlier = SPLITS[: SPLITS.index(split)]
        known = [train, *[t for s, t in held_out.items() if s in earlier]]
        known = pl.concat([t.select("user", "item") for t in known])
        graded = block.join(known, on=["user", "item"], how="anti")
        graded = split_cold(graded, train)[0] if cold == "exclude" else graded
        graded_blocks[split] = protocols.Block.of(graded)
    return _ProtocolData(
        users=users,
        train=train,
        held_out=held_out,
        truths=headline_truths(held_out, train, cold)[0],
        seen=seen_matrix(train, n_users, n_items),
        masks=held_out_masks(held_out, splits, n_users, n_items),
        fallback=popularity_fallback(train, n_users, n_items),
        popularity=protocols.item_popularity(train, n_items),
        graded_blocks=graded_blocks,
        block_items=protocols.block_items(block),
    )


def _list_tables(d, vectors, base, bias, candidates, splits, recs, labels, run_kwargs):
    """Graded NDCG on the block and (but for the default protocol) every metric, on the lists
    of one candidate set; ``recs`` are the recommend rule's lists, used for the default."""
    default = candidates == "all" and labels["native"] and recs is not None
    if default:
        lists = {split: split_lists(recs, split) for split in splits}
    else:
        cols = d.block_items if candidates == "block" else None
        scorer = embedding_scorer(*vectors, score=base, item_bias=bias, candidates=cols)
        ranked = rank_users(
            scorer,
            d.users,
            *(v.shape[0] for v in vectors),
            k=run_kwargs["k"],
            seen=d.seen,
            exclude=[d.masks[split] for split in splits],
            fallback=d.fallback,
            candidates=cols,
        )
        lists = {s: recs_frame(d.users, *r) for s, r in zip(splits, ranked, strict=True)}
    tables = []
    for split, split_recs_ in lists.items():
        graded = protocols.graded_metrics(
            split_recs_, d.graded_blocks[split], run_kwargs["ks"], cap=run_kwargs["graded_cap"]
        )
        tables.append(_labelled(graded, candidates=candidates, split=split, cohort="all", **labels))
        if not default:
            table, _ = evaluate_run(
                split_recs_.select(pl.lit(split).alias("split"), pl.all()),
                {split: d.held_out[split]},
                d.train,
                run_kwargs["items"],
                run_kwargs["ks"],
                item_vectors=vectors[1],
                cold=run_kwargs["cold"],
                n_boot=run_kwargs["n_boot"],
                seed=run_kwargs["seed"],
            )
            tables.append(_labelled(table, candidates=candidates, **labels))
    return tables


def _auc_table(d, vectors, base, bias, split, threshold, labels):
    """AUC and GAUC against the observed negatives of the block (KuaiRec's small matrix; held-out
    event pairs have none, and give no rows)."""
    block = d.graded_blocks[split]
    weights = block.weight
    if not ((weights >= threshold).any() and (weights < threshold).any()):
        return []
    auc = protocols.block_auc(*vectors, block, score=base, threshold=threshold, item_bias=bias)
    frame = pl.DataFrame(
        {
            "metric": ["auc", "gauc"],
            "k": [0, 0],
            "value": [auc["auc"], auc["gauc"]],
            "n_users": auc["n_users"],
        }
    )
    return [_labelled(frame, candidates="block", split=split, cohort="all", **labels)]


def _sampled_table(d, vectors, base, bias, split, n_items, n_negatives, ks, seed, labels):
    """Each held-out positive ranked against sampled negatives (biased; for comparison); the
    negatives avoid the earlier splits' positives (validation's never depend on test labels)."""
    if split not in d.negatives:  # one draw per split, shared by every score function
        others = [t for s, t in d.held_out.items() if s in SPLITS[: SPLITS.index(split)]]
        d.negatives[split] = protocols.sample_negatives(
            d.train, d.truths[split], n_items, n_negatives=n_negatives, seed=seed, exclude=others
        )
    users, pos, neg = d.negatives[split]
    ranks = protocols.sampled_ranks(*vectors, users, pos, neg, score=base, item_bias=bias)
    sampled = protocols.sampled_metrics(users, ranks, ks)
    return [_labelled(sampled, candidates="sampled", split=split, cohort="all", **labels)]


def evaluate_protocols(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    native: str,
    train: pl.DataFrame,
    held_out: dict[str, pl.DataFrame],
    items: pl.DataFrame,
    block: pl.DataFrame,
    users: np.ndarray,
    *,
    splits: list[str],
    candidate_sets: list[str],
    scores: list[str],
    ks: list[int],
    k: int,
    cold: str,
    n_negatives: int,
    blend_grid: tuple[float, ...],
    graded_cap: float,
    threshold: float,
    n_boot: int,
    seed: int,
    recs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One run under every (candidate set, score function) protocol but the default one
    (all items, the model's own score, scored by the evaluate rule), plus graded NDCG and
    AUC / GAUC on the observed block.

    ``held_out``: every held-out split (each split's lists and negatives exclude the others'
    pairs); ``splits``: the ones reported; ``recs``: the recommend rule's lists (the default
    protocol's graded NDCG reads them instead of ranking again). Cold pairs are handled as in
    :func:`evaluate_run`. Columns: candidates, score, beta, native (score is the model's own),
    split, cohort, metric, k, value, ci_low, ci_high, n_users.
    """
    vectors = (user_vectors, item_vectors)
    n_users, n_items = user_vectors.shape[0], item_vectors.shape[0]
    d = _protocol_data(train, held_out, block, users, splits, n_users, n_items, cold)
    run_kwargs = dict(k=k, ks=ks, graded_cap=graded_cap, items=items, cold=cold)
    run_kwargs |= dict(n_boot=n_boot, seed=seed)
    tables = []
    for score in [s for s in supported_scores(native) if s in scores]:
        beta = None
        if score == "popblend":  # beta chosen on validation, lists masking train only
            beta, _ = protocols.select_blend_beta(
                *vectors, train, d.truths["valid"], n_items, grid=blend_grid, k=k, score=native
            )
        base, bias = protocols.resolve_score(
            score, native=native, beta=beta or 0.0, popularity=d.popularity
        )
        labels = {"score": score, "beta": beta, "native": score == native}
        for candidates in [c for c in ("all", "block") if c in candidate_sets]:
            tables += _list_tables(
                d, vectors, base, bias, candidates, splits, recs, labels, run_kwargs
            )
        for split in splits:
            tables += _auc_table(d, vectors, base, bias, split, threshold, labels)
            if "sampled" in candidate_sets:
                tables += _sampled_table(
                    d, vectors, base, bias, split, n_items, n_negatives, ks, seed, labels
                )
    return pl.concat(tables)
