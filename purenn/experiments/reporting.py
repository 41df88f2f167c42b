"""How a task reports back, wherever it runs (see :mod:`purenn.experiments.runner`): its progress
through a :class:`Reporter` (to the caller directly, through a local worker process's queue or a
Dask queue), its end as an :class:`Outcome`, both gathered by a :class:`Tracker` in the calling
process. A local worker process also watches the process that started it, and exits when it is
gone."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["PARENT_CHECK_SECONDS", "Outcome", "Reporter"]

Event = Callable[[Any, str, dict[str, Any]], None]
Done = Callable[["Outcome"], None]

#: How often, in seconds, a local worker process and the progress manager look whether the
#: process that started them is still there; they exit within about this long after it is gone.
PARENT_CHECK_SECONDS = 0.5


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


def start_worker(channel: Any, parent: int) -> None:
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


class Direct:
    """A channel for tasks run in this process: events go straight to the handler."""

    def __init__(self, on_event: Event) -> None:
        self.on_event = on_event

    def put(self, message: tuple[Any, str, dict[str, Any]]) -> None:
        self.on_event(*message)


class Tracker:
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


def finished(key: Any, value: Any, seconds: float) -> Outcome:
    return Outcome(key, "ok", value=value, seconds=seconds)


def failed(key: Any, error: BaseException | str) -> Outcome:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Outcome(key, "failed", error=text)


def timed(fn: Callable[[Any, Reporter], Any], arg: Any, report: Reporter) -> tuple[Any, float]:
    """Run one task in a worker: the result and its wall time."""
    report("start", pid=os.getpid())
    start = time.perf_counter()
    value = fn(arg, report)
    return value, time.perf_counter() - start


def remote_error(error: BaseException) -> str:
    """A worker's exception as one line: a purenn error's message, else its type and message."""
    message = getattr(error, "message", None)
    if isinstance(message, str) and message:
        return message
    return f"{type(error).__name__}: {error}"
