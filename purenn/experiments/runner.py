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
"""

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

__all__ = [
    "CONNECT_SECONDS",
    "PARENT_CHECK_SECONDS",
    "POLL_SECONDS",
    "Outcome",
    "Reporter",
    "check_where",
    "default_jobs",
    "describe_executor",
    "run_all",
]

Event = Callable[[Any, str, dict[str, Any]], None]
Done = Callable[["Outcome"], None]

#: The longest wait, in seconds, for a Dask scheduler to accept a connection and answer who it is
#: (a scheduler on a local network answers in milliseconds; one under load in well under this).
CONNECT_SECONDS = 10.0
#: How often, in seconds, a local worker process and the progress manager look whether the
#: process that started them is still there; they exit within about this long after it is gone.
PARENT_CHECK_SECONDS = 0.5
#: How often, in seconds, the jobs of a caller's executor whose handles are not
#: ``concurrent.futures.Future`` s (submitit's) are asked whether they are done.
POLL_SECONDS = 0.2


@attrs.frozen
class Outcome:
    """One task's end: ``status`` ``"ok"`` (``value`` holds the result) or ``"failed"``
    (``error`` says why); ``attempts``: how many times it started; ``seconds``: wall time from
    its (last) start."""

    key: Any
    status: str
    value: Any = None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0


_WORKER_CHANNEL: Any = None  # in a local worker process: the queue its pool was started with
IN_WORKER = "worker"  # a Reporter's channel meaning "this worker process's queue"


def _start_worker(channel: Any, parent: int) -> None:
    """A local worker process's initializer: its progress channel, and the parent's watch."""
    global _WORKER_CHANNEL
    _WORKER_CHANNEL = channel
    watch_parent(parent)


def watch_parent(parent: int) -> None:
    """In a process started by ``parent`` (its PID): a daemon thread that ends this process (exit
    status 1, at once) when ``parent`` is gone, which it sees as this process's parent changing
    (an orphan is adopted by another). Checked every :data:`PARENT_CHECK_SECONDS`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)  # no cleanup to wait for: whoever wanted this process's work is gone

    threading.Thread(target=watch, daemon=True, name="purenn-parent-watch").start()


class Reporter:
    """The ``report`` a task gets: ``report(event, **data)`` puts ``(key, event, data)`` on a
    channel the caller reads (the queue a local worker process was started with, a Dask queue,
    or a direct call in this process). Picklable."""

    def __init__(self, channel: Any, key: Any) -> None:
        self.channel, self.key = channel, key

    def __call__(self, event: str, **data: Any) -> None:
        channel = _WORKER_CHANNEL if self.channel == IN_WORKER else self.channel
        if channel is not None:
            channel.put((self.key, event, data))


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


class _Direct:
    """A channel for tasks run in this process: events go straight to the handler."""

    def __init__(self, on_event: Event) -> None:
        self.on_event = on_event

    def put(self, message: tuple[Any, str, dict[str, Any]]) -> None:
        self.on_event(*message)


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
    tracker = _Tracker(args, on_event or (lambda key, event, data: None), on_outcome)
    if executor is not None:
        _on_executor(fn, args, executor, tracker)
    elif scheduler is not None:
        _on_dask(fn, args, scheduler, tracker)
    elif jobs == 1:
        _serial(fn, args, tracker)
    else:
        _in_processes(fn, args, jobs, tracker)
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


class _Tracker:
    """The outcomes so far: counts each run's starts (from its ``"start"`` events) and, as each
    run ends, completes its outcome (attempts; a failed run's time since its last start), tells
    ``on_event`` (``"end"``) and ``on_outcome``."""

    def __init__(self, args: dict[Any, Any], on_event: Event, on_outcome: Done | None) -> None:
        self.handler, self.on_outcome = on_event, on_outcome
        self.attempts: dict[Any, int] = {key: 0 for key in args}
        self.started: dict[Any, float] = {}
        self.out: dict[Any, Outcome] = {}
        self.lock = threading.Lock()

    def on_event(self, key: Any, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            with self.lock:
                self.attempts[key] = self.attempts.get(key, 0) + 1
                self.started[key] = time.perf_counter()
        self.handler(key, event, data)

    def finish(self, outcome: Outcome) -> None:
        key, now = outcome.key, time.perf_counter()
        with self.lock:
            attempts = max(self.attempts.get(key, 0), outcome.attempts)
            seconds = now - self.started.get(key, now) if outcome.status == "failed" else outcome.seconds
        outcome = attrs.evolve(outcome, attempts=attempts, seconds=seconds)
        self.out[key] = outcome
        self.handler(key, "end", {"status": outcome.status})
        if self.on_outcome is not None:
            self.on_outcome(outcome)


def _finished(key: Any, value: Any, seconds: float) -> Outcome:
    return Outcome(key, "ok", value=value, seconds=seconds)


def _failed(key: Any, error: BaseException | str) -> Outcome:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Outcome(key, "failed", error=text)


def _timed(fn: Callable[[Any, Reporter], Any], arg: Any, report: Reporter) -> tuple[Any, float]:
    """Run one task in a worker: the result and its wall time."""
    report("start", pid=os.getpid())
    start = time.perf_counter()
    value = fn(arg, report)
    return value, time.perf_counter() - start


def _serial(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], tracker: _Tracker) -> None:
    channel = _Direct(tracker.on_event)
    for key, arg in args.items():
        try:
            value, seconds = _timed(fn, arg, Reporter(channel, key))
            outcome = _finished(key, value, seconds)
        except Exception as e:  # noqa: BLE001 - one run's failure is recorded, the others go on
            outcome = _failed(key, _remote_error(e))
        tracker.finish(outcome)


