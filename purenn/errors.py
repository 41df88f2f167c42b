"""Every error purenn raises on purpose, in one place, under one base class.

Catch :class:`PurennError` to handle any of them at once. Each also derives from the built-in
exception a caller would expect (``ValueError`` for a bad value, ``TypeError`` for a value of the
wrong kind, ``AssertionError`` for a failed gradient check), so ``except ValueError`` keeps
working. Every message names what was wrong (the field, file or layer), the value found, and what
is allowed or how to fix it.

    PurennError
    ├── ArgumentError (ValueError)          a parameter or argument has a value not allowed
    │   └── ArgumentTypeError (TypeError)   ... or is of the wrong type
    ├── ShapeError (ValueError)             an input's shape does not fit its layer or loss
    ├── GradientCheckError (AssertionError) backward disagrees with finite differences
    ├── DataError (ValueError)              a data file is missing, damaged or inconsistent
    │   └── DatasetNotFoundError            a data set's files are nowhere to be found
    │       └── DownloadError               ... and every mirror failed
    ├── SerializeError (ValueError)         a record or params tree cannot become JSON, or back
    ├── CheckpointError (ValueError)        a checkpoint cannot be written or read
    └── RecordError (ValueError)            a run record is missing, unreadable or off-schema
"""

from __future__ import annotations

__all__ = [
    "PurennError", "ArgumentError", "ArgumentTypeError", "ShapeError", "GradientCheckError",
    "DataError", "DatasetNotFoundError", "DownloadError", "SerializeError", "CheckpointError",
    "RecordError",
]


class PurennError(Exception):
    """Base class of every error purenn raises on purpose.

    ``message`` says what was wrong; ``hint``, when given, how to fix it in Python (an argument
    to pass, a function to call). ``str(error)`` is both; the command line prints ``message``
    with advice of its own (an option to pass) instead of the Python ``hint``.
    """

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message}; {hint}")
        self.message = message
        self.hint = hint


class ArgumentError(PurennError, ValueError):
    """A hyperparameter, field or function argument has a value that is not allowed."""


class ArgumentTypeError(ArgumentError, TypeError):
    """A hyperparameter, field or function argument is of the wrong type."""


class ShapeError(PurennError, ValueError):
    """An input's shape does not fit the layer or loss it was given to.

    The message names the layer (its full description), the shape it expected and the one it got.
    """


class GradientCheckError(PurennError, AssertionError):
    """``backward`` disagrees with finite differences, or something was mutated."""


class DataError(PurennError, ValueError):
    """A data file is missing, unreadable, damaged or inconsistent; the message names the file."""


class DatasetNotFoundError(DataError):
    """The dataset's files are not in any folder looked in, and were not downloaded."""


class DownloadError(DatasetNotFoundError):
    """Every mirror failed for some file (the message lists each mirror's failure)."""


class SerializeError(PurennError, ValueError):
    """A record or params tree could not be turned into JSON data, or rebuilt from it."""


class CheckpointError(PurennError, ValueError):
    """A checkpoint could not be written or read; the message names the file and the problem."""


class RecordError(PurennError, ValueError):
    """A run record is missing, unreadable, or does not follow the schema."""
