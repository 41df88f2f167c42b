"""What a run of an experiment can ask while it runs: which run it is (:func:`current_run`), and
a way to report its progress (:func:`report`), in whichever process runs it.

A run function is called as ``fn(seed, **settings)``; inside it, ``current_run()`` gives its
:class:`RunContext` (None outside an experiment) and ``report("epoch", epoch=2, epochs=5,
loss=0.31)`` shows its progress on the command line's bars (``"step"`` with ``done`` and
``total``; ``"epoch"`` with ``epoch``, ``epochs``, ``loss`` and ``accuracy``). Reports from a
caller's executor's workers go nowhere (purenn cannot reach into them); outside an experiment
they are ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs

__all__ = ["RunContext", "current_run", "report", "running"]


@attrs.frozen
class RunContext:
    """The run a function is running as: its ``group`` (index into the experiment's groups),
    ``seed`` and ``settings``; ``checkpoint_dir``: a folder of its own to keep training states
    in (``run(checkpoint_dir=...)``; None without one), so that a long run resumes mid-run;
    ``options``: what every run of this session gets without it being a setting (where the data
    is, say: not recorded, not part of what the experiment is)."""

    group: int
    seed: int
    settings: dict[str, Any]
    checkpoint_dir: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    reporter: Callable[..., None] | None = attrs.field(default=None, repr=False)


_CURRENT: list[RunContext] = []


def current_run() -> RunContext | None:
    """The :class:`RunContext` of the run this code runs in, or None outside an experiment."""
    return _CURRENT[-1] if _CURRENT else None


def report(event: str, **data: Any) -> None:
    """Send a progress event of the current run to whoever runs the experiment (``"step"``:
    ``done``, ``total``; ``"epoch"``: ``epoch``, ``epochs``, ``loss``, ``accuracy``); nothing
    outside an experiment."""
    run = current_run()
    if run is not None and run.reporter is not None:
        run.reporter(event, **data)


@contextlib.contextmanager
def running(context: RunContext) -> Iterator[RunContext]:
    """While inside, :func:`current_run` is ``context`` (its checkpoint folder created)."""
    if context.checkpoint_dir is not None:
        os.makedirs(context.checkpoint_dir, exist_ok=True)
    _CURRENT.append(context)
    try:
        yield context
    finally:
        _CURRENT.pop()
