"""Reading the checkpoint a command is given: a damaged, foreign or missing file ends the
command with a message (a usage error: the file given cannot be used), never a traceback."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from purenn.errors import CheckpointError
from purenn.io.checkpoints import Checkpoint, read_checkpoint
from purenn_cli.errors import explain, fail


def read_model_file(console: Console, path: Path) -> Checkpoint:
    """The :class:`~purenn.io.checkpoints.Checkpoint` at ``path``, read with every check of
    :func:`~purenn.io.checkpoints.read_checkpoint`; a file it refuses is :func:`fail` with
    :func:`explain`'s message."""
    try:
        return read_checkpoint(path)
    except CheckpointError as e:
        raise fail(console, explain(e)) from None
