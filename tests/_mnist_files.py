"""A small, learnable stand-in for MNIST in its IDX files, for tests that run the real loaders:
``from _mnist_files import write_tiny_mnist``. Each class is a bright horizontal band plus noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root: Path, *, train: int = 300, test: int = 100, seed: int = 0) -> Path:
    """The four files of a dataset of ``train`` and ``test`` 28x28 images in ``root``; returns it."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root
