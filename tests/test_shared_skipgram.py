"""The shared-table (PyG MetaPath2Vec) skip-gram: corpus parser, loss and gradient, sampler,
training (determinism, planted recovery, best epoch) and the fit_*_method contract."""

import numpy as np
import pytest
from planted import planted
from scipy import stats

from mp2v4rec.graph import build_graph
from mp2v4rec.io import InputError
from mp2v4rec.shared_skipgram import (
    NegativeSampler,
    apply_pairs,
    check_params,
    corpus_from_walks,
    fit_shared_method,
    pair_loss_and_grad,
    read_corpus,
    train_shared,
)
from mp2v4rec.walks import generate_walks, write_walks

UV = ["user_item", "item_user"]
C = 4  # planted communities: user u and item i belong to u % C and i % C
SGD = dict(optimizer="sgd", alpha=0.025, min_alpha=1e-4, init_std=0.1)


@pytest.fixture(scope="module")
def world():
    train, valid, n_users, n_items = planted()
    graph = build_graph(train, None, n_users, n_items)
    walks = generate_walks(graph, UV, walk_length=15, walks_per_node=5, sampling="uniform", seed=0)
    return train, valid, n_users, n_items, graph, corpus_from_walks(walks, n_users, n_items)


def params(**kw):
    base = dict(dim=16, window=3, negative=5, epochs=3, seed=1, typed=True, ns_exponent=0.75)
    return {**base, **SGD, **kw}


# --- corpus ----------------------------------------------------------------------------------


def test_corpus_round_trip_with_write_walks(world, tmp_path):
    _, _, n_users, n_items, graph, _ = world
    kw = dict(metapath=UV, walk_length=7, walks_per_node=2, sampling="weighted", seed=3)
    write_walks(graph, tmp_path / "w.txt", **kw)
    nodes, lengths = generate_walks(graph, kw.pop("metapath"), **kw)
    parsed = read_corpus(tmp_path / "w.txt", n_users, n_items)
    memory = corpus_from_walks((nodes, lengths), n_users, n_items)
    np.testing.assert_array_equal(parsed.tokens, memory.tokens)
    np.testing.assert_array_equal(parsed.offsets, memory.offsets)
    assert parsed.tokens.dtype == np.int32 and parsed.offsets.dtype == np.int64
    assert parsed.n_walks == lengths.size and parsed.offsets[-1] == lengths.sum()
    first = nodes[0, : lengths[0]]
    np.testing.assert_array_equal(parsed.tokens[: lengths[0]], first)


