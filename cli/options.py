"""Typer option callbacks: purenn's own value checks (purenn.validation) as command-line errors.

Typer's ``min=``/``max=`` cover integer ranges; these cover what they cannot say (a finite
positive float: ``nan`` and ``inf`` parse as floats) with the library's wording.
"""

from __future__ import annotations

from typing import Any, Callable

import typer

from purenn.errors import ArgumentError
from purenn.validation import Rule, positive_number


def checked(rule: Rule) -> Callable[[Any], Any]:
    """A Typer callback that refuses values ``rule`` refuses (None, an option not given, passes)."""

    def callback(value: Any) -> Any:
        if value is None:
            return value
        try:
            rule.check("value", value)
        except ArgumentError:
            raise typer.BadParameter(f"must be {rule.what}, got {value}") from None
        return value

    return callback


positive_float = checked(positive_number)
