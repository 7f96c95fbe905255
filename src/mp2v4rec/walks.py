"""Metapath-guided random walks over the CSR graph, written as gensim LineSentence text.

Node ids inside this module are global: users ``0..n_users-1``, items ``n_users..``. A metapath
is a list of relation names repeated until the walk has ``walk_length`` tokens. When a node has
no neighbour for the next relation, a type-keeping relation (``user_user``) is skipped, any other
ends the walk. Walks shorter than two tokens are dropped and counted. Weighted sampling picks an
edge with probability proportional to its weight through per-row alias tables built once per
relation (O(1) per step).

Every walk draws from its own counter-based generator (splitmix64) seeded from
``(seed, start node, repeat)``, so the output does not depend on the thread count or on sharding.
Walks are ordered by start node (users, then items), repeats adjacent; shard ``k`` of ``n``
holds a contiguous range of start nodes, so concatenating the shard files gives the unsharded one.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from mp2v4rec.graph import RELATIONS, check_graph, node_count, validate_metapath
from mp2v4rec.io import InputError, atomic_path, check_int

log = logging.getLogger(__name__)

SAMPLING = ("uniform", "weighted")
STARTS = ("users", "all")

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_GROUP = 8  # walks advanced in lockstep per task


@njit(cache=True, inline="always")
def _mix(z):
    # splitmix64 finaliser; every operand is uint64 so nothing is promoted to float
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _walk_state(seed, node, rep):
    h = _mix(seed + _GOLD)
    h = _mix(h ^ np.uint64(node))
    return _mix(h + np.uint64(rep) * _GOLD)


@njit(parallel=True, cache=True)
def _alias_table(indptr, weights, nodes, table, prob, stack):
    """Fill per-row alias tables (Vose) for O(1) sampling with probability proportional to weight.

    One 16-byte record per edge slot, so a step touches one cache line: ``table[j, 0]`` is the
    keep threshold (probability * 2**32) and ``table[j, 1]`` packs ``alias node << 32 | node``.
    ``prob`` is a float64 view of ``table[:, 0]`` and ``stack`` int64 scratch, both one per edge.
    Rows whose weights sum to zero sample uniformly.
    """
    for r in prange(indptr.size - 1):
        a = indptr[r]
        b = indptr[r + 1]
        d = b - a
        total = 0.0
        for j in range(a, b):
            total += weights[j]
            prob[j] = 1.0
            table[j, 1] = np.uint64(j)  # alias slot; self by default
        if d > 0 and total > 0.0:
            # small slots stacked from the left, large from the right
            ns = a
            nl = b
            scale = d / total
            for j in range(a, b):
                p = weights[j] * scale
                prob[j] = p
                if p < 1.0:
                    stack[ns] = j
                    ns += 1
                else:
                    nl -= 1
                    stack[nl] = j
            while ns > a and nl < b:
                ns -= 1
                small = stack[ns]
                large = stack[nl]
                table[small, 1] = np.uint64(large)
                prob[large] -= 1.0 - prob[small]
                if prob[large] < 1.0:
                    nl += 1
                    stack[ns] = large
                    ns += 1
            # leftovers are 1 up to rounding
            for k in range(a, ns):
                prob[stack[k]] = 1.0
            for k in range(nl, b):
                prob[stack[k]] = 1.0
        for j in range(a, b):
            alias = nodes[np.int64(table[j, 1])]
            table[j, 0] = np.uint64(min(max(prob[j], 0.0), 1.0) * 4294967296.0 + 0.5)
            table[j, 1] = (np.uint64(alias) << _S32) | np.uint64(nodes[j])


@njit(cache=True, inline="always")
def _pick(indices, table, weighted, a, b, z):  # pragma: no cover - compiled
    """The neighbour in ``a..b-1`` that the random word ``z`` picks: its high 32 bits choose
    the slot (multiply-shift), its low 32 bits toss the alias coin of a weighted slot."""
    j = a + np.int64(((z >> _S32) * np.uint64(b - a)) >> _S32)
    if not weighted:
        return np.int64(indices[j])
    packed = table[j, 1]
    if (z & _LOW32) < table[j, 0]:
        return np.int64(packed & _LOW32)
    return np.int64(packed >> _S32)


@njit(parallel=True, cache=True)
def _walk_kernel(
    indptr,
    indices,
    table,
    weighted,
    mp_rel,
    mp_keep,
    first,
    n_starts,
    n_users,
    item_pos,
    wpn,
    walk_length,
    seed,
    out,
    lengths,
):
    n_pos = mp_rel.size
    n_walks = n_starts * wpn
    # each task advances _GROUP walks in turn: their memory loads are independent, so the CPU
    # overlaps the cache misses that a single walk would wait for one after the other
    for g in prange((n_walks + _GROUP - 1) // _GROUP):
        w0 = g * _GROUP
        cnt = min(_GROUP, n_walks - w0)
        node = np.empty(_GROUP, dtype=np.int64)
        pos = np.empty(_GROUP, dtype=np.int64)
        n = np.ones(_GROUP, dtype=np.int64)
        skips = np.zeros(_GROUP, dtype=np.int64)
        state = np.empty(_GROUP, dtype=np.uint64)
        live = np.zeros(_GROUP, dtype=np.bool_)
        for i in range(cnt):
            w = w0 + i
            s = w // wpn
            node[i] = first + s
            pos[i] = 0 if node[i] < n_users else item_pos
            state[i] = _walk_state(seed, node[i], w - s * wpn)
            out[w, 0] = node[i]
            live[i] = True
        active = cnt
        while active > 0:
            for i in range(cnt):
                if not live[i]:
                    continue
                p = pos[i]
                v = node[i]
                rel = mp_rel[p]
                a = indptr[rel, v]
                b = indptr[rel, v + 1]
                if a == b:
                    # no neighbour: skip a type-keeping hop (at most one full cycle), else stop
                    if mp_keep[p] and skips[i] < n_pos:
                        skips[i] += 1
                        pos[i] = p + 1 if p + 1 < n_pos else 0
                        continue
                    live[i] = False
                    active -= 1
                    continue
                st = state[i] + _GOLD
                state[i] = st
                z = _mix(st)
                v = _pick(indices, table, weighted, a, b, z)
                node[i] = v
                out[w0 + i, n[i]] = v
                n[i] += 1
                skips[i] = 0
                pos[i] = p + 1 if p + 1 < n_pos else 0
                if n[i] == walk_length:
                    live[i] = False
                    active -= 1
        for i in range(cnt):
            w = w0 + i
            lengths[w] = n[i]
            for t in range(n[i], walk_length):
                out[w, t] = -1


@njit(cache=True, inline="always")
def _ndigits(v):
    # decimal digits of 0 <= v < 10**10
    if v < 100000:
        if v < 100:
            return 1 if v < 10 else 2
        return 3 if v < 1000 else (4 if v < 10000 else 5)
    if v < 10000000:
        return 6 if v < 1000000 else 7
    return 8 if v < 100000000 else (9 if v < 1000000000 else 10)


@njit(parallel=True, cache=True)
def _line_sizes(out, lengths, n_users, sizes):
    # bytes per line: tokens + (L - 1) spaces + newline; 0 for dropped walks
    for w in prange(lengths.size):
        n = lengths[w]
        total = 0
        if n >= 2:
            total = n
            for t in range(n):
                v = np.int64(out[w, t])
                total += 1 + _ndigits(v - n_users if v >= n_users else v)
        sizes[w] = total


@njit(parallel=True, cache=True)
def _fill_text(out, lengths, n_users, offsets, buf):
    for w in prange(lengths.size):
        n = lengths[w]
        if n < 2:
            continue
        p = offsets[w]
        for t in range(n):
            v = np.int64(out[w, t])
            if v < n_users:
                buf[p] = 117  # 'u'
            else:
                buf[p] = 105  # 'i'
                v -= n_users
            nd = _ndigits(v)
            u = np.uint32(v)
            for q in range(p + nd, p, -1):  # digits right to left
                buf[q] = np.uint8(48 + u % np.uint32(10))
                u //= np.uint32(10)
            p += nd + 1
            buf[p] = 32 if t < n - 1 else 10  # space or newline
            p += 1


@dataclass
class _Plan:
    indptr: np.ndarray  # int64 [n_rel, n_nodes + 1], rows over global node ids
    indices: np.ndarray  # int32, global neighbour ids of all used relations, concatenated
    table: np.ndarray  # uint64 [n_edges, 2] alias records aligned with indices (weighted only)
    mp_rel: np.ndarray  # int64 per metapath position: row of ``indptr``
    mp_keep: np.ndarray  # bool per metapath position: relation keeps the node type
    n_users: int
    n_nodes: int
    item_pos: int  # metapath position where item starts begin (-1: none)
    lo: int  # this shard's start nodes: global ids lo..hi-1
    hi: int
    weighted: bool


def _plan(
    graph, metapath, *, walk_length, walks_per_node, sampling, seed, start, shard, n_shards
) -> _Plan:
    check_graph(graph)
    validate_metapath(list(metapath))
    if sampling not in SAMPLING:
        raise InputError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
    if start not in STARTS:
        raise InputError(f"start must be one of {STARTS}, got {start!r}")
    check_int("walk_length", walk_length, 2)
    check_int("walks_per_node", walks_per_node, 1)
    check_int("seed", seed, -(2**63))
    check_int("n_shards", n_shards, 1)
    check_int("shard", shard, 0)
    if shard >= n_shards:
        raise InputError(f"need 0 <= shard < n_shards, got shard={shard}, n_shards={n_shards}")

    n_users, n_items = node_count(graph, "user"), node_count(graph, "item")
    n_nodes = n_users + n_items
    used = list(dict.fromkeys(metapath))
    weighted = sampling == "weighted"
    indptr = np.empty((len(used), n_nodes + 1), dtype=np.int64)
    offsets = np.cumsum([0] + [graph[f"{rel}_indices"].size for rel in used])
    indices = np.empty(offsets[-1], dtype=np.int32)
    table = np.empty((offsets[-1] if weighted else 1, 2), dtype=np.uint64)
    stack = np.empty(offsets[-1] if weighted else 0, dtype=np.int64)
    for r, rel in enumerate(used):
        src, dst = RELATIONS[rel]
        ip, base, end = graph[f"{rel}_indptr"], offsets[r], offsets[r + 1]
        # rows of the other node type are empty
        if src == "user":
            indptr[r, : n_users + 1] = base + ip
            indptr[r, n_users + 1 :] = end
        else:
            indptr[r, : n_users + 1] = base
            indptr[r, n_users:] = base + ip
        np.add(graph[f"{rel}_indices"], n_users if dst == "item" else 0, out=indices[base:end])
        if weighted:
            w = graph[f"{rel}_weights"].astype(np.float32, copy=False)
            tab = table[base:end]
            _alias_table(ip, w, indices[base:end], tab, tab.view(np.float64)[:, 0], stack[base:end])
    del stack
    item_pos = next((k for k, rel in enumerate(metapath) if RELATIONS[rel][0] == "item"), -1)
    n_starts = n_users
    if start == "all":
        if item_pos < 0:
            raise InputError(f"start='all' needs a metapath relation from items, got {metapath}")
        n_starts = n_nodes
    return _Plan(
        indptr=indptr,
        indices=indices,
        table=table,
        mp_rel=np.array([used.index(rel) for rel in metapath], dtype=np.int64),
        mp_keep=np.array([RELATIONS[rel][0] == RELATIONS[rel][1] for rel in metapath]),
        n_users=n_users,
        n_nodes=n_nodes,
        item_pos=item_pos,
        lo=shard * n_starts // n_shards,
        hi=(shard + 1) * n_starts // n_shards,
        weighted=weighted,
    )


def _run(plan: _Plan, first, n_starts, wpn, walk_length, seed, out, lengths) -> None:
    _walk_kernel(
        plan.indptr,
        plan.indices,
        plan.table,
        plan.weighted,
        plan.mp_rel,
        plan.mp_keep,
        np.int64(first),
        np.int64(n_starts),
        np.int64(plan.n_users),
        np.int64(plan.item_pos),
        np.int64(wpn),
        np.int64(walk_length),
        np.uint64(seed & 0xFFFFFFFFFFFFFFFF),
        out,
        lengths,
    )


class _Threads:
    """Set numba's thread count for a block, restoring the previous one after."""

    def __init__(self, threads: int):
        check_int("threads", threads, 1)
        self.threads = min(int(threads), numba.config.NUMBA_NUM_THREADS)

    def __enter__(self):
        self.prev = numba.get_num_threads()
        numba.set_num_threads(self.threads)

    def __exit__(self, *exc):
        numba.set_num_threads(self.prev)


