"""The machine a run depends on: BLAS library, version and threads, CPU model, versions.

Matrix products give bit-different results with another BLAS, kernel or thread count (OpenBLAS
splits sums differently across threads), so runs record these facts and set the thread count
explicitly, through ``threadpoolctl`` (what scikit-learn uses), never through environment
variables, which are read only once, when NumPy loads its BLAS.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from purenn.validation import check, thread_count

__all__ = ["blas_info", "blas_threads", "blas_thread_limit", "cpu_model", "fingerprint"]


def blas_info() -> dict[str, Any]:
    """The BLAS NumPy uses: ``{"library": "openblas", "version": "0.3.27", "threads": 2,
    "architecture": "SkylakeX"}`` (empty values when threadpoolctl cannot see one)."""
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return {"library": info.get("internal_api", ""), "version": info.get("version") or "",
                    "threads": int(info.get("num_threads", 0)),
                    "architecture": info.get("architecture") or ""}
    return {"library": "", "version": "", "threads": 0, "architecture": ""}


def blas_threads() -> int:
    """How many threads the BLAS uses now (0 if unknown)."""
    return int(blas_info()["threads"])


@contextlib.contextmanager
def blas_thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with the BLAS limited to ``threads`` threads (``None``: as it is)."""
    if threads is None:
        yield
        return
    check("threads", threads, thread_count)
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint() -> dict[str, Any]:
    """Everything above in one flat record, with the Python and NumPy versions and platform."""
    blas = blas_info()
    return {
        "python": platform.python_version(), "numpy": np.__version__,
        "platform": platform.platform(), "cpu": cpu_model(),
        "blas": blas["library"], "blas_version": blas["version"],
        "blas_architecture": blas["architecture"], "blas_threads": blas["threads"],
    }
