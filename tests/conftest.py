"""Shared test setup: the repository root on sys.path and Hypothesis profiles.

``benchmarks/`` (the tutorial's own code) is not an installed package, so the repository root is
put on ``sys.path`` for ``from benchmarks.tutorial_code import ...``, and ``tests/`` itself for
the plain helper modules there (``from _mnist import requires_mnist``, the real-MNIST skip
marker), also under ``--import-mode=importlib``. Hypothesis gets a "ci"
profile (no deadline, derandomized so CI runs are reproducible), loaded when ``CI`` is set, and a
"dev" profile (no deadline: timing on a shared 2-core machine is noise, not a failure) otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for path in (ROOT, TESTS):  # TESTS for the helper modules (``from _mnist import requires_mnist``)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
