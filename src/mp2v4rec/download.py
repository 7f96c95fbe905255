"""Download a dataset archive: mirrors, resume, bounded retries, size and MD5 verification.

The archive is streamed (stdlib urllib only) into ``<dest>.part`` and renamed to ``dest`` only
after its size and MD5 match, so ``dest`` is always a verified file. A failed run keeps the part
file and the next run resumes it with an HTTP Range request. A user without network can point
the config at an archive they downloaded themselves (``local_path``); it is verified the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mp2v4rec.io import InputError, atomic_path

log = logging.getLogger(__name__)

KUAIREC_URL = "https://zenodo.org/records/18164998/files/KuaiRec.zip"
KUAIREC_SIZE = 431964858
KUAIREC_MD5 = "261550d472c48eff4990fb13c0e5bcf7"

CHUNK_SIZE = 1 << 16  # bytes read from the network per call
PROGRESS_SECONDS = 5.0  # how often a running download logs its progress
USER_AGENT = "mp2v4rec-download/0.1 (python-urllib)"
_MB = 1e6
_MD5_RE = re.compile(r"[0-9a-f]{32}")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Truncated(ConnectionError):
    """The body ended before its announced length (or the server resumed at the wrong offset)."""


# Failures of the network or the server. Local file errors are turned into InputError where they
# happen (see _local_io), so every OSError that reaches the retry loop comes from the network.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


# --- verification -------------------------------------------------------------------------------


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(path: Path, size: int, md5: str) -> str | None:
    """How ``path`` differs from the expected size and MD5, or None when it matches."""
    actual = path.stat().st_size
    if actual != size:
        return f"size is {actual} bytes, expected {size} bytes"
    digest = md5sum(path)
    if digest != md5.lower():
        return f"md5 is {digest}, expected {md5.lower()}"
    return None


def verify_file(path: str | os.PathLike, size: int, md5: str) -> None:
    """Raise InputError unless ``path`` exists with exactly ``size`` bytes and MD5 ``md5``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: file not found (expected {size} bytes, md5 {md5}); check the path"
        )
    problem = _mismatch(path, size, md5)
    if problem:
        raise InputError(
            f"{path}: {problem}. The file is incomplete or not the expected archive: delete it "
            "and download it again, or, if it is the right file, check the size/md5 in the config."
        )


def _check_expected(size: int, md5: str) -> None:
    """Reject a malformed expected size/MD5 before any download starts."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(f"expected archive size must be a positive byte count, got {size!r}")
    if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5.lower()):
        raise InputError(f"expected archive md5 must be 32 hex digits, got {md5!r}")


# --- small helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _local_io(path: Path) -> Iterator[None]:
    """Turn a local file error (disk full, permissions) into an InputError naming the file."""
    try:
        yield
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc}; free disk space or fix permissions, then rerun"
        ) from exc


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _describe(exc: BaseException) -> str:
    """A one-line description of a network failure for logs and messages."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, _Truncated):
        return f"download cut: {exc}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, str):
            return exc.reason
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"


