"""Every ```console block of the README is run against the demo's results and must print what
the README shows (whitespace normalised), so the documentation cannot go stale. The demo is
byte-reproducible (one gensim worker, one BLAS thread per job); the fixture brings
results/ up to date with `snakemake all --configfile configs/demo.yaml` (nothing to do after
`make demo`)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def console_examples(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for every `$ ` line of every console block."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            examples.append((command, "\n".join(output)))
    return examples


def normalise(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip()]


EXAMPLES = console_examples((ROOT / "README.md").read_text())


def test_the_readme_has_console_examples():
    assert len(EXAMPLES) >= 4 and all(cmd.startswith("mp2v4rec ") for cmd, _ in EXAMPLES)


@pytest.fixture(scope="module")
def demo_results():
    cmd = [sys.executable, "-m", "snakemake", "all", "--cores", "all"]
    cmd += ["--configfile", "configs/demo.yaml", "--quiet", "rules"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ROOT


@pytest.mark.slow
@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(demo_results, command, expected):
    argv = shlex.split(command)
    env = dict(os.environ, COLUMNS="100")
    proc = subprocess.run(
        [sys.executable, "-m", "mp2v4rec.cli", *argv[1:]],
        cwd=demo_results,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert normalise(proc.stdout + proc.stderr) == normalise(expected), proc.stdout + proc.stderr
