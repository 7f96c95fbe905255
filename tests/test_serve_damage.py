"""A damaged serving folder: every command answers with one line naming the damaged file and
how to rebuild it, exits non-zero, and never prints a traceback."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_cli import results, run_cli  # noqa: F401 - the fixture builds the results folder

# command line (after the results folder), and the files each command reads
COMMANDS = {
    "similar": (["--method", "ann", "--item", "700"], ["meta", "neighbours", "items"]),
    "recommend": (["--method", "ann", "--user", "100"], ["meta", "user_recs", "users"]),
    "playlist": (["--method", "ann", "--seed-items", "700,703"], ["meta", "item_vectors", "index"]),
}
FILES = {
    "meta": "serve/ann/serve.json",
    "neighbours": "serve/ann/item_neighbours.parquet",
    "user_recs": "serve/ann/user_recs.parquet",
    "item_vectors": "serve/ann/item_vectors.parquet",
    "index": "serve/ann/ann.faiss",
    "items": "data/items.parquet",
    "users": "data/users.parquet",
}


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def garble(data: bytes) -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, len(data) // 2, dtype=np.uint8).tobytes()
    start = len(data) // 4
    return data[:start] + noise + data[start + len(noise) :]


CASES = [
    (command, key, damage)
    for command, (_, keys) in COMMANDS.items()
    for key in keys
    for damage in (truncate, garble, None)  # None: the file is missing
]


@pytest.mark.parametrize(
    "command, key, damage",
    CASES,
    ids=[f"{c}-{k}-{d.__name__ if d else 'missing'}" for c, k, d in CASES],
)
def test_damaged_artefact_gives_one_line(results, tmp_path, command, key, damage):  # noqa: F811
    copy = tmp_path / "tiny"
    shutil.copytree(results[0], copy)
    path = copy / FILES[key]
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))
    args, _ = COMMANDS[command]
    proc = run_cli(command, copy, *args)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    if key == "meta" and damage is None:  # no serve.json: the method is not served at all
        assert "'ann' is not served" in lines[0] and "snakemake" not in lines[0]
        return
    assert FILES[key].split("/")[-1] in lines[0], lines[0]
    assert "snakemake" in lines[0], lines[0]  # how to rebuild it
