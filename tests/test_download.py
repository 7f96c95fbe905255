"""fetch_archive against a local HTTP server with switchable faults (127.0.0.1 only)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mp2v4rec import download
from mp2v4rec.download import fetch_archive, md5sum, verify_file
from mp2v4rec.io import InputError

DATA = random.Random(20240611).randbytes(300_000)
SIZE = len(DATA)
MD5 = hashlib.md5(DATA).hexdigest()
CUT = 100_000


@dataclass
class Server:
    """Server state and faults; ``requests`` records (path, Range header) of every request."""

    url: str = ""
    status: int | None = None  # answer every request with this error
    cut_after: int | None = None  # send full Content-Length, then only this many body bytes...
    cut_requests: int = 1  # ...on this many first requests
    stall: float = 0.0  # on a cut request, hang this long before closing
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def ranges(self) -> list[str | None]:
        return [rng for _, rng in self.requests]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        state: Server = self.server.state
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        if state.status or self.path != "/KuaiRec.zip":
            self.send_error(state.status or 404)
            return
        start = 0
        if rng and not state.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= SIZE:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{SIZE}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{SIZE - 1}/{SIZE}")
        else:
            self.send_response(200)
        body = DATA[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None and len(state.requests) <= state.cut_requests:
            self.wfile.write(body[: state.cut_after])
            time.sleep(state.stall)
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(autouse=True)
def _local_server_without_proxy(no_proxy):
    """The archive server runs on 127.0.0.1: no proxy from the environment in between."""


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = Server(url=f"http://127.0.0.1:{httpd.server_port}/KuaiRec.zip")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=2)


def closed_url() -> str:
    """A URL on 127.0.0.1 whose port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/KuaiRec.zip"


def fetch(urls, dest, **kwargs):
    kwargs = {"retries": 3, "timeout": 5.0, "backoff": 0.0, **kwargs}
    fetch_archive(urls, dest, kwargs.pop("size", SIZE), kwargs.pop("md5", MD5), **kwargs)


def part_of(dest):
    return dest.with_name(dest.name + ".part")


def assert_verified(dest):
    assert dest.read_bytes() == DATA
    assert not part_of(dest).exists()


# --- md5sum / verify_file -------------------------------------------------------------------


