"""Running many independent tasks (one per seed): in this process, in local worker processes, or
on a Dask cluster, with progress reports and nothing silently dropped.

A task is a picklable function ``fn(arg, report) -> result`` (see :mod:`purenn.experiments.tasks`);
``report(event, **data)`` sends progress (``"start"``, ``"step"``, ``"epoch"``) to the caller's
``on_event(key, event, data)``, from whichever process runs the task. :func:`run_all` returns one
:class:`Outcome` per key, in the keys' order: ``"ok"`` with the result, or ``"failed"`` with the
error; ``on_outcome(outcome)`` hears of each as it ends (in the calling thread: an experiment
writes its record there). A run whose worker process died is started again; ``attempts`` says how
many times it started.

Any executor the caller passes (``executor=``) runs the tasks too: an object whose
``submit(fn, *args)`` returns something with ``result()`` (a ``concurrent.futures`` pool, Dask's
``Client.get_executor()``, submitit's executor for Slurm, whose jobs are not
``concurrent.futures.Future`` s: any with ``done()`` is polled every :data:`POLL_SECONDS`, any
other waited for in turn). Its workers send no progress (purenn cannot reach into them); a run
whose worker died is reported failed with the executor's error, never dropped, and an
interrupted experiment cancels what the executor has not finished.

Local workers are the standard library's process pool with the ``spawn`` start method (a fresh
interpreter per worker: nothing inherited from the parent's threads, and no dependency beyond
Python); progress travels through a multiprocessing manager's queue (a dying worker cannot
leave it locked); a worker that dies breaks the pool, so the runs it had not finished go to a new pool
once more and are reported failed if that breaks too. The workers and the manager watch the
process that started them and exit by themselves when it is gone (killed outright, say), so none
is left running for nobody.

On Dask the scheduler itself moves a dead worker's task elsewhere
(``distributed.scheduler.allowed-failures`` times) and then reports ``KilledWorker``, which is
recorded as a failure. Before connecting, the address is asked, within :data:`CONNECT_SECONDS`,
whether it is a Dask scheduler at all: a service that accepts the connection and then says
nothing, or says something else, is refused rather than waited for forever.

This module chooses where the tasks go and runs them in this process itself; the other places are
in :mod:`purenn.experiments.executors`, and what a task reports back (its :class:`Outcome`, the
``report`` it gets) in :mod:`purenn.experiments.reporting`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from purenn.errors import ArgumentError
from purenn.experiments.executors import CONNECT_SECONDS, POLL_SECONDS, in_processes, on_dask, on_executor
from purenn.experiments.reporting import (
    IN_WORKER,  # noqa: F401 - importable from here, as before the split
    PARENT_CHECK_SECONDS,
    Direct,
    Done,
    Event,
    Outcome,
    Reporter,
    Tracker,
    failed,
    finished,
    remote_error,
    timed,
    watch_parent,  # noqa: F401 - importable from here, as before the split
)

__all__ = [
    "CONNECT_SECONDS", "PARENT_CHECK_SECONDS", "POLL_SECONDS", "Outcome", "Reporter",
    "check_where", "default_jobs", "describe_executor", "run_all",
]


def default_jobs(n_tasks: int) -> int:
    """One job per core this process may use, and no more than there are tasks."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, n_tasks))


def run_all(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], *, jobs: int = 1,
            scheduler: str | None = None, executor: Any = None, on_event: Event | None = None,
            on_outcome: Done | None = None) -> list[Outcome]:
    """Run ``fn(args[key], report)`` for every key; return the outcomes in the keys' order.

    ``jobs=1`` without ``scheduler`` runs them one after the other in this process; ``jobs > 1``
    in that many local worker processes; ``scheduler="tcp://host:port"`` on a running Dask
    cluster (needs ``pip install "purenn[distributed]"``); ``executor``: on the caller's executor
    (see the module's docstring). ``on_outcome`` is called with each outcome as it ends.
    """
    check_where(jobs, scheduler, executor)
    tracker = Tracker(args, on_event or (lambda key, event, data: None), on_outcome)
    if executor is not None:
        on_executor(fn, args, executor, tracker)
    elif scheduler is not None:
        on_dask(fn, args, scheduler, tracker)
    elif jobs == 1:
        _serial(fn, args, tracker)
    else:
        in_processes(fn, args, jobs, tracker)
    return [tracker.out[key] for key in args]


def check_where(jobs: Any, scheduler: Any, executor: Any) -> None:
    """An :class:`~purenn.errors.ArgumentError` unless the runs can go where these say."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ArgumentError(f"`jobs` must be a positive integer, got {jobs!r}")
    if executor is not None and scheduler is not None:
        raise ArgumentError("give either `executor` or `scheduler`, not both: the runs go to one place")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ArgumentError(f"`scheduler` must be a Dask scheduler's address (tcp://HOST:PORT), got {scheduler!r:.80}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ArgumentError(f"`executor` must have a submit(fn, *args) method returning something with "
                            f"result(), got {type(executor).__name__}")


def describe_executor(executor: Any) -> str:
    """A caller's executor as an experiment record names it: its class, with its module."""
    cls = type(executor)
    return f"{cls.__module__}.{cls.__qualname__}"


def _serial(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], tracker: Tracker) -> None:
    channel = Direct(tracker.on_event)
    for key, arg in args.items():
        try:
            value, seconds = timed(fn, arg, Reporter(channel, key))
            outcome = finished(key, value, seconds)
        except Exception as e:  # noqa: BLE001 - one run's failure is recorded, the others go on
            outcome = failed(key, remote_error(e))
        tracker.finish(outcome)
