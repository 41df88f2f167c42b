"""Ctrl-C and SIGTERM as requests to stop cleanly: training finishes its step, saves its state,
and the command says how to continue."""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterator

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
