"""How the command line reports mistakes: a message, never a traceback.

Every command is wrapped in :func:`guarded`: a purenn error is printed as its ``message`` with
advice in terms of the command line (an option to pass) instead of the Python ``hint`` the
library attaches, and Ctrl-C ends with a word about what was interrupted. Commands raise
``typer.Exit`` through :func:`fail` for their own checks.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer
from rich.console import Console
from rich.markup import escape

from purenn.errors import DivergenceError, PurennError, WrongDatasetError

EXIT_FAILED = 1       # the command ran and failed (diverged, not reproduced, bad file)
EXIT_USAGE = 2        # the command was given something it cannot use
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def fail(console: Console, message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` (plain text: brackets are shown, not read as markup) as an error and
    return the Exit to raise."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def explain(error: PurennError) -> str:
    """The command line's message for a purenn error: what went wrong, and the option that fixes
    it where there is one (never the Python-only ``hint``)."""
    if isinstance(error, DivergenceError):
        return f"{error.message}. Nothing was written. Try a smaller --lr."
    if isinstance(error, WrongDatasetError):
        return f"{error.message}; to use it, pass --dataset {error.actual}"
    return error.message


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with purenn errors and Ctrl-C turned into messages and exit codes."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        console = Console(stderr=True)
        try:
            return command(*args, **kwargs)
        except PurennError as e:
            raise fail(console, explain(e), EXIT_FAILED) from None
        except MemoryError as e:
            raise fail(console, f"not enough memory ({e or 'MemoryError'}); choose smaller sizes",
                       EXIT_FAILED) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow] (Ctrl-C)", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return run
