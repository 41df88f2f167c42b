"""Writing a matplotlib figure as a PNG file, for the commands that draw (``plot``, ``compare
-o``, ``lr-find -o``): one place that says which extra to install and writes atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from purenn.errors import PurennError
from purenn.io.atomic import atomic_write_bytes
from purenn_cli.errors import EXIT_USAGE, explain, fail


def save_figure(console: Console, draw: Callable[[], Any], output: Path, option: str = "") -> Any:
    """``draw()``'s matplotlib Figure, written to ``output`` as a PNG (atomically), and returned.
    Without matplotlib (``draw`` raises ImportError): a usage error naming the ``plot`` extra; a
    file that cannot be written: an error message (``option``, e.g. ``"--output"``, leads it)."""
    try:
        figure = draw()
    except ImportError:
        raise fail(console, "drawing needs matplotlib, which is not installed: "
                            "pip install \"purenn[plot]\"", EXIT_USAGE) from None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    try:
        atomic_write_bytes(output, buffer.getvalue())
    except (PurennError, OSError) as e:
        message = explain(e) if isinstance(e, PurennError) else str(e)
        raise fail(console, f"{option}: {message}" if option else message) from None
    return figure
