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
    ├── DivergenceError (FloatingPointError) training produced a non-finite loss or parameter
    ├── TrainingInterrupted                 fit stopped because its ``stop`` callback asked it to
    ├── DataError (ValueError)              a data file is missing, damaged or inconsistent
    │   ├── DatasetNotFoundError            a data set's files are nowhere to be found
    │   │   └── DownloadError               ... and every mirror failed
    │   ├── ChecksumError                   a file's SHA-256 matches no known data set
    │   └── WrongDatasetError               a file is another known data set's
    ├── SerializeError (ValueError)         a record or params tree cannot become JSON, or back
    ├── CheckpointError (ValueError)        a checkpoint cannot be written or read
    └── RecordError (ValueError)            a run record is missing, unreadable or off-schema
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PurennError", "ArgumentError", "ArgumentTypeError", "ShapeError", "GradientCheckError",
    "DivergenceError", "TrainingInterrupted",
    "DataError", "DatasetNotFoundError", "DownloadError", "ChecksumError", "WrongDatasetError",
    "SerializeError", "CheckpointError",
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


class DivergenceError(PurennError, FloatingPointError):
    """Training produced a non-finite loss (or parameters): it diverged.

    ``epoch`` and ``step`` (1-based, ``step`` within the epoch, of ``steps_per_epoch``) say where;
    ``loss`` is the offending value and ``last_finite_loss`` the one before (None if none was).
    """

    def __init__(self, message: str, *, hint: str | None = None, epoch: int = 0, step: int = 0,
                 steps_per_epoch: int = 0, loss: float = float("nan"),
                 last_finite_loss: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.epoch, self.step, self.steps_per_epoch = epoch, step, steps_per_epoch
        self.loss, self.last_finite_loss = loss, last_finite_loss


class TrainingInterrupted(PurennError):
    """``fit`` stopped early because its ``stop()`` callback returned True (a Ctrl-C, a signal).

    ``state`` is the :class:`~purenn.training_state.TrainingState` after the last completed step
    (also handed to ``fit``'s ``checkpoint`` callback before this is raised): pass it to
    ``fit(..., resume=state)`` to continue as if nothing had happened.
    """

    def __init__(self, message: str, *, hint: str | None = None, state: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.state = state


class DataError(PurennError, ValueError):
    """A data file is missing, unreadable, damaged or inconsistent; the message names the file."""


class DatasetNotFoundError(DataError):
    """The dataset's files are not in any folder looked in, and were not downloaded."""


class DownloadError(DatasetNotFoundError):
    """Every mirror failed for some file (the message lists each mirror's failure)."""


class ChecksumError(DataError):
    """A ``.gz`` file's SHA-256 is not the one expected, nor that of any other known dataset's
    file: it is damaged, or not from any known dataset.

    Attributes: ``path`` (the file), ``dataset`` (the dataset asked for), ``expected`` and
    ``actual`` (the hex digests).
    """

    def __init__(self, path: Any, dataset: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{path}: SHA-256 is {actual}, expected {expected} for {dataset}; the file is damaged "
            f"or not from any known dataset (a damaged copy is downloaded again once deleted)",
            hint="if it is your own data in this format, load it with verify=False or "
                 "load_idx_dataset(directory)")
        self.path, self.dataset, self.expected, self.actual = path, dataset, expected, actual

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.dataset, self.expected, self.actual)


class WrongDatasetError(DataError):
    """A file's SHA-256 is that of another known dataset's file: the folder holds the wrong
    dataset (never a damaged file, so nothing advises deleting it).

    Attributes: ``path`` (the file), ``requested`` (the dataset asked for), ``actual`` (the
    dataset it belongs to, a key of :data:`DATASETS`) and ``actual_file`` (its name there).
    """

    def __init__(self, path: Any, requested: str, actual: str, actual_file: str) -> None:
        super().__init__(
            f"{path}: this file is from the {actual} dataset, not from {requested} (the dataset "
            f"asked for): its SHA-256 matches {actual}'s {actual_file}",
            hint=f"to load {actual}, pass dataset={actual!r}")
        self.path, self.requested, self.actual = path, requested, actual
        self.actual_file = actual_file

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.requested, self.actual, self.actual_file)


class SerializeError(PurennError, ValueError):
    """A record or params tree could not be turned into JSON data, or rebuilt from it."""


class CheckpointError(PurennError, ValueError):
    """A checkpoint could not be written or read; the message names the file and the problem."""


class RecordError(PurennError, ValueError):
    """A run record is missing, unreadable, or does not follow the schema."""