def test_md5sum_reads_in_chunks(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(DATA)
    assert md5sum(path, chunk_size=4096) == MD5 == md5sum(path)


def test_verify_file_accepts_match_and_names_mismatches(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(DATA)
    verify_file(path, SIZE, MD5.upper())
    with pytest.raises(
        InputError, match=rf"a\.zip: size is {SIZE} bytes, expected {SIZE + 1}"
    ) as err:
        verify_file(path, SIZE + 1, MD5)
    assert "delete it" in str(err.value)
    with pytest.raises(InputError, match=f"md5 is {MD5}, expected {'0' * 32}"):
        verify_file(path, SIZE, "0" * 32)
    with pytest.raises(InputError, match="missing.zip: file not found"):
        verify_file(tmp_path / "missing.zip", SIZE, MD5)


def test_malformed_expected_md5_is_rejected_before_download(tmp_path, server):
    with pytest.raises(InputError, match="32 hex digits"):
        fetch([server.url], tmp_path / "KuaiRec.zip", md5="abc")
    assert server.requests == []


# --- downloads ------------------------------------------------------------------------------


def test_plain_download(tmp_path, server, caplog):
    dest = tmp_path / "res" / "KuaiRec.zip"
    with caplog.at_level(logging.INFO, logger="mp2v4rec.download"):
        fetch([server.url], dest)
    assert_verified(dest)
    assert md5sum(dest) == MD5
    assert server.ranges == [None]
    assert "MB/s" in caplog.text and "verified" in caplog.text


def test_resume_after_cut_connection(tmp_path, server):
    server.cut_after = CUT
    dest = tmp_path / "KuaiRec.zip"
    fetch([server.url], dest)
    assert_verified(dest)
    assert server.ranges == [None, f"bytes={CUT}-"]


def test_resume_after_timeout(tmp_path, server):
    server.cut_after, server.stall = CUT, 2.0
    dest = tmp_path / "KuaiRec.zip"
    fetch([server.url], dest, timeout=0.5)
    assert_verified(dest)
    assert server.ranges == [None, f"bytes={CUT}-"]


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.cut_after, server.ignore_range = CUT, True
    dest = tmp_path / "KuaiRec.zip"
    fetch([server.url], dest)
    assert_verified(dest)
    assert server.ranges == [None, f"bytes={CUT}-"]


def test_retry_count_restarts_after_progress(tmp_path, server):
    # five cuts with retries=1: each attempt gets further, so the download still completes
    server.cut_after, server.cut_requests = 50_000, 5
    dest = tmp_path / "KuaiRec.zip"
    fetch([server.url], dest, retries=1)
    assert_verified(dest)
    assert server.ranges == [None] + [f"bytes={k * 50_000}-" for k in range(1, 6)]


def test_existing_part_file_is_resumed(tmp_path, server):
    dest = tmp_path / "KuaiRec.zip"
    part_of(dest).write_bytes(DATA[:123_457])
    fetch([server.url], dest)
    assert_verified(dest)
    assert server.ranges == ["bytes=123457-"]


def test_complete_part_file_needs_no_network(tmp_path):
    dest = tmp_path / "KuaiRec.zip"
    part_of(dest).write_bytes(DATA)
    fetch([closed_url()], dest)
    assert_verified(dest)


def test_md5_mismatch_deletes_download(tmp_path, server):
    dest = tmp_path / "KuaiRec.zip"
    with pytest.raises(InputError, match="md5") as err:
        fetch([server.url], dest, md5="0" * 32)
    assert server.url in str(err.value)
    assert not dest.exists() and not part_of(dest).exists()


def test_wrong_expected_size_stops_at_first_response(tmp_path, server):
    dest = tmp_path / "KuaiRec.zip"
    with pytest.raises(InputError, match=f"serves {SIZE} bytes.*expects {SIZE + 7}"):
        fetch([server.url], dest, size=SIZE + 7)
    assert len(server.requests) == 1
    assert not dest.exists() and not part_of(dest).exists()


def test_range_not_satisfiable_goes_to_verification(tmp_path, server):
    # the part holds the whole served file, but the config expects more: 416, then size check
    dest = tmp_path / "KuaiRec.zip"
    part_of(dest).write_bytes(DATA)
    with pytest.raises(InputError, match=f"size is {SIZE} bytes, expected {SIZE + 10}"):
        fetch([server.url], dest, size=SIZE + 10)
    assert server.ranges == [f"bytes={SIZE}-"]
    assert not dest.exists() and not part_of(dest).exists()


def test_404_moves_to_next_mirror(tmp_path, server):
    missing = server.url.replace("KuaiRec.zip", "gone/KuaiRec.zip")
    dest = tmp_path / "KuaiRec.zip"
    fetch([missing, server.url], dest)
    assert_verified(dest)
    assert server.requests == [("/gone/KuaiRec.zip", None), ("/KuaiRec.zip", None)]


def test_all_mirrors_failing_explains_what_to_do(tmp_path, server):
    missing, refused = server.url + ".old", closed_url()
    dest = tmp_path / "KuaiRec.zip"
    with pytest.raises(InputError) as err:
        fetch([missing, refused], dest, retries=1)
    msg = str(err.value)
    assert missing in msg and refused in msg and "HTTP 404" in msg
    assert "datasets.<name>.archive: /path/to/KuaiRec.zip" in msg
    assert "download.urls" in msg
    assert not dest.exists()


def test_failed_download_keeps_part_for_next_run(tmp_path):
    dest = tmp_path / "KuaiRec.zip"
    part_of(dest).write_bytes(DATA[:CUT])
    with pytest.raises(InputError, match="rerun resumes"):
        fetch([closed_url()], dest, retries=0)
    assert part_of(dest).read_bytes() == DATA[:CUT]
    assert not dest.exists()


def test_retries_are_bounded_with_exponential_backoff(tmp_path, server, monkeypatch):
    server.status = 500
    sleeps = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    with pytest.raises(InputError, match="HTTP 500"):
        fetch([server.url], tmp_path / "KuaiRec.zip", retries=3, backoff=0.5)
    assert len(server.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


# --- local archive --------------------------------------------------------------------------


def test_local_archive_is_verified_and_linked(tmp_path):
    local = tmp_path / "mine.zip"
    local.write_bytes(DATA)
    dest = tmp_path / "res" / "KuaiRec.zip"
    fetch([closed_url()], dest, local_path=local)
    assert_verified(dest)
    assert os.path.samefile(local, dest)
    assert [p.name for p in dest.parent.iterdir()] == ["KuaiRec.zip"]


def test_local_archive_is_copied_across_filesystems(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(download.os, "link", no_link)
    local = tmp_path / "mine.zip"
    local.write_bytes(DATA)
    dest = tmp_path / "KuaiRec.zip"
    fetch([], dest, local_path=local)
    assert_verified(dest)
    assert not os.path.samefile(local, dest)


def test_local_archive_with_wrong_size_is_refused(tmp_path):
    local = tmp_path / "mine.zip"
    local.write_bytes(DATA[:-1])
    dest = tmp_path / "KuaiRec.zip"
    with pytest.raises(InputError, match=rf"mine\.zip.*size is {SIZE - 1} bytes"):
        fetch([], dest, local_path=local)
    assert not dest.exists()


def test_missing_local_archive_is_named(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.zip not found.*archive"):
        fetch([], tmp_path / "KuaiRec.zip", local_path=tmp_path / "nowhere.zip")
