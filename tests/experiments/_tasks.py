"""Tasks for the runner's tests, importable by spawned worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def square(arg: int, report: Any) -> int:
    report("step", done=1, total=1)
    return arg * arg


def fails_for_three(arg: int, report: Any) -> int:
    if arg == 3:
        raise ValueError("three is not allowed")
    return arg


def dies_once(arg: tuple[int, str], report: Any) -> int:
    """The first run of seed 1 kills its worker process; later runs finish."""
    seed, marker = arg
    if seed == 1 and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    time.sleep(0.05)
    return seed


def always_dies(arg: int, report: Any) -> int:
    if arg == 1:
        os._exit(1)
    time.sleep(0.2)
    return arg
