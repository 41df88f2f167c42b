"""The one skip marker for tests that need the real MNIST files: ``from _mnist import requires_mnist``.

A plain helper module (pytest's conftest modules are not meant to be imported); ``tests/`` is on
``sys.path`` (tests/conftest.py puts it there, whatever pytest's import mode).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from purenn.io.datasets import FILES, search_dirs


def real_mnist_root() -> Path | None:
    """``$PURENN_DATA`` when it holds all four MNIST files (in its ``mnist/`` folder or in it,
    gzipped or not, as :func:`purenn.load_mnist` looks for them); otherwise None."""
    root = os.environ.get("PURENN_DATA")
    if not root:
        return None
    for folder in search_dirs("mnist", root):
        if all((folder / name).is_file() or (folder / name.removesuffix(".gz")).is_file()
               for name in FILES.values()):
            return Path(root)
    return None


requires_mnist = pytest.mark.skipif(
    real_mnist_root() is None,
    reason="real MNIST: set PURENN_DATA to a folder holding mnist/*.gz",
)
