"""Fixtures of the command-line tests: a small learnable stand-in for MNIST in IDX files, and no
network (a test must never download)."""

from __future__ import annotations

from pathlib import Path

import pytest

import purenn.io.datasets
from _mnist_files import write_tiny_mnist


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A learnable stand-in for MNIST: each class is a bright horizontal band plus noise."""
    return write_tiny_mnist(tmp_path_factory.mktemp("data"), train=300, test=100, seed=0)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(purenn.io.datasets, "_urlopen", refuse)
