"""Ctrl-C and SIGTERM as requests to stop cleanly: training finishes its step, saves its state,
and the command says how to continue; outside training, SIGTERM as an exit that cleans up."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it


class StopRequests:
    """Callable for ``fit(stop=...)``: True once SIGINT or SIGTERM has arrived; ``received``
    is the first such signal."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self) -> bool:
        return self.received is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum

    @property
    def name(self) -> str:
        return NAMES.get(self.received, "a signal") if self.received is not None else ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received, 130) if self.received is not None else 0


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """While inside, SIGINT and SIGTERM set a flag instead of killing the process; the previous
    handlers come back on leaving."""
    requests = StopRequests()
    previous = {s: signal.signal(s, requests._handle) for s in NAMES}
    try:
        yield requests
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """While inside, SIGTERM raises ``SystemExit(143)`` instead of ending the process on the spot,
    so that ``finally`` blocks (releasing a folder's lock) run; :func:`stop_requests`, nested
    inside, takes over while training runs. Only in the main thread (signals are delivered
    there); elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: Any) -> None:
        raise SystemExit(EXIT_CODES[signal.SIGTERM])

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
