"""Skip-gram training wrapper, corpora and the embeddings contract."""

import numpy as np
import polars as pl
import pytest

from mp2v4rec.baselines.simple import popularity_embeddings, random_embeddings
from mp2v4rec.embed import (
    mean_item_vectors,
    shuffled_corpus,
    token_matrix,
    train_skipgram,
    write_sequences,
)
from mp2v4rec.io import InputError
from mp2v4rec.models import load_embeddings, load_model, save_embeddings


def interactions(rows):
    return pl.DataFrame(
        rows,
        schema={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32, "timestamp": pl.Int64},
        orient="row",
    )


def test_sequences_are_time_ordered_per_user(tmp_path):
    train = interactions([(1, 5, 2.0, 30), (0, 2, 3.0, 20), (1, 3, 2.5, 10), (0, 7, 2.0, 10)])
    path = tmp_path / "seq.txt"
    assert write_sequences(train, path) == {"sequences": 2, "tokens": 4}
    assert path.read_text().splitlines() == ["i7 i2", "i3 i5"]


def test_token_matrix_places_vectors_and_zero_fills():
    class KV:
        vector_size = 2
        key_to_index = {"u1": 0, "i0": 1, "u9": 2}
        vectors = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)

    users = token_matrix(KV, "u", 3)
    np.testing.assert_array_equal(users, [[0, 0], [1, 2], [0, 0]])  # u9 is out of range
    np.testing.assert_array_equal(token_matrix(KV, "i", 1), [[3, 4]])


def test_mean_item_vectors():
    items = np.array([[1, 0], [0, 1], [2, 2]], dtype=np.float32)
    train = interactions([(0, 0, 1, 0), (0, 2, 1, 0), (2, 1, 1, 0)])
    np.testing.assert_allclose(mean_item_vectors(items, train, 3), [[1.5, 1], [0, 0], [0, 1]])


SG = dict(alpha=0.025, min_alpha=1e-4, sample=1e-3, ns_exponent=0.75)


def write_corpus(path, n_lines=300, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_lines):
        group = rng.integers(2)  # two clusters of tokens that never co-occur
        tokens = rng.integers(0, 10, size=8) + 10 * group
        lines.append(" ".join(f"i{t}" for t in tokens))
    path.write_text("\n".join(lines) + "\n")


def test_skipgram_is_reproducible_and_learns_cooccurrence(tmp_path):
    corpus = tmp_path / "c.txt"
    write_corpus(corpus)
    kw = dict(SG, dim=8, window=3, negative=5, epochs=20, seed=3)
    a = token_matrix(train_skipgram(corpus, **kw)[0].wv, "i", 20)
    b = token_matrix(train_skipgram(corpus, **kw)[0].wv, "i", 20)
    np.testing.assert_array_equal(a, b)  # one worker: bit-for-bit
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    sims = unit @ unit.T
    same = np.mean([sims[i, j] for i in range(10) for j in range(10) if i != j])
    cross = np.mean(sims[:10, 10:])
    assert same > cross + 0.3