def _retryable(exc: BaseException) -> bool:
    """Transient failures are retried on the same URL; the rest move on to the next mirror."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    if isinstance(exc, urllib.error.URLError):  # wraps connect errors: refused, DNS, timeout
        reason = exc.reason
        return isinstance(reason, OSError) and not isinstance(reason, ssl.SSLCertVerificationError)
    return True  # reset, timeout, truncated body, IncompleteRead, ...


def _content_length(response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (TypeError, ValueError):
        return None


# --- one request ----------------------------------------------------------------------------


def _request(url: str, have: int) -> urllib.request.Request:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.Request(url, headers=headers)
    except ValueError as exc:  # not a URL: no point retrying it
        raise urllib.error.URLError(f"invalid URL: {exc}") from exc


def _body_start(response, have: int, size: int, url: str, part: Path) -> int:
    """Offset of the response body in the file; checks the total size the server announces."""
    if response.status == 206:
        match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", "").strip())
        if not match or int(match[1]) != have:
            part.unlink(missing_ok=True)
            raise _Truncated(f"server resumed at the wrong offset (asked for {have}); restarting")
        start, total = have, None if match[3] == "*" else int(match[3])
    else:  # 200: the whole file, whether or not we asked for a range
        start, total = 0, _content_length(response)
    if total is not None and total != size:
        part.unlink(missing_ok=True)
        raise InputError(
            f"{url} serves {total} bytes but the config expects {size} bytes: the URL does not "
            "point to the expected archive (maybe a web page or another version). Check the URL "
            "list `datasets.<name>.download.urls` and the expected size/md5 in the config."
        )
    return start


def _log_progress(part: Path, have: int, size: int, got: int, seconds: float) -> None:
    rate = got / _MB / max(seconds, 1e-6)
    log.info(
        "%s: %.1f of %.1f MB (%.0f%%), %.2f MB/s",
        part.name,
        have / _MB,
        size / _MB,
        100.0 * have / size,
        rate,
    )


def _save_body(response, part: Path, start: int, size: int) -> None:
    """Write the body to the part file at ``start``; raise _Truncated if it ends early."""
    length = _content_length(response)
    end = start + length if length is not None else size
    have = start
    t0 = last = time.monotonic()
    with _local_io(part):
        fh = open(part, "ab" if start else "wb")
    try:
        while chunk := response.read1(CHUNK_SIZE):  # read1: a timeout loses no received bytes
            with _local_io(part):
                fh.write(chunk)
            have += len(chunk)
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                _log_progress(part, have, size, have - start, last - t0)
            if have > size:  # no length announced and the server sends too much
                break
        with _local_io(part):
            fh.flush()
    finally:
        fh.close()
    _log_progress(part, have, size, have - start, time.monotonic() - t0)
    if have < end:
        raise _Truncated(f"connection closed after {have} of {end} bytes")


def _attempt(url: str, part: Path, size: int, timeout: float) -> None:
    """One request: append to (206) or rewrite (200) the part file; 416 leaves it to verify."""
    have = _size_of(part)
    if have:
        log.info("resuming %s at byte %d", url, have)
    try:
        response = urllib.request.urlopen(_request(url, have), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # nothing after our offset: complete, or not our file
            log.info("%s: HTTP 416 at byte %d, verifying what we have", url, have)
            return
        raise
    with response:
        start = _body_start(response, have, size, url, part)
        _save_body(response, part, start, size)


# --- one URL, many attempts -----------------------------------------------------------------


def _fetch_url(url: str, part: Path, size: int, retries: int, timeout: float, backoff):
    """Fill the part file from ``url``, retrying transient errors; raise the last failure."""
    failed = 0
    log.info("downloading %s -> %s", url, part)
    while _size_of(part) < size:
        before = _size_of(part)
        try:
            _attempt(url, part, size, timeout)
            return
        except _NETWORK_ERRORS as exc:
            if _size_of(part) > before:
                failed = 0  # it made progress: count failures afresh
            if not _retryable(exc) or failed >= retries:
                raise
            delay = backoff * 2**failed
            failed += 1
            log.warning(
                "%s: %s; retry %d of %d in %.1f s",
                url,
                _describe(exc),
                failed,
                retries,
                delay,
            )
            time.sleep(delay)


def _finish(part: Path, dest: Path, size: int, md5: str, url: str) -> None:
    """Verify the finished part file and rename it to ``dest``, or delete it and raise."""
    problem = _mismatch(part, size, md5)
    if problem:
        part.unlink(missing_ok=True)
        raise InputError(
            f"{dest.name} downloaded from {url} is not the expected archive: {problem}. "
            "The download was deleted; rerun to fetch it again. If this repeats, the file at the "
            "URL has changed or the expected size/md5 in the config is wrong."
        )
    os.replace(part, dest)
    log.info("%s verified (%d bytes, md5 %s)", dest, size, md5)


def _all_failed(
    dest: Path, part: Path, failures: list[tuple[str, BaseException]], retries: int
) -> str:
    lines = [
        f"could not download {dest.name} from any configured URL (transient errors were "
        f"retried {retries} times per URL):"
    ]
    lines += [f"  {url}: {_describe(exc)}" for url, exc in failures]
    lines.append(
        f"No network? Download {dest.name} yourself (from a URL above) and set "
        f"`datasets.<name>.archive: /path/to/{dest.name}` in the config (it will be verified "
        "against the expected size and md5). Otherwise check the URL list "
        "`datasets.<name>.download.urls`."
    )
    if part.exists():
        lines.append(
            f"The partial download {part} ({_size_of(part)} bytes) is kept; a rerun resumes it."
        )
    return "\n".join(lines)


# --- local archive --------------------------------------------------------------------------


def _place_local(src: Path, dest: Path, size: int, md5: str) -> None:
    """Verify a user-supplied archive, then hard-link (or copy) it to ``dest`` atomically."""
    if not src.is_file():
        raise InputError(
            f"local archive {src} not found (config key `datasets.<name>.archive`); fix the path, "
            f"or remove the key to download {dest.name} from the configured URLs"
        )
    problem = _mismatch(src, size, md5)
    if problem:
        raise InputError(
            f"local archive {src} (config key `datasets.<name>.archive`) is not the expected "
            f"archive: {problem}. Download {dest.name} again (the copy may be incomplete) or "
            "point the key to the right file."
        )
    with atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:  # another filesystem, or no hard links
            with _local_io(tmp):
                shutil.copyfile(src, tmp)
            how = "copied"
    log.info("%s verified and %s to %s", src, how, dest)


# --- entry point ----------------------------------------------------------------------------


def fetch_archive(
    urls: list[str],
    dest: str | os.PathLike,
    size: int,
    md5: str,
    *,
    local_path: str | os.PathLike | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> None:
    """Put the archive at ``dest`` with exactly ``size`` bytes and MD5 ``md5``, or raise InputError.

    With ``local_path`` the user's copy is verified and linked/copied; otherwise each URL (mirror)
    is tried in turn, resuming ``dest.part``; transient errors are retried ``retries`` times with
    exponential backoff (``backoff * 2**attempt`` seconds), HTTP 4xx moves to the next mirror.
    """
    _check_expected(size, md5)
    md5 = md5.lower()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if local_path is not None:
        _place_local(Path(local_path), dest, size, md5)
        return
    part = dest.with_name(dest.name + ".part")
    failures: list[tuple[str, BaseException]] = []
    for url in urls:
        try:
            _fetch_url(url, part, size, retries, timeout, backoff)
        except _NETWORK_ERRORS as exc:
            log.warning("giving up on %s: %s", url, _describe(exc))
            failures.append((url, exc))
            continue
        _finish(part, dest, size, md5, url)
        return
    if not failures:
        raise InputError(
            f"no URL to download {dest.name} from: set `datasets.<name>.download.urls`, or "
            f"`datasets.<name>.archive: /path/to/{dest.name}` in the config"
        )
    raise InputError(_all_failed(dest, part, failures, retries))
