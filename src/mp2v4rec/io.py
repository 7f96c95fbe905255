"""File helpers shared by every stage: atomic writes and safe loads.

Every output is written to a temporary name in the destination folder and renamed into place,
so an interrupted job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

_UMASK = os.umask(0)
os.umask(_UMASK)


class InputError(ValueError):
    """Bad input data or configuration; the message says what, where and what to do."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or ".tmp" + path.suffix, dir=path.parent
    )
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


def script_logger(log_path: str | os.PathLike | None, name: str) -> logging.Logger:
    """A logger writing timestamped lines to a rule's log file (and stderr)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def count_rows(path: str | os.PathLike) -> int:
    """Number of rows of a parquet file, read from its metadata."""
    return pl.scan_parquet(path).select(pl.len()).collect().item()
