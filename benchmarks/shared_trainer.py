"""Speed of the shared-table trainer against gensim's skip-gram on the same walk corpus.

Usage: .venv/bin/python benchmarks/shared_trainer.py [--epochs 3] [--threads 1 2]
       [--repeats 2] [--ns-exponent 0.75] [--typed | --untyped]

Builds the corpus the workflow trains on: configs/kuairec-synthetic.yaml's synthetic KuaiRec
(7,176 users, 10,728 videos) -> preprocess -> graph -> UV uniform walks (walk_length 15,
walks_per_node 10: 71,760 walks, ~1.08M tokens). Then, for each thread count, trains with the
same dim / window / negative / epochs / negative-sampling exponent:

- gensim Word2Vec (sg=1, corpus_file mode, sample=0 so every token is trained, alpha 0.025 ->
  1e-4) twice: with its default window shrinking (each centre's window drawn from 1..window,
  so ~(window + 1) / (2 window) of the pairs) and with ``shrink_windows=False`` (every pair);
- :func:`mp2v4rec.shared_skipgram.train_shared` with ``sgd`` (alpha 0.025 -> 1e-4) and with
  ``adam`` (lr 0.01 -> 1e-4); it always uses the full window.

Words/s = corpus tokens x epochs / training seconds; pairs/s = positive (centre, context)
pairs trained per second (for gensim's shrunk window the expected count). Each trainer pays
its own corpus reading: gensim parses the file every epoch, the shared trainer's time includes
``read_corpus`` (gensim's vocabulary scan is not timed). The comparison the goal asks for is
words/s at the same ``window`` setting (the shared trainer then does ~1.7x the pairs of
gensim's default); the pairs/s column and the shrink_windows=False rows compare equal work.
Every configuration runs ``--repeats`` times, the rounds interleaved so that load from other
jobs hits all trainers alike; the best (shortest) time counts. Validation Recall@100 of each
model (gensim by cosine as the workflow scores it, the shared table by dot product) checks that
the speed does not come from skipped work. The 1-minute load average is printed because other
jobs may share the cores. Results go to benchmarks/results/shared_trainer.tsv.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from gensim.models import Word2Vec

from mp2v4rec.embed import stable_hash, token_matrix
from mp2v4rec.experiments import planted_data
from mp2v4rec.graph import build_graph
from mp2v4rec.io import write_tsv
from mp2v4rec.shared_skipgram import read_corpus, train_shared
from mp2v4rec.validation import Validator
from mp2v4rec.walks import write_walks

ROOT = Path(__file__).resolve().parents[1]
DIM, WINDOW, NEGATIVE = 50, 6, 6  # configs/kuairec-synthetic.yaml's mp2v
WALK = dict(metapath=["user_item", "item_user"], walk_length=15, walks_per_node=10)
K = 100


def expected_pairs(lengths: np.ndarray, window: int, shrink: bool) -> float:
    """Positive pairs per epoch; with shrinking, each centre's window is uniform in 1..window,
    so a context at distance d is used with probability (window - d + 1) / window."""
    total = 0.0
    for d in range(1, window + 1):
        share = (window - d + 1) / window if shrink else 1.0
        total += 2 * share * float(np.maximum(lengths - d, 0).sum())
    return total


def run_gensim(corpus: Path, threads: int, epochs: int, shrink: bool, ns_exponent: float):
    model = Word2Vec(
        vector_size=DIM,
        window=WINDOW,
        negative=NEGATIVE,
        ns_exponent=ns_exponent,
        sg=1,
        hs=0,
        min_count=1,
        sample=0,
        alpha=0.025,
        min_alpha=1e-4,
        seed=0,
        workers=threads,
        hashfxn=stable_hash,
        shrink_windows=shrink,
    )
    model.build_vocab(corpus_file=str(corpus))
    t0 = time.perf_counter()
    model.train(
        corpus_file=str(corpus),
        total_examples=model.corpus_count,
        total_words=model.corpus_total_words,
        epochs=epochs,
    )
    seconds = time.perf_counter() - t0
    return seconds, token_matrix(model.wv, "u", N["users"]), token_matrix(model.wv, "i", N["items"])


def run_shared(corpus: Path, threads: int, epochs: int, optimizer: str, typed: bool, ns: float):
    lr = {"sgd": (0.025, 1e-4), "adam": (0.01, 1e-4)}[optimizer]
    t0 = time.perf_counter()
    walks = read_corpus(corpus, N["users"], N["items"])
    table, _ = train_shared(
        walks,
        dim=DIM,
        window=WINDOW,
        negative=NEGATIVE,
        epochs=epochs,
        seed=0,
        typed=typed,
        ns_exponent=ns,
        optimizer=optimizer,
        alpha=lr[0],
        min_alpha=lr[1],
        init_std=0.1,
        threads=threads,
    )
    seconds = time.perf_counter() - t0
    return seconds, table[: N["users"]], table[N["users"] :]


N: dict[str, int] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ns-exponent", type=float, default=0.75)
    parser.add_argument("--typed", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/shared_trainer.tsv")
    args = parser.parse_args()

    t0 = time.perf_counter()
    generator = yaml.safe_load((ROOT / "configs/kuairec-synthetic.yaml").read_text())
    data = planted_data(generator["datasets"]["kuairec-synthetic"]["synthetic"])
    N["users"], N["items"] = data.users.height, data.items.height
    graph = build_graph(data.train, data.social, N["users"], N["items"])
    validator = Validator.from_train(data.train, data.valid, N["users"], N["items"], k=K)

    with tempfile.TemporaryDirectory(prefix="mp2v4rec-shared-") as tmp:
        corpus = Path(tmp) / "walks.txt"
        write_walks(graph, corpus, sampling="uniform", seed=0, threads=2, **WALK)
        lengths = np.diff(read_corpus(corpus, N["users"], N["items"]).offsets)
        tokens = int(lengths.sum())
        print(
            f"data: {N['users']} users, {N['items']} items, {data.train.height} train "
            f"interactions; corpus {lengths.size} walks, {tokens} tokens "
            f"(prepared in {time.perf_counter() - t0:.0f} s)"
        )
        print(
            f"settings: dim={DIM} window={WINDOW} negative={NEGATIVE} epochs={args.epochs} "
            f"ns_exponent={args.ns_exponent} sample=0; shared: "
            f"{'typed' if args.typed else 'untyped'} negatives, full window, init_std 0.1"
        )
        # warm-up: compile (or load the cache of) the shared trainer's kernels
        for optimizer in ("sgd", "adam"):
            run_shared(corpus, 1, 1, optimizer, args.typed, args.ns_exponent)

        ns, typed = args.ns_exponent, args.typed
        runs = [  # trainer, optimizer, window mode, function, its arguments after threads
            ("gensim", "sgd", "shrink", run_gensim, (args.epochs, True, ns)),
            ("gensim", "sgd", "full", run_gensim, (args.epochs, False, ns)),
            ("shared", "sgd", "full", run_shared, (args.epochs, "sgd", typed, ns)),
            ("shared", "adam", "full", run_shared, (args.epochs, "adam", typed, ns)),
        ]
        header = (
            f"{'trainer':<8}{'optim':<6}{'window':<8}{'threads':>7}{'seconds':>9}"
            f"{'Mwords/s':>10}{'Mpairs/s':>10}{'recall@100':>11}{'load1':>7}"
        )
        best: dict[tuple, dict] = {}
        for _ in range(args.repeats):
            for threads in args.threads:
                for trainer, optimizer, window_mode, run, extra in runs:
                    load = os.getloadavg()[0]
                    seconds, users, items = run(corpus, threads, *extra)
                    print(
                        f"  ran {trainer} {optimizer} {window_mode} on {threads} thread(s): "
                        f"{seconds:.2f} s (load {load:.2f})",
                        flush=True,
                    )
                    key = (trainer, optimizer, window_mode, threads)
                    if key not in best or seconds < best[key]["seconds"]:
                        score = "dot" if trainer == "shared" else "cosine"
                        best[key] = dict(
                            seconds=seconds, recall=validator(users, items, score), load=load
                        )
        print(f"best of {args.repeats} interleaved rounds")
        print(header)
        rows = []
        for (trainer, optimizer, window_mode, threads), run in best.items():
            seconds, recall, load = run["seconds"], run["recall"], run["load"]
            pairs = expected_pairs(lengths, WINDOW, window_mode == "shrink") * args.epochs
            row = dict(
                trainer=trainer,
                optimizer=optimizer,
                window_mode=window_mode,
                threads=threads,
                dim=DIM,
                window=WINDOW,
                negative=NEGATIVE,
                epochs=args.epochs,
                ns_exponent=args.ns_exponent,
                tokens=tokens * args.epochs,
                pairs=pairs,
                seconds=seconds,
                words_per_s=tokens * args.epochs / seconds,
                pairs_per_s=pairs / seconds,
                valid_recall_100=recall,
                load_1m=load,
            )
            rows.append(row)
            print(
                f"{trainer:<8}{optimizer:<6}{window_mode:<8}{threads:>7}{seconds:>9.2f}"
                f"{row['words_per_s'] / 1e6:>10.3f}{row['pairs_per_s'] / 1e6:>10.2f}"
                f"{recall:>11.4f}{load:>7.2f}"
            )
    frame = pl.DataFrame(rows)
    write_tsv(frame, args.out)
    print("ratios, shared / gensim default (shrunk window) and / gensim full window:")
    for threads in args.threads:
        at = frame.filter(pl.col("threads") == threads)

        def rate(trainer, optimizer, mode, col, at=at):
            sel = at.filter(
                (pl.col("trainer") == trainer)
                & (pl.col("optimizer") == optimizer)
                & (pl.col("window_mode") == mode)
            )
            return sel[col][0]

        for optimizer in ("sgd", "adam"):
            words = rate("shared", optimizer, "full", "words_per_s")
            pairs = rate("shared", optimizer, "full", "pairs_per_s")
            print(
                f"  {threads} thread(s), shared {optimizer}: words/s x"
                f"{words / rate('gensim', 'sgd', 'shrink', 'words_per_s'):.2f} and "
                f"x{words / rate('gensim', 'sgd', 'full', 'words_per_s'):.2f}; pairs/s x"
                f"{pairs / rate('gensim', 'sgd', 'shrink', 'pairs_per_s'):.2f} and "
                f"x{pairs / rate('gensim', 'sgd', 'full', 'pairs_per_s'):.2f}"
            )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()

# Results, 2026-11-30, AMD EPYC (2 cores, AVX-512, 1 MiB L2 each), Python 3.11, numba 0.68.1,
# gensim 4.4.0. The machine was shared with other sessions' workflows and test suites (1-minute
# load 2-10 during every run), so absolute figures vary +-40% between runs and the 2-thread rows
# are the noisiest (with the cores free, the shared trainer runs an epoch ~1.8x faster on 2
# threads than on 1). The run below (2026-11-30, nothing else running, load 1.1-1.5) is the
# quietest so far.
#
# corpus 71760 walks, 1076400 tokens; dim=50 window=6 negative=6 epochs=3 ns_exponent=0.75
# sample=0; shared: typed negatives, full window, init_std 0.1; best of 2 interleaved rounds
# trainer optim window  threads  seconds  Mwords/s  Mpairs/s recall@100  load1
# gensim  sgd   shrink        1    17.57     0.184      1.06     0.1567   1.36
# gensim  sgd   full          1    27.45     0.118      1.08     0.1691   1.25
# shared  sgd   full          1     6.71     0.481      4.43     0.1585   1.24
# shared  adam  full          1    15.50     0.208      1.92     0.1624   1.14
# gensim  sgd   shrink        2     9.65     0.335      1.93     0.1624   1.11
# gensim  sgd   full          2    20.61     0.157      1.44     0.1701   1.25
# shared  sgd   full          2     3.80     0.850      7.82     0.1586   1.50
# shared  adam  full          2     7.61     0.424      3.91     0.1603   1.46
# ratios, shared / gensim default (shrunk window) and / gensim full window:
#   1 thread(s), shared sgd: words/s x2.62 and x4.09; pairs/s x4.18 and x4.09
#   1 thread(s), shared adam: words/s x1.13 and x1.77; pairs/s x1.81 and x1.77
#   2 thread(s), shared sgd: words/s x2.54 and x5.42; pairs/s x4.06 and x5.42
#   2 thread(s), shared adam: words/s x1.27 and x2.71; pairs/s x2.03 and x2.71
#
# Goal (shared words/s >= gensim's at the same dim/window/negative/threads) met by both
# optimisers at 1 and 2 threads in this run: sgd x2.5-x2.6 words/s while doing ~1.6x gensim's
# pairs, adam x1.13-x1.27. Adam does the same pairs but updates 8 rows per pair with per-row
# moments (3x the row memory traffic, a square root and a division per element): ~2.2x sgd's
# time per pair. Under load from other jobs (load 2-5, the earlier runs) adam's 2-thread
# ratio fell to x0.88 (range x0.5-x1.7 over four loaded runs): it has the least margin.

# Optimisation history (single thread, M pairs/s on this corpus, sgd / adam; noisy machine):
#   first kernel (exp + log1p per score, numba's default error model): ~1.5 / ~0.6
#   sigmoid and softplus from an interpolated table:                   ~4.4 / ~1.6
#   error_model="numpy" (no zero-division checks, so Adam's loop vectorises; 5x faster Adam
#     row update in isolation): no change measurable end to end
#   dynamic scheduling of walk chunks: protects 2-thread runs from a descheduled thread
#   vector, moments and beta powers in one contiguous row:            ~4.3 / ~2.0 (+25% adam)
#   tried and dropped (no gain measurable here): rows padded to a multiple of 4/8/16 floats,
#   software prefetch of the next pairs' negative rows, rsqrt form of Adam's denominator.
