"""One way to run Snakemake from the tests: this checkout's Snakefile in a work directory."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake_cmd(workdir, *args) -> list[str]:
    snakefile = str(ROOT / "Snakefile")
    return [sys.executable, "-m", "snakemake", "-s", snakefile, "--directory", str(workdir), *args]


def snakemake(workdir, *args, check=True, env=None, timeout=None) -> subprocess.CompletedProcess:
    """Run ``snakemake args`` in ``workdir``; with ``check`` a failure (or a timeout) raises an
    AssertionError holding the ends of stdout and stderr."""
    cmd = snakemake_cmd(workdir, *args)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"")[-3000:]
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout} s:\n{out}") from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc
