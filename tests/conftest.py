"""Shared test setup: the repository root and tests/ on sys.path, and Hypothesis profiles.

The folders mirror the package: tests/layers, tests/optim, tests/io and tests/recipes test
purenn.layers, purenn.optim, purenn.io and purenn.recipes, tests/cli the `purenn` command
(``purenn_cli``); the top level tests the top-level modules (tree, losses, training, the gradient
registry over every layer and loss) and the package as a whole. There are no ``__init__.py``
files, so test file basenames must be unique across folders.

``benchmarks/`` (the tutorial's own code) is not an installed package, so the repository root is
put on ``sys.path`` for ``from benchmarks.tutorial_code import ...``, and ``tests/`` itself for
the plain helper modules kept there because tests in several folders use them (``from _mnist
import requires_mnist``, the real-MNIST skip marker; the registries of every layer, loss and
optimizer, ``registry_layers``, ``registry_losses``, ``registry_optim``, and the strategies they
draw from, ``layer_strategies*``), also under ``--import-mode=importlib``. Hypothesis gets a
"ci" profile (no deadline, derandomized so CI runs are reproducible), loaded when ``CI`` is set,
and a "dev" profile (no deadline: timing on a shared 2-core machine is noise, not a failure)
otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for path in (ROOT, TESTS):  # TESTS for the shared helpers (_mnist.py, the registries)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
