"""Shared pytest settings and fixtures."""

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
