"""Where tasks run besides this process (see :mod:`purenn.experiments.runner`): a pool of local
worker processes, the caller's executor, a Dask cluster. Each takes the task function, its
arguments by key and the :class:`~purenn.experiments.reporting.Tracker` it tells of each
outcome."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.managers
import os
import queue as queue_module
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from purenn.errors import ArgumentError
from purenn.experiments.reporting import (
    IN_WORKER, Event, Outcome, Reporter, Tracker, failed, finished, remote_error, start_worker,
    timed, watch_parent,
)

__all__ = ["CONNECT_SECONDS", "POLL_SECONDS"]

#: The longest wait, in seconds, for a Dask scheduler to accept a connection and answer who it is
#: (a scheduler on a local network answers in milliseconds; one under load in well under this).
CONNECT_SECONDS = 10.0


#: How often, in seconds, the jobs of a caller's executor whose handles are not
#: ``concurrent.futures.Future`` s (submitit's) are asked whether they are done.
POLL_SECONDS = 0.2


# --- local worker processes -------------------------------------------------------------------


def listen(channel: Any, on_event: Event, stop: threading.Event) -> threading.Thread:
    """A thread passing the channel's messages to ``on_event`` until ``stop`` is set and the
    channel is drained."""

    def loop() -> None:
        while True:
            try:
                key, event, data = channel.get(timeout=0.05)
            except (queue_module.Empty, TimeoutError, EOFError, OSError):
                if stop.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - a closed channel at shutdown (Dask's, a manager's)
                if stop.is_set():
                    return
                continue
            on_event(key, event, data)

    thread = threading.Thread(target=loop, daemon=True, name="purenn-progress")
    thread.start()
    return thread


def in_processes(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], jobs: int,
                  tracker: Tracker) -> None:
    """A pool of ``jobs`` workers; the runs a dying worker took down go again, each in a pool of
    its own, so that only a run that kills its worker twice is reported failed."""
    context = multiprocessing.get_context("spawn")
    # a manager's queue, not a multiprocessing.Queue: a worker that dies while writing to a
    # shared pipe would leave its lock held and every other worker waiting forever
    manager = multiprocessing.managers.SyncManager(ctx=context)
    manager.start(watch_parent, (os.getpid(),))
    channel = manager.Queue()
    stop = threading.Event()
    listener = listen(channel, tracker.on_event, stop)
    try:
        broken = _pool_round(fn, args, min(jobs, len(args)), 1, context, channel, tracker)
        for key, arg in broken.items():  # one at a time: a crash takes down no other run
            for again in _pool_round(fn, {key: arg}, 1, 2, context, channel, tracker):
                tracker.finish(attrs.evolve(
                    failed(again, "its worker process died twice (killed, or out of memory?)"), attempts=2))
    finally:
        stop.set()
        listener.join()
        manager.shutdown()


def _pool_round(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], workers: int, attempt: int,
                context: Any, channel: Any, tracker: Tracker) -> dict[Any, Any]:
    """Run ``args`` in one pool, telling ``tracker`` of the finished and failed runs as each
    ends; return the runs its dying workers took down. Interrupted (Ctrl-C, SIGTERM turned into
    KeyboardInterrupt), it cancels what has not started and stops the workers."""
    broken: dict[Any, Any] = {}
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=start_worker, initargs=(channel, os.getpid()))
    try:
        futures = {pool.submit(timed, fn, arg, Reporter(IN_WORKER, key)): key for key, arg in args.items()}
        for future in concurrent.futures.as_completed(futures):
            key = futures[future]
            try:
                value, seconds = future.result()
                outcome = finished(key, value, seconds)
            except concurrent.futures.process.BrokenProcessPool:
                broken[key] = args[key]
                continue
            except Exception as e:  # noqa: BLE001 - the task's own error, recorded
                outcome = failed(key, remote_error(e))
            tracker.finish(attrs.evolve(outcome, attempts=attempt))
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return broken


# --- the caller's executor -------------------------------------------------------------------


def on_executor(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], executor: Any,
                 tracker: Tracker) -> None:
    """Every task submitted to the caller's ``executor``, each outcome taken as it is done;
    interrupted, whatever is not done is cancelled."""
    pending: dict[Any, Any] = {}
    try:
        for key, arg in args.items():
            pending[key] = executor.submit(timed, fn, arg, Reporter(None, key))
        while pending:
            for key in _done(pending):
                tracker.finish(_result(key, pending.pop(key)))
    except BaseException:
        for handle in pending.values():
            with contextlib.suppress(Exception):  # a job already ended, an executor shut down
                handle.cancel()
        raise


def _done(pending: dict[Any, Any]) -> list[Any]:
    """Some keys of ``pending`` whose jobs are done (waiting for one at least): a
    ``concurrent.futures`` wait, else a poll of ``done()``, else the first job, waited for."""
    handles = list(pending.values())
    if all(isinstance(h, concurrent.futures.Future) for h in handles):
        done, _ = concurrent.futures.wait(handles, timeout=POLL_SECONDS,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        return [k for k, h in pending.items() if h in done]
    if all(callable(getattr(h, "done", None)) for h in handles):
        ready = [k for k, h in pending.items() if h.done()]
        if not ready:
            time.sleep(POLL_SECONDS)
        return ready
    return [next(iter(pending))]


def _result(key: Any, handle: Any) -> Outcome:
    """The outcome of a caller's executor's job: its value, or its error (a dead worker's
    broken pool, Dask's KilledWorker, submitit's failed job) as the reason it failed."""
    try:
        value, seconds = handle.result()
    except concurrent.futures.process.BrokenProcessPool as e:
        return failed(key, f"its worker process died, which broke the executor's pool ({e}); run "
                            "what is missing again, with a new pool")
    except Exception as e:  # noqa: BLE001 - the task's or the executor's error, recorded
        return failed(key, remote_error(e))
    return finished(key, value, seconds)


# --- a Dask cluster --------------------------------------------------------------------------


class _DaskChannel:
    """A Dask queue known by its name: a task opens it through its own worker's client (a queue
    object pickled from the client would carry the client's address, which a worker cannot
    always reach)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self._queue = state["name"], None

    def put(self, message: Any) -> None:
        if self._queue is None:
            import distributed

            self._queue = distributed.Queue(self.name, client=distributed.get_client())
        self._queue.put(message)


