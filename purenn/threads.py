"""Element-wise work on several cores, as many as the BLAS may use.

NumPy runs a matrix product on the BLAS's threads but every element-wise operation and copy on
one core. The layers and Adam split their large element-wise work (pooling, patch matrices,
scattered adds, the update of large parameter arrays) into slices of the batch or of the array,
and :func:`for_slices` runs those slices on up to as many threads as the BLAS may use at that
moment. So the one limit that already governs the BLAS (``OPENBLAS_NUM_THREADS``,
``threadpoolctl.threadpool_limits``, ``purenn mnist --threads``) governs this work too: with one
BLAS thread everything runs in the calling thread, as before.

Results do not depend on the number of threads: each slice computes its elements exactly as a
single pass over the whole array would (no sums across slices), so a run is bit-identical with
any thread count, here as in the layers' single-threaded code. NumPy releases the GIL inside its
loops, so the threads run in parallel.
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["for_slices", "threads_available", "slices", "CHUNK_BYTES", "PARALLEL_BYTES"]

# The layers' defaults: large arrays are worked a slice of about CHUNK_BYTES at a time (so that a
# slice's several passes reread it from the CPU's cache rather than main memory), and the slices
# go to several threads once the data is PARALLEL_BYTES or more (below that, waking a thread
# costs more than it saves).
CHUNK_BYTES = 1 << 19
PARALLEL_BYTES = 1 << 20

_lock = threading.Lock()
_local = threading.local()  # .inside: this thread is one of the pool's
_pool: ThreadPoolExecutor | None = None
_blas: Any = None  # threadpoolctl's controller of the BLAS NumPy uses (None: not looked up yet)
_NO_BLAS = object()


def threads_available() -> int:
    """How many threads element-wise work may use now: the BLAS's current thread limit; 1 when
    the BLAS cannot say (or inside one of our own threads)."""
    global _blas
    if getattr(_local, "inside", False):
        return 1
    if _blas is None:
        _blas = _find_blas()
    if _blas is _NO_BLAS:
        return 1
    try:
        n = int(_blas.num_threads)
    except Exception:  # a BLAS that cannot report its threads: stay on one
        return 1
    return max(1, n)


def _find_blas() -> Any:
    import numpy  # noqa: F401  # threadpoolctl finds the BLAS among the loaded libraries
    from threadpoolctl import ThreadpoolController

    controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return controllers[0] if controllers else _NO_BLAS


def slices(n: int, item_bytes: int, chunk_bytes: int) -> list[slice]:
    """Slices covering ``range(n)``, each about ``chunk_bytes`` of items of ``item_bytes``."""
    rows = max(1, chunk_bytes // max(item_bytes, 1))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def for_slices(work: Callable[[slice], None], parts: list[slice], min_bytes: int, nbytes: int) -> None:
    """Call ``work(part)`` for every slice in ``parts``: in this thread when ``nbytes`` (the data
    the work touches) is below ``min_bytes`` or only one thread is available, otherwise the
    slices are dealt out in contiguous runs, one per thread (this thread takes the first)."""
    threads = 1 if nbytes < min_bytes or len(parts) < 2 else min(threads_available(), len(parts))
    if threads == 1:
        for part in parts:
            work(part)
        return
    per = -(-len(parts) // threads)
    runs = [parts[i : i + per] for i in range(0, len(parts), per)]
    futures: list[Future] = [_executor().submit(_run, work, run) for run in runs[1:]]
    try:
        for part in runs[0]:
            work(part)
    finally:
        for f in futures:
            f.result()  # waits; re-raises a worker's exception


def _run(work: Callable[[slice], None], run: list[slice]) -> None:
    _local.inside = True  # work started here never fans out again
    try:
        for part in run:
            work(part)
    finally:
        _local.inside = False


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # threads start on demand: at most one fewer than the most slices ever dealt out
            _pool = ThreadPoolExecutor(thread_name_prefix="purenn")
            atexit.register(_pool.shutdown, wait=False)
        return _pool
