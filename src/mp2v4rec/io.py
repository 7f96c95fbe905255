"""File helpers shared by every stage: atomic writes and safe loads.

Every output is written to a temporary name in the destination folder and renamed into place,
so an interrupted job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import numbers
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

_UMASK = os.umask(0)
os.umask(_UMASK)


class InputError(ValueError):
    """Bad input data or configuration; the message says what, where and what to do."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) of at least ``minimum``; else an
    InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    A writer killed outright (SIGKILL, a node lost) cannot remove its temporary file; the next
    write of the same ``path`` removes such leftovers first. One job writes a given output at a
    time (Snakemake locks its outputs), so a leftover is never another writer's live file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", suffix or ".tmp" + path.suffix
    for stale in path.parent.glob(glob.escape(prefix) + "?" * 8 + glob.escape(suffix)):
        stale.unlink(missing_ok=True)  # mkstemp's names: prefix, 8 random characters, suffix
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def write_tsv(df: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.write_csv(tmp, separator="\t", float_precision=6)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an npz file; pickled objects are refused with an InputError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, zipfile.BadZipFile, EOFError, AttributeError) as exc:
        # object arrays and pickles: ValueError; a damaged zip: BadZipFile/EOFError;
        # a plain .npy (no archive, so no context manager): AttributeError
        raise InputError(
            f"{path}: cannot load its arrays ({exc}); stage files hold plain numeric npz "
            "arrays, never pickled objects: delete the file and rerun the stage that writes it"
        ) from exc


def run_rule(main: Callable[[Any], None], smk: Any) -> None:
    """Run a rule script's ``main(snakemake)`` with the project's logging.

    Every ``mp2v4rec`` logger (the library modules' and the scripts' ``mp2v4rec.rules``) writes
    timestamped lines to the rule's log file, the file Snakemake points at when a job fails
    (on a cluster the only one a user reads), and to stderr. Bad input (:class:`InputError`)
    is reported once, as its message alone (no traceback of the library error behind it), and
    the script exits 1; any other exception is a bug and keeps its traceback, in the log too.
    """
    logger = logging.getLogger("mp2v4rec")
    saved = logger.level, logger.propagate, list(logger.handlers)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in saved[2]:
        logger.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    log_path = smk.log[0] if len(smk.log) else None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    try:
        main(smk)
    except InputError as err:
        logger.error("%s", err)
        sys.exit(1)
    except Exception:
        logger.exception("unexpected error (a bug, not bad input; please report it with this log)")
        sys.exit(1)
    finally:  # as it was (a script runs once per process; tests call this repeatedly)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        for handler in saved[2]:
            logger.addHandler(handler)


def count_rows(path: str | os.PathLike) -> int:
    """Number of rows of a parquet file, read from its metadata."""
    return pl.scan_parquet(path).select(pl.len()).collect().item()