def _listen_batches(channel: Any, on_event: Event, stop: threading.Event) -> threading.Thread:
    """Like :func:`listen` for a Dask queue, polled for all waiting messages at once (a get
    that times out is logged as an error by the scheduler)."""

    def loop() -> None:
        while True:
            try:
                messages = channel.get(batch=True)
            except Exception:  # noqa: BLE001 - the client closing at shutdown
                messages = []
            for key, event, data in messages:
                on_event(key, event, data)
            if not messages:
                if stop.is_set():
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True, name="purenn-progress")
    thread.start()
    return thread


def on_dask(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], scheduler: str,
             tracker: Tracker) -> None:
    try:
        import distributed
    except ImportError:
        raise ArgumentError(
            "running on a Dask cluster needs the `distributed` package: pip install \"purenn[distributed]\""
        ) from None
    import uuid

    _check_scheduler(scheduler)
    try:
        client = distributed.Client(scheduler, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError, ValueError) as e:
        raise ArgumentError(f"cannot reach the Dask scheduler at {scheduler!r} ({e}); is it running?") from None
    with client:
        name = f"purenn-progress-{uuid.uuid4().hex}"
        channel = distributed.Queue(name, client=client)
        stop = threading.Event()
        listener = _listen_batches(channel, tracker.on_event, stop)
        futures = {client.submit(timed, fn, arg, Reporter(_DaskChannel(name), key), pure=False,
                                 key=f"purenn-{key}-{uuid.uuid4().hex[:8]}"): key
                   for key, arg in args.items()}
        for future in distributed.as_completed(list(futures)):
            key = futures[future]
            try:
                value, seconds = future.result()
                outcome = finished(key, value, seconds)
            except distributed.KilledWorker as e:
                outcome = failed(key, f"the workers running it died too often (KilledWorker: {e})")
            except Exception as e:  # noqa: BLE001 - the task's own error, recorded
                outcome = failed(key, remote_error(e))
            tracker.finish(outcome)
        time.sleep(0.1)  # let the last progress messages arrive
        stop.set()
        listener.join()


def _check_scheduler(address: str) -> None:
    """An :class:`ArgumentError` unless a Dask scheduler at ``address`` accepts a connection and
    says who it is within :data:`CONNECT_SECONDS` (Dask's own connect timeout does not cover
    the handshake after the TCP connection: a service that never speaks would hold it forever)."""
    import asyncio  # here: only a Dask scheduler's check needs it

    try:  # in a thread of its own: the caller may be inside an event loop already (Jupyter)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="purenn-dask-check") as thread:
            identity = thread.submit(asyncio.run, asyncio.wait_for(_identity(address), CONNECT_SECONDS)).result()
    except (asyncio.TimeoutError, TimeoutError):
        raise ArgumentError(
            f"the Dask scheduler at {address!r} did not answer within {CONNECT_SECONDS:g} s; is "
            "that the scheduler's address (tcp://HOST:PORT), and is it running?") from None
    except (OSError, ValueError) as e:
        raise ArgumentError(f"cannot reach the Dask scheduler at {address!r} ({e}); is it running?") from None
    except Exception as e:  # noqa: BLE001 - whatever a stranger sends: garbage, a huge length
        raise ArgumentError(f"{address!r} is not a Dask scheduler: it does not answer as one "
                            f"({type(e).__name__}); check the address and port") from None
    if not (isinstance(identity, dict) and identity.get("type") == "Scheduler"):
        raise ArgumentError(f"{address!r} is not a Dask scheduler: asked who it is, it answered "
                            f"{identity!r:.80}; check the address and port")


async def _identity(address: str) -> Any:
    """What the service at ``address`` says it is, asked in Dask's protocol."""
    from distributed.comm import connect
    from distributed.security import Security

    # half the time to connect (Dask retries a refused connection until then), the rest to answer
    comm = await connect(address, timeout=CONNECT_SECONDS / 2, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()
