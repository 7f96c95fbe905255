"""Shared pytest settings and fixtures."""

import importlib
import sys
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: starts a one-node SLURM cluster on this machine (root, apt-get)"
    )


@pytest.fixture
def no_proxy(monkeypatch):
    """Never route requests through a proxy from the environment (tests with a local server)."""
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture(scope="module")
def benchmark_import():
    """``importlib.import_module`` with ``benchmarks/`` on the path (its scripts by name)."""
    path = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, path)
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(path)