def test_corpus_whitespace_and_blank_lines(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes(b"u1 i0  u0\r\n\n\ti2 u1\nu0")  # no final newline
    corpus = read_corpus(path, 2, 3)
    np.testing.assert_array_equal(corpus.tokens, [1, 2, 0, 4, 1, 0])
    np.testing.assert_array_equal(corpus.offsets, [0, 3, 5, 6])
    listed = corpus_from_walks([np.array([1, 2, 0]), np.array([4, 1]), np.array([0])], 2, 3)
    np.testing.assert_array_equal(listed.tokens, corpus.tokens)
    np.testing.assert_array_equal(listed.offsets, corpus.offsets)
    # window 2: walk of 3 has 2 * (2 + 1) pairs, walk of 2 has 2, walk of 1 none
    assert corpus.pairs_per_epoch(2) == 8 and corpus.pairs_per_epoch(1) == 6


@pytest.mark.parametrize(
    "text, line, token, what",
    [
        ("u1 i2\nu0 x4 i1\n", 2, "x4", "does not start with 'u'"),
        ("u1 i2\n\nu0 i\n", 3, "i", "decimal index"),
        ("u1 i2a\n", 1, "i2a", "decimal index"),
        ("u1 i2\nu0 i1 u3\n", 2, "u3", "out of range"),
        ("u1 i99999999999999999999999\n", 1, "i99999999999999999999999", "out of range"),
    ],
)
def test_corpus_bad_token_names_line_and_token(tmp_path, text, line, token, what):
    path = tmp_path / "w.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=f"line {line}: walk token '{token}' .*{what}") as exc:
        read_corpus(path, 3, 5)
    assert str(path) in str(exc.value) and "rerun the walk stage" in str(exc.value)


def test_corpus_empty_or_missing(tmp_path):
    (tmp_path / "e.txt").write_text("\n \n")
    with pytest.raises(InputError, match="empty"):
        read_corpus(tmp_path / "e.txt", 3, 5)
    with pytest.raises(InputError, match="not found"):
        read_corpus(tmp_path / "missing.txt", 3, 5)
    with pytest.raises(InputError, match="walk 1: node id 9"):
        corpus_from_walks([np.array([0, 3]), np.array([9])], 3, 5)


# --- loss, gradient and the kernel's update --------------------------------------------------


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    table = rng.normal(0.0, 0.6, (7, 5))
    centres = np.array([0, 2, 0, 5])
    contexts = np.array([3, 3, 0, 1])  # pair (0, 0): a node with itself
    negatives = np.array([[4, 6, 0], [3, 1, 1], [6, 2, 4], [5, 0, 3]])  # repeats and self
    return table, centres, contexts, negatives


def test_gradient_matches_finite_differences():
    table, centres, contexts, negatives = _tiny()
    loss, grad = pair_loss_and_grad(table, centres, contexts, negatives)
    s = np.einsum("pd,pd->p", table[centres], table[contexts])
    s_neg = np.einsum("pd,pkd->pk", table[centres], table[negatives])
    expected = -np.log(1 / (1 + np.exp(-s))).sum() - np.log(1 / (1 + np.exp(s_neg))).sum()
    assert loss == pytest.approx(expected, rel=1e-12)
    eps, numeric = 1e-6, np.empty_like(table)
    for idx in np.ndindex(table.shape):
        step = np.zeros_like(table)
        step[idx] = eps
        plus = pair_loss_and_grad(table + step, centres, contexts, negatives)[0]
        minus = pair_loss_and_grad(table - step, centres, contexts, negatives)[0]
        numeric[idx] = (plus - minus) / (2 * eps)
    assert np.linalg.norm(numeric - grad) / np.linalg.norm(numeric) < 1e-7
    assert np.count_nonzero(grad.any(axis=1)) == 7  # every row gets gradient


def test_kernel_step_is_the_analytic_step():
    table, centres, contexts, negatives = _tiny()
    lr = 0.05
    # one pair with its context and the centre among its negatives: a single exact step
    for p in range(len(centres)):
        sl = slice(p, p + 1)
        loss, grad = pair_loss_and_grad(table, centres[sl], contexts[sl], negatives[sl])
        t32 = table.astype(np.float32)
        kernel_loss = apply_pairs(t32, centres[sl], contexts[sl], negatives[sl], lr=lr)
        np.testing.assert_allclose(t32, table - lr * grad, atol=2e-6)
        assert kernel_loss == pytest.approx(loss, rel=1e-5)
    # several pairs: sequential SGD, one exact step per pair
    expected = table.copy()
    for p in range(len(centres)):
        sl = slice(p, p + 1)
        expected -= lr * pair_loss_and_grad(expected, centres[sl], contexts[sl], negatives[sl])[1]
    t32 = table.astype(np.float32)
    apply_pairs(t32, centres, contexts, negatives, lr=lr)
    np.testing.assert_allclose(t32, expected, atol=5e-6)


def test_kernel_adam_first_step():
    # Adam's first bias-corrected step is lr * g / (|g| + eps) for a row seen once
    table, _, _, _ = _tiny()
    centres, contexts, negatives = np.array([0]), np.array([3]), np.array([[4, 6]])
    _, grad = pair_loss_and_grad(table, centres, contexts, negatives)
    t32 = table.astype(np.float32)
    apply_pairs(t32, centres, contexts, negatives, lr=0.01, optimizer="adam")
    np.testing.assert_allclose(t32, table - 0.01 * grad / (np.abs(grad) + 1e-8), atol=1e-6)
    np.testing.assert_array_equal(t32[[1, 2, 5]], table.astype(np.float32)[[1, 2, 5]])


# --- negative sampler ------------------------------------------------------------------------


def test_typed_sampler_draws_the_context_type_by_frequency():
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 50
    freq = rng.integers(1, 200, n_users + n_items)
    freq[[3, n_users + 7]] = 0  # absent from the corpus: never drawn
    sampler = NegativeSampler.build(freq, n_users, typed=True, ns_exponent=0.75)
    for context, lo, hi in ((5, 0, n_users), (n_users + 2, n_users, n_users + n_items)):
        draws = sampler.draw(np.full(20_000, context), 5, seed=1).ravel()
        assert draws.min() >= lo and draws.max() < hi
        counts = np.bincount(draws - lo, minlength=hi - lo)
        weights = freq[lo:hi] ** 0.75
        assert counts[weights == 0].sum() == 0
        keep = weights > 0
        expected = weights[keep] / weights[keep].sum() * draws.size
        assert stats.chisquare(counts[keep], expected).pvalue > 1e-3
    # same seed, same draws; another seed, other draws
    a = sampler.draw(np.arange(80), 3, seed=4)
    np.testing.assert_array_equal(a, sampler.draw(np.arange(80), 3, seed=4))
    assert not np.array_equal(a, sampler.draw(np.arange(80), 3, seed=5))


def test_untyped_uniform_sampler():
    freq = np.array([5, 0, 1, 9, 2, 40, 0, 3])
    sampler = NegativeSampler.build(freq, 3, typed=False, ns_exponent=0.0)
    draws = sampler.draw(np.zeros(60_000, dtype=np.int64), 1, seed=2).ravel()
    counts = np.bincount(draws, minlength=8)
    assert counts[[1, 6]].sum() == 0  # absent nodes
    present = counts[freq > 0]
    assert stats.chisquare(present).pvalue > 1e-3  # uniform over users and items alike


# --- training --------------------------------------------------------------------------------


def test_reproducible_with_one_thread(world):
    corpus = world[-1]
    a, curve_a = train_shared(corpus, **params(epochs=2))
    b, curve_b = train_shared(corpus, **params(epochs=2))
    np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in curve_a] == [r["loss"] for r in curve_b]
    assert a.dtype == np.float32 and a.shape == (corpus.n_nodes, 16)
    assert not np.array_equal(a, train_shared(corpus, **params(epochs=2, seed=2))[0])
    adam = dict(optimizer="adam", alpha=0.01, min_alpha=0.01)
    c = train_shared(corpus, **params(epochs=1, **adam))[0]
    np.testing.assert_array_equal(c, train_shared(corpus, **params(epochs=1, **adam))[0])
    two = train_shared(corpus, **params(epochs=1, **adam), threads=2)[0]
    assert np.isfinite(two).all()


def _community_share(table, n_users, k=20):
    users, items = table[:n_users], table[n_users:]
    top = np.argsort(-(users @ items.T), axis=1)[:, :k]
    return float(np.mean(top % C == (np.arange(n_users) % C)[:, None]))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(optimizer="adam", alpha=0.01, min_alpha=1e-4, typed=False, ns_exponent=0.0),
    ],
    ids=["sgd-typed", "adam-untyped"],
)
def test_planted_communities_are_recovered(world, kw):
    _, _, n_users, _, _, corpus = world
    table, curve = train_shared(corpus, **params(epochs=5, **kw))
    share = _community_share(table, n_users)
    untrained = _community_share(np.random.default_rng(0).normal(size=table.shape), n_users)
    assert share > 0.8 and untrained < 0.35, (share, untrained)  # chance is 1 / C
    assert curve[-1]["loss"] < curve[0]["loss"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_best_epoch_is_kept(world, optimizer):
    corpus = world[-1]
    snapshots, scores = [], iter([0.1, 0.5, 0.2, 0.5])

    def on_epoch(users, items):
        assert not users.flags.writeable
        snapshots.append(np.concatenate([users, items]))
        return next(scores)

    table, curve = train_shared(corpus, **params(epochs=4, optimizer=optimizer), on_epoch=on_epoch)
    assert [r["valid_recall"] for r in curve] == [0.1, 0.5, 0.2, 0.5]
    assert [r["epoch"] for r in curve] == [1, 2, 3, 4]
    np.testing.assert_array_equal(table, snapshots[1])  # ties: the earliest
    assert not np.array_equal(table, snapshots[3])


def test_fit_shared_method_contract(world, tmp_path):
    train, valid, n_users, n_items, graph, _ = world
    path = tmp_path / "walks.txt"
    write_walks(
        graph, path, metapath=UV, walk_length=9, walks_per_node=2, sampling="uniform", seed=0
    )
    extra = 3  # nodes absent from the corpus get zero vectors
    users, items, curve = fit_shared_method(
        path,
        train=train,
        valid=valid,
        n_users=n_users + extra,
        n_items=n_items + extra,
        params=params(epochs=2),
        validation_k=10,
    )
    assert users.shape == (n_users + extra, 16) and items.shape == (n_items + extra, 16)
    assert users.dtype == items.dtype == np.float32
    assert not users[n_users:].any() and not items[n_items:].any()
    assert np.abs(users[:n_users]).sum(axis=1).min() > 0
    assert curve.columns == ["epoch", "seconds", "valid_recall", "loss"] and curve.height == 2
    assert curve["valid_recall"].min() > 0
    _, _, curve = fit_shared_method(
        path,
        train=train,
        valid=None,
        n_users=n_users,
        n_items=n_items,
        params=params(epochs=1),
    )
    assert curve.columns == ["epoch", "seconds", "loss"]


@pytest.mark.parametrize(
    "change, key",
    [
        (dict(dim=0), "dim"),
        (dict(window=2.5), "window"),
        (dict(negative=0), "negative"),
        (dict(typed="yes"), "typed"),
        (dict(ns_exponent=float("nan")), "ns_exponent"),
        (dict(optimizer="adagrad"), "optimizer"),
        (dict(alpha=0.0), "alpha"),
        (dict(min_alpha=0.5), "min_alpha"),
        (dict(init_std=-1.0), "init_std"),
        (dict(epochs=True), "epochs"),
    ],
)
def test_bad_params_name_the_key(change, key):
    with pytest.raises(InputError, match=key):
        check_params(params(**change))


def test_missing_and_unknown_params():
    p = params()
    del p["typed"]
    with pytest.raises(InputError, match=r"missing \['typed'\], unknown \['sample'\]"):
        check_params({**p, "sample": 0})
