"""Shared pytest settings."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: starts a one-node SLURM cluster on this machine (root, apt-get)"
    )
