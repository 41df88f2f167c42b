"""Fixtures of the command-line tests: a small learnable stand-in for MNIST in IDX files, and no
network (a test must never download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import purenn.io.datasets


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A learnable stand-in for MNIST: each class is a bright horizontal band plus noise."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
        return images, labels

    for prefix, n in (("train", 300), ("t10k", 100)):
        images, labels = split(n)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(purenn.io.datasets, "_urlopen", refuse)