def test_empty_corpus_is_refused(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("")
    with pytest.raises(InputError, match="empty"):
        train_skipgram(corpus, **SG, dim=4, window=2, negative=2, epochs=1, seed=0)


def test_embeddings_round_trip_and_baselines(tmp_path):
    train = interactions([(0, 1, 1, 0), (1, 1, 1, 0), (1, 2, 1, 0)])
    users, items, score = popularity_embeddings(train, 2, 4)
    np.testing.assert_array_equal(items[:, 0], [0, 2, 1, 0])
    save_embeddings(tmp_path / "e.npz", users, items, score)
    u, i, s = load_embeddings(tmp_path / "e.npz")
    assert s == "dot" and u.dtype == np.float32 and i.shape == (4, 1)
    r1, r2 = random_embeddings(5, 7, 4, seed=1), random_embeddings(5, 7, 4, seed=1)
    np.testing.assert_array_equal(r1[1], r2[1])
    assert not np.array_equal(r1[1], random_embeddings(5, 7, 4, seed=2)[1])


def test_best_epoch_is_kept(tmp_path):
    corpus = tmp_path / "c.txt"
    write_corpus(corpus, n_lines=50)
    snapshots, scores = [], iter([0.1, 0.5, 0.2])

    def on_epoch(model):
        snapshots.append((model.wv.vectors.copy(), model.syn1neg.copy()))
        return next(scores)

    model, curve = train_skipgram(
        corpus, **SG, dim=4, window=2, negative=2, epochs=3, seed=0, on_epoch=on_epoch
    )
    assert [row["valid_recall"] for row in curve] == [0.1, 0.5, 0.2]
    np.testing.assert_array_equal(model.wv.vectors, snapshots[1][0])
    np.testing.assert_array_equal(model.syn1neg, snapshots[1][1])  # context vectors too
    assert not np.array_equal(model.wv.vectors, snapshots[2][0])


def test_fit_w2v_users_are_item_means(tmp_path):
    from mp2v4rec.embed import fit_skipgram_method

    train = interactions([(0, 0, 2, 1), (0, 1, 2, 2), (1, 2, 2, 1), (1, 3, 2, 2)])
    valid = interactions([(0, 2, 2, 3)])
    corpus = tmp_path / "seq.txt"
    write_sequences(train, corpus)
    params = dict(SG, dim=4, window=2, negative=2, epochs=2, seed=0)
    fitted = fit_skipgram_method(
        corpus,
        user_vectors_from="items",
        train=train,
        valid=valid,
        n_users=2,
        n_items=4,
        params=params,
        score="cosine",
        validation_k=2,
    )
    users, items = fitted.user_vectors, fitted.item_vectors
    np.testing.assert_allclose(users[0], items[:2].mean(axis=0), rtol=1e-6)
    assert fitted.score == "cosine" and fitted.item_input_vectors is None
    timing = ["seconds", "cpu_seconds", "valid_seconds", "valid_cpu_seconds"]
    curve = fitted.curve
    assert curve.columns == ["epoch", *timing[:2], "valid_recall", *timing[2:]]
    assert curve.height == 2


def test_shuffled_corpus_is_a_seeded_permutation_of_the_lines(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"u{i} i{i}\n" for i in range(200)) + "u7 i9")  # no final newline
    lines = corpus.read_text().splitlines()
    with shuffled_corpus(corpus, 1) as a, shuffled_corpus(corpus, 1) as b:
        assert a.read_text() == b.read_text()  # seeded
        got = a.read_text().splitlines()
    with shuffled_corpus(corpus, 2) as c:
        assert c.read_text().splitlines() != got
    assert sorted(got) == sorted(lines) and got != lines
    assert not a.exists()  # the copy is temporary


def test_sample_is_explicit_and_zero_keeps_every_token(tmp_path):
    """gensim's default sample=1e-3 downsamples every token of a small corpus; 0 keeps all."""
    corpus = tmp_path / "c.txt"
    write_corpus(corpus, n_lines=400)
    kw = dict(SG, dim=4, window=2, negative=2, epochs=1, seed=0)
    keep = {  # gensim's per-token keep probability, scaled to 2**32
        s: train_skipgram(corpus, **{**kw, "sample": s})[0].wv.expandos["sample_int"]
        for s in (0.0, 1e-3)
    }
    assert (keep[0.0] == 2**32 - 1).all()  # uint32: always kept
    assert (keep[1e-3] < 2**31).all()  # each token kept less than half the time


def test_context_score_uses_the_items_context_vectors(tmp_path):
    from mp2v4rec.embed import fit_skipgram_method

    corpus = tmp_path / "walks.txt"
    corpus.write_text("".join("u0 i0 u1 i1\nu1 i2 u0 i0\n" for _ in range(20)))
    train = interactions([(0, 0, 2, 1), (1, 1, 2, 1), (1, 2, 2, 1)])
    params = dict(SG, dim=4, window=2, negative=2, epochs=2, seed=0)
    fits = {
        score: fit_skipgram_method(
            corpus,
            user_vectors_from="tokens",
            train=train,
            valid=None,
            n_users=2,
            n_items=3,
            params=params,
            score=score,
        )
        for score in ("cosine", "context")
    }
    context, cosine = fits["context"], fits["cosine"]
    assert context.score == "dot"
    # same model, same user vectors; items are the context table's rows, and the input table
    # (the cosine model's item vectors) is kept beside them, saved and loaded with them
    np.testing.assert_array_equal(context.user_vectors, cosine.user_vectors)
    assert not np.allclose(context.item_vectors, cosine.item_vectors)
    np.testing.assert_array_equal(context.item_input_vectors, cosine.item_vectors)
    context.save(tmp_path / "e.npz")
    again = load_model("embeddings", tmp_path / "e.npz", {})
    np.testing.assert_array_equal(again.item_input_vectors, cosine.item_vectors)
    assert again.item_space("input").score == "cosine" and again.item_space("context") is again
