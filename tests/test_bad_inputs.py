"""Every bad input stops with an InputError saying what, where and what to do, and leaves no output.

One table, one row per bad input. Each row feeds the input to the real entry point (the library
call a rule's script makes, followed by the script's write) in a temporary folder and checks:
the error type, the location named in the message (file/member, column, row or config key), the
instruction, and that no output was left behind (the destination does not exist, no ``.*.tmp*``
file remains). Inputs that are not errors by rule (duplicates, cold ids, empty test sets) check
the counts the rule writes to ``stats.json`` instead. The README's "Bad input -> what you see"
table quotes these messages, one row per test id.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mp2v4rec.config import validate_config
from mp2v4rec.datasets.events import preprocess_events
from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.download import fetch_archive
from mp2v4rec.io import InputError, atomic_path, write_parquet
from mp2v4rec.models import load_embeddings, save_embeddings
from mp2v4rec.recommend import recommend_top_k, recs_frame

# ---- a tiny KuaiRec archive ------------------------------------------------------------------
# big matrix: positives (>= 2) of users 1, 2, 3 on items 10, 11; (2, 10) twice; item 12 only
# below the threshold. small matrix: user 4 and item 13 are cold (no train positive), item 12 is
# cold too, user 5 has no positive at all (an empty test set).

HEADER = "user_id,video_id,timestamp,watch_ratio\n"
BIG_ROWS = [
    "1,10,1593878900.0,2.5",
    "1,11,1593878901.0,3.0",
    "2,10,1593878902.0,2.0",  # data row 3: the row the bad values below replace
    "2,10,1593878903.0,4.0",
    "3,12,1593878904.0,1.0",
    "3,11,,2.2",
]
SMALL_ROWS = [
    "1,12,1593964800.0,3.0",
    "2,11,1593964801.0,2.5",
    "4,10,1593964802.0,2.0",
    "4,13,1593964803.0,5.0",
    "5,10,1593964804.0,0.1",
    "5,11,1593964805.0,0.2",
]
MEMBERS = {
    "big_matrix.csv": HEADER + "\n".join(BIG_ROWS) + "\n",
    "small_matrix.csv": HEADER + "\n".join(SMALL_ROWS) + "\n",
    "social_network.csv": 'user_id,friend_list\n1,"[2, 3]"\n2,[1]\n',
    "item_categories.csv": 'video_id,feat\n10,"[1, 2]"\n11,[3]\n12,[]\n13,[1]\n',
}


def kuairec_zip(path: Path, **members: str | None) -> Path:
    """The tiny archive; ``members`` replaces a member's text (None leaves it out)."""
    files = {**MEMBERS, **{k.replace("_csv", ".csv"): v for k, v in members.items()}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            if text is not None:
                zf.writestr(f"KuaiRec 2.0/data/{name}", text)
    return path


def big_row3(row: str) -> str:
    return HEADER + "\n".join([*BIG_ROWS[:2], row, *BIG_ROWS[3:]]) + "\n"


def kuairec(make: Callable[[Path], Path] | None = None, **members: str | None):
    """Run: build the archive (or ``make`` it), preprocess it and write, as the rule's script."""

    def run(tmp: Path, out: Path) -> None:
        archive = make(tmp) if make else kuairec_zip(tmp / "KuaiRec.zip", **members)
        preprocess_kuairec(archive).write(out)

    return run


def truncated(tmp: Path) -> Path:
    data = kuairec_zip(tmp / "full.zip").read_bytes()
    (tmp / "KuaiRec.zip").write_bytes(data[: len(data) // 2])
    return tmp / "KuaiRec.zip"


def corrupt(tmp: Path) -> Path:
    """Flip bytes in the middle of big_matrix.csv's compressed data (directory intact)."""
    path = kuairec_zip(tmp / "KuaiRec.zip")
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("KuaiRec 2.0/data/big_matrix.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(path.read_bytes())
    middle = start + info.compress_size // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))
    return path


# ---- event logs ------------------------------------------------------------------------------

T0 = 1_700_000_000
EVENT_COLUMNS = ("user_id", "item_id", "event", "timestamp", "count")
EVENTS = [(1, 10, "like", T0, 1), (1, 11, "play", T0, 2), (2, 10, "play", T0, 1)]
EVENTS += [(2, 11, "like", T0, 1), (3, 12, "like", T0, 1)]
LOOSE = {"min_user_interactions": 1, "min_item_interactions": 1}


def events_csv(path: Path, rows, columns=EVENT_COLUMNS) -> Path:
    """Rows written as text cells (None: an empty cell), the way a CSV export arrives."""
    data = {c: [None if r[j] is None else str(r[j]) for r in rows] for j, c in enumerate(columns)}
    pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String)).write_csv(path)
    return path


def events(bad_row=None, header=EVENT_COLUMNS, eval_rows=None, **kwargs):
    """Run: write events.csv (good rows + ``bad_row`` as data row 6), preprocess it and write."""

    def run(tmp: Path, out: Path) -> None:
        rows = EVENTS + ([bad_row] if bad_row else [])
        paths = {"events": events_csv(tmp / "events.csv", rows, header)}
        if eval_rows:
            paths["eval_events"] = events_csv(tmp / "eval_events.csv", eval_rows)
        preprocess_events(**paths, **LOOSE, **kwargs).write(out)

    return run


# ---- archives over HTTP ----------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 40  # the "archive" the test server serves
SIZE, MD5 = len(PAYLOAD), hashlib.md5(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD (ignoring Range), or an HTTP error, or cuts the body after 1000 bytes."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests += 1
        mode = self.server.mode
        if isinstance(mode, int):
            self.send_error(mode)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        self.wfile.write(PAYLOAD[:1000] if mode == "cut" else PAYLOAD)
        self.close_connection = True


@contextlib.contextmanager
def serving(mode):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.mode, httpd.requests = mode, 0
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_port}/KuaiRec.zip"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=2)


@pytest.fixture(autouse=True)
def _local_server_without_proxy(no_proxy):
    """The archive server runs on 127.0.0.1: no proxy from the environment in between."""


def download(mode, md5=MD5, retries=2):
    """Run: fetch the archive from the test server into ``out`` (the download rule)."""

    def run(tmp: Path, out: Path) -> None:
        with serving(mode) as (httpd, url):
            try:
                fetch_archive([url], out / "KuaiRec.zip", SIZE, md5, retries=retries, backoff=0.0)
            finally:
                assert httpd.requests == (1 if mode in (404, "ok") else retries + 1)

    return run


def local_copy(tmp: Path, out: Path) -> None:
    """A user's own copy, one byte short, given as datasets.<name>.archive."""
    (tmp / "mine.zip").write_bytes(PAYLOAD[:-1])
    fetch_archive([], out / "KuaiRec.zip", SIZE, MD5, local_path=tmp / "mine.zip")


# ---- config ----------------------------------------------------------------------------------


def config(edit: Callable[[dict], None]):
    """Run: validate a minimal config after ``edit`` (the Snakefile's first step)."""

    def run(tmp: Path, out: Path) -> None:
        cfg = copy.deepcopy(
            {
                "datasets": {"d": {"kind": "kuairec"}},
                "methods": {"mp2v": {"kind": "mp2v"}, "w2v": {"kind": "w2v"}},
            }
        )
        edit(cfg)
        validate_config(cfg)

    return run


# ---- embeddings -> recommendations -----------------------------------------------------------


def recommend(k: int = 3, pickled: bool = False):
    """Run: load embeddings.npz, rank the top k and write recs.parquet (the recommend rule)."""

    def run(tmp: Path, out: Path) -> None:
        rng = np.random.default_rng(0)
        path = tmp / "embeddings.npz"
        if pickled:
            np.savez(path, user_vectors=np.array([{"u": 1}], dtype=object), score="cosine")
        else:
            save_embeddings(path, rng.normal(size=(4, 3)), rng.normal(size=(5, 3)))
        user_vectors, item_vectors, score = load_embeddings(path)
        users = np.arange(len(user_vectors))
        items, scores = recommend_top_k(user_vectors, item_vectors, users, k=k, score=score)
        write_parquet(recs_frame(users, items, scores), out / "recs.parquet")

    return run


# ---- the table -------------------------------------------------------------------------------


@dataclass
class Case:
    run: Callable[[Path, Path], None]  # (tmp folder, output folder)
    where: tuple[str, ...] = ()  # parts of the message that locate the problem
    todo: str = ""  # part of the message that says what to do
    stats: dict | None = None  # not an error: these counts in out/stats.json
    leftovers: tuple[str, ...] = ()  # files allowed in the output folder afterwards


def case(id_, run, where=(), todo="", **kw):
    return pytest.param(Case(run, tuple(where), todo, **kw), id=id_)


def cfg_set(path: str, value):
    """Edit setting ``a.b.c`` of the config to ``value`` (intermediate dicts created)."""

    def edit(cfg):
        *parents, key = path.split(".")
        for name in parents:
            cfg = cfg.setdefault(name, {})
        cfg[key] = value

    return edit


FIX_ROW = "fix or drop the row"
CASES = [
    # -- archive (download and preprocess) --
    case(
        "archive-truncated-zip",
        kuairec(truncated),
        ["KuaiRec.zip", "not a readable zip"],
        "download it again",
    ),
    case(
        "archive-corrupt-zip",
        kuairec(corrupt),
        ["KuaiRec.zip", "big_matrix.csv", "corrupt"],
        "download the archive again",
    ),
    case(
        "archive-missing-member",
        kuairec(social_network_csv=None),
        ["KuaiRec.zip", "no member '*/data/social_network.csv'"],
        "use the KuaiRec 2.0 zip",
    ),
    case(
        "archive-wrong-size",
        local_copy,
        ["mine.zip", "datasets.<name>.archive", f"size is {SIZE - 1} bytes, expected {SIZE}"],
        "Download KuaiRec.zip again",
    ),
    case(
        "archive-wrong-md5",
        download("ok", md5="0" * 32),
        ["KuaiRec.zip", "127.0.0.1", f"md5 is {MD5}, expected {'0' * 32}"],
        "The download was deleted; rerun",
    ),
    case(
        "download-http-404",
        download(404),
        ["/KuaiRec.zip: HTTP 404", "datasets.<name>.download.urls"],
        "datasets.<name>.archive: /path/to/KuaiRec.zip",
    ),
    case(
        "download-http-500-retried",
        download(500),
        ["/KuaiRec.zip: HTTP 500", "datasets.<name>.download.urls"],
        "datasets.<name>.archive: /path/to/KuaiRec.zip",
    ),
    case(
        "download-cut-connection-retried",
        download("cut"),
        [
            "/KuaiRec.zip",
            f"download cut: connection closed after 1000 of {SIZE} bytes",
            "retried 2 times per URL",
        ],
        "a rerun resumes it",
        leftovers=("KuaiRec.zip.part",),  # kept on purpose: the next run resumes it
    ),
    # -- KuaiRec tables --
    case(
        "kuairec-missing-column",
        kuairec(small_matrix_csv=MEMBERS["small_matrix.csv"].replace("video_id", "item_id", 1)),
        ["small_matrix.csv", "missing column 'video_id'", "'item_id'"],
        "rename the column back",
    ),
    case(
        "kuairec-non-numeric-id",
        kuairec(big_matrix_csv=big_row3("x2,10,1593878902.0,2.0")),
        ["big_matrix.csv", "column 'user_id' row 3 (file line 4)", "'x2'"],
        "fix the file or download it again",
    ),
    case(
        "kuairec-non-numeric-watch-ratio",
        kuairec(big_matrix_csv=big_row3("2,10,1593878902.0,n/a")),
        ["big_matrix.csv", "column 'watch_ratio' row 3 (file line 4)", "'n/a'"],
        "fix the file or download it again",
    ),
    *(
        case(
            f"kuairec-{name}-watch-ratio",
            kuairec(big_matrix_csv=big_row3(f"2,10,1593878902.0,{value}")),
            ["big_matrix.csv", "column 'watch_ratio' row 3 (file line 4)", "not a finite number"],
            FIX_ROW,
        )
        for name, value in [("negative", "-2.0"), ("nan", "NaN"), ("infinite", "inf")]
    ),
    case(
        "kuairec-unparsable-timestamp",
        kuairec(big_matrix_csv=big_row3("2,10,2020-07-05 00:08,2.0")),
        ["big_matrix.csv", "column 'timestamp' row 3 (file line 4)", "'2020-07-05 00:08'"],
        "fix the file or download it again",
    ),
    case(
        "kuairec-infinite-timestamp",
        kuairec(big_matrix_csv=big_row3("2,10,inf,2.0")),
        ["big_matrix.csv", "column 'timestamp' row 3 (file line 4)", "not a time in seconds"],
        FIX_ROW,
    ),
    case(
        "kuairec-malformed-friend-list",
        kuairec(social_network_csv='user_id,friend_list\n1,"[2, 3]"\n2,"[1; 3]"\n'),
        ["social_network.csv", "column 'friend_list' row 2 (file line 3)", "'[1; 3]'"],
        "fix the row or download the archive again",
    ),
    case(
        "kuairec-malformed-feat",
        kuairec(item_categories_csv='video_id,feat\n10,"[1, 2]"\n11,3\n'),
        ["item_categories.csv", "column 'feat' row 2 (file line 3)", "'3'"],
        "fix the row or download the archive again",
    ),
    *(
        case(
            f"kuairec-{name}-header-only",
            kuairec(**{f"{name}_csv": HEADER}),
            ["KuaiRec.zip", f"{name}.csv has a header but no rows", role],
            "use the complete KuaiRec 2.0 archive",
        )
        for name, role in (("big_matrix", "train history"), ("small_matrix", "evaluation block"))
    ),
    case(
        "kuairec-no-train-positive",
        kuairec(big_matrix_csv=HEADER + "1,10,1593878900.0,1.5\n"),
        ["no train positive", "big_matrix.csv", "positive_threshold=2.0"],
        "lower the threshold or check the archive",
    ),
    case(
        "kuairec-no-held-out-positive",
        kuairec(small_matrix_csv=HEADER + "1,10,1593964800.0,3.0\n5,10,1593964804.0,0.1\n"),
        ["no held-out positive", "small_matrix.csv", "not already a train positive"],
        "lower the threshold or check the archive",
    ),
    case(
        "kuairec-threshold-not-positive",
        lambda tmp, out: preprocess_kuairec(
            kuairec_zip(tmp / "KuaiRec.zip"), positive_threshold=-1.0
        ).write(out),
        ["preprocess.positive_threshold=-1.0", "every watched video a positive"],
        "must be a number > 0",
    ),
    case(
        "kuairec-valid-fraction-zero",
        lambda tmp, out: preprocess_kuairec(
            kuairec_zip(tmp / "KuaiRec.zip"), valid_fraction=0.0
        ).write(out),
        ["preprocess.valid_fraction=0.0"],
        "strictly between 0 and 1",
    ),
    case(
        "kuairec-duplicate-pairs-merged",
        kuairec(),
        stats={"big_matrix_positive_rows": 5, "duplicate_positive_rows": 1, "positives": 4},
    ),
    case(
        "kuairec-cold-eval-users-items",
        kuairec(),
        stats={"eval_cold_users": 1, "eval_cold_items": 2, "eval_cold_pairs": 3, "test_pairs": 3},
    ),
    case(
        "kuairec-empty-test-set",
        kuairec(),
        stats={"evaluated_users": 4, "eval_users_without_positives": 1},
    ),
    # -- event logs --
    case(
        "events-missing-column",
        events(header=("uid", *EVENT_COLUMNS[1:])),
        ["events.csv", "missing column 'user_id' for events.user_id", "['uid',"],
        "set columns.events.user_id to its name",
    ),
    case(
        "events-renamed-column-wrong-mapping",
        events(header=("uid", *EVENT_COLUMNS[1:]), columns={"events": {"user_id": "user"}}),
        ["events.csv", "missing column 'user' for events.user_id"],
        "columns.events.user_id maps it to 'user'",
    ),
    case(
        "events-non-numeric-id",
        events((4, "track-9", "like", T0, 1)),
        ["events.csv", "column 'item_id' row 6 (file line 7)", "'track-9'"],
        "map string ids to integers first",
    ),
    *(
        case(
            f"events-{name}-count",
            events((4, 10, "like", T0, value)),
            ["events.csv", "column 'count' row 6 (file line 7)", f"{value!r}"],
            FIX_ROW,
        )
        for name, value in [("negative", "-1"), ("nan", "nan"), ("infinite", "inf")]
    ),
    case(
        "events-unparsable-timestamp",
        events((4, 10, "like", "31/12/2023", 1)),
        ["events.csv", "column 'timestamp' row 6 (file line 7)", "'31/12/2023'"],
        FIX_ROW,
    ),
    case(
        "events-duplicate-pairs-merged",
        events((1, 10, "play", T0, 3)),
        stats={"event_rows": 6, "scored_pairs": 5, "merged_event_rows": 1},
    ),
    case(
        "events-cold-eval-users-items",
        events(
            eval_rows=[(1, 12, "like", T0, 1), (9, 10, "like", T0, 1)]
            + [(2, 13, "like", T0, 1), (1, 10, "like", T0, 1)]
        ),
        stats={
            "heldout_pairs_scored": 4,
            "heldout_cold_pairs": 2,
            "heldout_cold_users": 1,
            "heldout_cold_items": 1,
            "heldout_in_train": 1,
            "heldout_pairs": 1,
            "evaluated_users": 1,  # users 2 and 3 have no held-out positive left: not evaluated
        },
    ),
    # -- config --
    case(
        "config-unknown-key",
        config(cfg_set("methods.mp2v.dimm", 3)),
        ["config key methods.mp2v", "unknown key(s) ['dimm']", "allowed keys are ['alpha'"],
        "Fix the spelling or remove the key",
    ),
    case(
        "config-wrong-type",
        config(cfg_set("methods.mp2v.dim", "big")),
        ["config key methods.mp2v.dim", "'big' is not of type 'integer'"],
        "write a value of that type",
    ),
    case(
        "config-metapath-unknown-relation",
        config(cfg_set("metapaths", {"X": ["user_item", "friend"]})),
        ["config key metapaths.X.1", "'friend' is not one of ['user_item', 'item_user'"],
        "use one of these",
    ),
    case(
        "config-metapath-not-chaining",
        config(cfg_set("metapaths", {"X": ["user_item", "user_item"]})),
        ["metapaths.X", "'user_item' ends at an item", "(positions 0 and 1)", "item_user: item"],
        "order the relations so each starts where the previous one ends",
    ),
    case(
        "config-metapath-undefined",
        config(cfg_set("methods.mp2v.metapath", "UIU")),
        ["config key methods.mp2v", "metapath 'UIU' is not defined", "['UUV', 'UV']"],
        "add it under metapaths",
    ),
    case(
        "config-grid-axis-empty",
        config(cfg_set("ablation.grid", {"seed": []})),
        ["config key ablation.grid.seed", "[] should be non-empty"],
        "give at least 1 value(s), or remove the key",
    ),
    case(
        "config-shared-trainer-context-score",
        config(cfg_set("methods.mp2v", {"kind": "mp2v", "trainer": "shared", "score": "context"})),
        ["config key methods.mp2v", "the shared trainer has one table"],
        "score: cosine or dot",
    ),
    case(
        "config-negative-positive-threshold",
        config(cfg_set("datasets.d.preprocess.positive_threshold", -1)),
        ["config key datasets.d.preprocess.positive_threshold", "-1"],
        "less than or equal to the minimum of 0",
    ),
    case(
        "events-negative-min-score",
        events(positive_min_score=-1.0),
        ["preprocess.positive_min_score=-1.0"],
        "must be a number >= 0",
    ),
    case(
        "events-header-only",
        lambda tmp, out: preprocess_events(
            events=events_csv(tmp / "events.csv", []), **LOOSE
        ).write(out),
        ["events.csv"],
        "no rows; nothing to preprocess",
    ),
    case(
        "config-evaluate-k-above-list-length",
        config(cfg_set("evaluate.ks", [10, 200])),
        ["config key evaluate.ks", "K=200 exceeds recommend.k=100"],
        "raise recommend.k or drop the larger K values",
    ),
    case(
        "recommend-k-above-catalogue",
        recommend(k=6),
        ["recommend.k = 6", "catalogue size (5 items)"],
        "lower recommend.k",
    ),
    # -- arrays --
    case(
        "npz-pickled-object-array",
        recommend(pickled=True),
        ["embeddings.npz", "Object arrays cannot be loaded when allow_pickle=False"],
        "delete the file and rerun the stage that writes it",
    ),
]


def test_cases_are_named_uniquely():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, tmp_path):
    out = tmp_path / "out"
    if case.stats is not None:  # handled by a rule: counted, and the outputs are complete
        case.run(tmp_path, out)
        stats = json.loads((out / "stats.json").read_text())
        assert {key: stats[key] for key in case.stats} == case.stats
        assert not list(tmp_path.rglob(".*.tmp*"))
        return
    with pytest.raises(InputError) as err:
        case.run(tmp_path, out)
    message = str(err.value)
    for part in (*case.where, case.todo):
        assert part in message, f"{part!r} not in the message:\n{message}"
    left = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert left == sorted(case.leftovers), "a failed run left output behind"
    assert not list(tmp_path.rglob(".*.tmp*")), "a temporary file was left behind"


def test_a_split_without_held_out_pairs_is_refused_before_anything_is_written(tmp_path):
    """Too little data for its settings (a tiny log whose only positives are rare likes) can
    leave validation empty: preprocess says so, naming the folder, and writes nothing."""
    from mp2v4rec.datasets import common

    empty = {
        name: pl.DataFrame(schema=schema)
        for name, schema in (
            ("train", common.INTERACTION_SCHEMA),
            ("valid", common.INTERACTION_SCHEMA),
            ("test", common.INTERACTION_SCHEMA),
            ("social", common.SOCIAL_SCHEMA),
            ("users", common.USER_SCHEMA),
            ("items", common.ITEM_SCHEMA),
        )
    }
    with pytest.raises(InputError, match=r"data: the valid split holds no held-out positive"):
        common.Prepared(**empty, stats={}).write(tmp_path / "data", require_held_out=True)
    assert not (tmp_path / "data").exists()


def test_a_write_removes_the_temporary_file_a_killed_writer_left(tmp_path):
    """SIGKILL leaves atomic_path's temporary file behind; the next write of that output removes
    it, and leaves other outputs' temporary files alone."""
    out = tmp_path / "shard0.txt"
    left = tmp_path / ".shard0.txt.k1ll3d_x.tmp.txt"  # what a killed writer of out leaves
    other = tmp_path / ".shard1.txt.k1ll3d_x.tmp.txt"  # a different output's
    left.write_text("half a walk")
    other.write_text("half a walk")
    with atomic_path(out) as tmp:
        tmp.write_text("a whole walk\n")
    assert out.read_text() == "a whole walk\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, out.name]