def generate_walks(
    graph: dict[str, np.ndarray],
    metapath: list[str],
    *,
    walk_length: int,
    walks_per_node: int,
    sampling: str,
    seed: int,
    start: str = "users",
    shard: int = 0,
    n_shards: int = 1,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Walks in memory (for tests and small graphs): the walks :func:`write_walks` writes.

    Returns ``nodes`` (int64 [n_walks, walk_length], global ids, -1 past each walk's end) and
    ``lengths`` (int32); walks shorter than 2 tokens are already dropped.
    """
    with _Threads(threads):
        plan = _plan(
            graph,
            metapath,
            walk_length=walk_length,
            walks_per_node=walks_per_node,
            sampling=sampling,
            seed=seed,
            start=start,
            shard=shard,
            n_shards=n_shards,
        )
        n_walks = (plan.hi - plan.lo) * walks_per_node
        out = np.empty((n_walks, walk_length), dtype=np.int32)
        lengths = np.empty(n_walks, dtype=np.int32)
        _run(plan, plan.lo, plan.hi - plan.lo, walks_per_node, walk_length, seed, out, lengths)
    keep = lengths >= 2
    if keep.all():
        return out.astype(np.int64), lengths
    return out[keep].astype(np.int64), lengths[keep]


@dataclass
class _Buffers:
    """Reused arrays of one chunk of walks: node ids, lengths, and their text."""

    out: np.ndarray
    lengths: np.ndarray
    sizes: np.ndarray
    offsets: np.ndarray
    text: np.ndarray

    @classmethod
    def sized(cls, rows: int, walk_length: int) -> _Buffers:
        return cls(
            out=np.empty((rows, walk_length), dtype=np.int32),
            lengths=np.empty(rows, dtype=np.int32),
            sizes=np.empty(rows, dtype=np.int64),
            offsets=np.zeros(rows + 1, dtype=np.int64),
            text=np.empty(0, dtype=np.uint8),
        )

    def write_chunk(self, plan, first, n_starts, walks_per_node, seed, fh) -> np.ndarray:
        """Walk ``n_starts`` start nodes from ``first``, append them as text to ``fh``; returns
        the walks' lengths."""
        n = n_starts * walks_per_node
        o, ln, sz = self.out[:n], self.lengths[:n], self.sizes[:n]
        _run(plan, first, n_starts, walks_per_node, self.out.shape[1], seed, o, ln)
        _line_sizes(o, ln, plan.n_users, sz)
        np.cumsum(sz, out=self.offsets[1 : n + 1])
        n_bytes = int(self.offsets[n])
        if self.text.size < n_bytes:
            self.text = np.empty(n_bytes, dtype=np.uint8)
        _fill_text(o, ln, plan.n_users, self.offsets, self.text)
        fh.write(memoryview(self.text[:n_bytes]))
        return ln


def write_walks(
    graph: dict[str, np.ndarray],
    path: str | os.PathLike,
    *,
    metapath: list[str],
    walk_length: int,
    walks_per_node: int,
    sampling: str,
    seed: int,
    start: str = "users",
    shard: int = 0,
    n_shards: int = 1,
    threads: int = 1,
    chunk_starts: int = 65536,
) -> dict:
    """Write this shard's walks to ``path`` as LineSentence text (``u12 i7 u3 ...``), atomically.

    Works ``chunk_starts`` start nodes at a time; memory is about
    ``chunk_starts * walks_per_node * walk_length * 12`` bytes. Returns counts and speed.
    """
    t0 = time.perf_counter()
    check_int("chunk_starts", chunk_starts, 1)
    with _Threads(threads):
        plan = _plan(
            graph,
            metapath,
            walk_length=walk_length,
            walks_per_node=walks_per_node,
            sampling=sampling,
            seed=seed,
            start=start,
            shard=shard,
            n_shards=n_shards,
        )
    n_total = plan.hi - plan.lo
    log.info(
        "walks: shard %d/%d, start nodes %d..%d, metapath %s, %s sampling, prepared in %.2f s",
        shard,
        n_shards,
        plan.lo,
        plan.hi - 1,
        "-".join(metapath),
        sampling,
        time.perf_counter() - t0,
    )
    buffers = _Buffers.sized(min(chunk_starts, max(n_total, 1)) * walks_per_node, walk_length)
    walks = tokens = dropped = 0
    with _Threads(threads), atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for first in range(plan.lo, plan.hi, chunk_starts):
            n_starts = min(chunk_starts, plan.hi - first)
            lengths = buffers.write_chunk(plan, first, n_starts, walks_per_node, seed, fh)
            kept = lengths >= 2
            walks += int(kept.sum())
            tokens += int(lengths[kept].sum(dtype=np.int64))
            dropped += int(lengths.size - kept.sum())
            rate = (tokens - walks) / max(time.perf_counter() - t0, 1e-9)
            log.info(
                "walks: %d/%d start nodes, %d walks, %d tokens, %d dropped, %.2fM steps/s",
                first + n_starts - plan.lo,
                n_total,
                walks,
                tokens,
                dropped,
                rate / 1e6,
            )
    seconds = time.perf_counter() - t0
    return {
        "walks": walks,
        "tokens": tokens,
        "short_walks_dropped": dropped,
        "seconds": seconds,
        "steps_per_second": (tokens - walks) / max(seconds, 1e-9),
    }


def read_walks(path: str | os.PathLike, n_users: int) -> list[np.ndarray]:
    """Parse a walk file back to global node ids (one array per line); for tests and checks."""
    walks = []
    with open(path) as fh:
        for line in fh:
            ids = [int(t[1:]) + (n_users if t[0] == "i" else 0) for t in line.split()]
            walks.append(np.array(ids, dtype=np.int64))
    return walks
