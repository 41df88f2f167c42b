"""Typer option callbacks shared by the commands: checks Typer's own ``min=``/``max=`` cannot say."""

from __future__ import annotations

import typer


def positive_float(value: float | None) -> float | None:
    """Refuse zero and negative values with a clear message (None passes)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0, got {value}")
    return value