def _listen(channel: Any, on_event: Event, stop: threading.Event) -> threading.Thread:
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


def _listen_batches(channel: Any, on_event: Event, stop: threading.Event) -> threading.Thread:
    """Like :func:`_listen` for a Dask queue, polled for all waiting messages at once (a get
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


def _in_processes(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], jobs: int,
                  tracker: _Tracker) -> None:
    """A pool of ``jobs`` workers; the runs a dying worker took down go again, each in a pool of
    its own, so that only a run that kills its worker twice is reported failed."""
    context = multiprocessing.get_context("spawn")
    # a manager's queue, not a multiprocessing.Queue: a worker that dies while writing to a
    # shared pipe would leave its lock held and every other worker waiting forever
    manager = multiprocessing.managers.SyncManager(ctx=context)
    manager.start(watch_parent, (os.getpid(),))
    channel = manager.Queue()
    stop = threading.Event()
    listener = _listen(channel, tracker.on_event, stop)
    try:
        broken = _pool_round(fn, args, min(jobs, len(args)), 1, context, channel, tracker)
        for key, arg in broken.items():  # one at a time: a crash takes down no other run
            for again in _pool_round(fn, {key: arg}, 1, 2, context, channel, tracker):
                tracker.finish(attrs.evolve(
                    _failed(again, "its worker process died twice (killed, or out of memory?)"), attempts=2))
    finally:
        stop.set()
        listener.join()
        manager.shutdown()


def _pool_round(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], workers: int, attempt: int,
                context: Any, channel: Any, tracker: _Tracker) -> dict[Any, Any]:
    """Run ``args`` in one pool, telling ``tracker`` of the finished and failed runs as each
    ends; return the runs its dying workers took down. Interrupted (Ctrl-C, SIGTERM turned into
    KeyboardInterrupt), it cancels what has not started and stops the workers."""
    broken: dict[Any, Any] = {}
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=_start_worker, initargs=(channel, os.getpid()))
    try:
        futures = {pool.submit(_timed, fn, arg, Reporter(IN_WORKER, key)): key for key, arg in args.items()}
        for future in concurrent.futures.as_completed(futures):
            key = futures[future]
            try:
                value, seconds = future.result()
                outcome = _finished(key, value, seconds)
            except concurrent.futures.process.BrokenProcessPool:
                broken[key] = args[key]
                continue
            except Exception as e:  # noqa: BLE001 - the task's own error, recorded
                outcome = _failed(key, _remote_error(e))
            tracker.finish(attrs.evolve(outcome, attempts=attempt))
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return broken


def _on_executor(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], executor: Any,
                 tracker: _Tracker) -> None:
    """Every task submitted to the caller's ``executor``, each outcome taken as it is done;
    interrupted, whatever is not done is cancelled."""
    pending: dict[Any, Any] = {}
    try:
        for key, arg in args.items():
            pending[key] = executor.submit(_timed, fn, arg, Reporter(None, key))
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
        return _failed(key, f"its worker process died, which broke the executor's pool ({e}); run "
                            "what is missing again, with a new pool")
    except Exception as e:  # noqa: BLE001 - the task's or the executor's error, recorded
        return _failed(key, _remote_error(e))
    return _finished(key, value, seconds)


def _remote_error(error: BaseException) -> str:
    """A worker's exception as one line: a purenn error's message, else its type and message."""
    message = getattr(error, "message", None)
    if isinstance(message, str) and message:
        return message
    return f"{type(error).__name__}: {error}"


def _on_dask(fn: Callable[[Any, Reporter], Any], args: dict[Any, Any], scheduler: str,
             tracker: _Tracker) -> None:
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
        futures = {client.submit(_timed, fn, arg, Reporter(_DaskChannel(name), key), pure=False,
                                 key=f"purenn-{key}-{uuid.uuid4().hex[:8]}"): key
                   for key, arg in args.items()}
        for future in distributed.as_completed(list(futures)):
            key = futures[future]
            try:
                value, seconds = future.result()
                outcome = _finished(key, value, seconds)
            except distributed.KilledWorker as e:
                outcome = _failed(key, f"the workers running it died too often (KilledWorker: {e})")
            except Exception as e:  # noqa: BLE001 - the task's own error, recorded
                outcome = _failed(key, _remote_error(e))
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
