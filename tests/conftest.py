"""Shared test setup: the repository root on sys.path and Hypothesis profiles.

``benchmarks/`` (the tutorial's own code) is not an installed package, so the repository root is
put on ``sys.path`` for ``from benchmarks.tutorial_code import ...``. Hypothesis gets a "ci"
profile (no deadline, derandomized so CI runs are reproducible), loaded when ``CI`` is set, and a
"dev" profile (no deadline: timing on a shared 2-core machine is noise, not a failure) otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
