"""``--checkpoint-dir``: where a ``purenn mnist`` run keeps its latest training state, and what
``purenn resume`` needs to finish it (the run's settings, and the files it was asked to write,
kept only to be shown: resume writes the files named on its own command line).

One run at a time uses a folder: it holds the folder's lock (:mod:`purenn.io.locks`) from before
it reads the state until it has written its outputs."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console

from purenn.errors import ArgumentError, CheckpointError
from purenn.io.atomic import check_distinct, check_writable
from purenn.io.locks import HeldLock, acquire, lock_path, release
from purenn.io.training_checkpoints import TrainingCheckpoint, load_training_state, save_training_state
from purenn.recipes.runs import RunConfig
from purenn.training_state import TrainingState
from purenn_cli.errors import fail

TRAINING_FILE = "training.npz"
MAX_SHOWN_PATH = 4096  # characters of a path stored in a training state that are ever shown
OUTPUT_OPTIONS = ("save", "record", "data_dir")  # what `outputs` in a state's metadata may name


def state_path(folder: Path) -> Path:
    return folder / TRAINING_FILE


def check_outputs(console: Console, outputs: dict[str, Path | None], folder: Path | None,
                  inputs: dict[str, Path] | None = None) -> None:
    """Refuse, before any work, outputs (``{"--save": path}``) that cannot be written or that
    name one file, or one of the ``inputs`` (``{"--init-from": path}``), or the folder's
    training state or lock file."""
    inputs = {**(inputs or {}), **({} if folder is None else {
        "the training state": state_path(folder), "the folder's lock file": Path(lock_path(folder))})}
    try:
        check_distinct(outputs, inputs)
    except ArgumentError as e:
        raise fail(console, e.message) from None
    for option, path in outputs.items():
        try:
            if path is not None:
                check_writable(path)
        except ArgumentError as e:
            raise fail(console, f"{option}: {e.message}") from None


def prepare(console: Console, folder: Path, option: str = "--checkpoint-dir") -> None:
    """Create ``folder`` if missing, and refuse it unless its training state can be written."""
    if folder.exists() and not folder.is_dir():
        raise fail(console, f"{option}: {folder} exists and is not a folder")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise fail(console, f"{option}: cannot create {folder} ({e.strerror or e})") from None
    try:
        check_writable(state_path(folder))
    except ArgumentError as e:
        raise fail(console, f"{option}: {e.message}") from None


@contextlib.contextmanager
def locked(console: Console, folder: Path, option: str = "--checkpoint-dir") -> Iterator[HeldLock]:
    """Hold ``folder``'s lock for the block (a stale one is taken over, saying from whom); a
    folder another run holds is refused, naming the lock file and its owner."""
    try:
        held = acquire(folder, command=shlex.join(["purenn", *sys.argv[1:]]))
    except ArgumentError as e:
        raise fail(console, f"{option}: {e.message}") from None
    except OSError as e:
        raise fail(console, f"{option}: cannot create the lock file {lock_path(folder)} "
                            f"({e.strerror or e}); choose a folder that can be written") from None
    if held.replaced is not None:
        console.print(f"taking over {held.path} from {held.replaced.describe()}, which is no longer "
                      "running", highlight=False, markup=False, soft_wrap=True)
    try:
        yield held
    finally:
        release(held)


@attrs.define
class Saver:
    """The ``checkpoint`` callback of a run: writes each state atomically to the folder's file,
    with the run's settings and outputs as metadata. A save that fails (a full disk, a folder
    made read-only) does not end the run: ``warn`` is told once, and ``failure`` says why the
    latest save failed (None once one succeeds again); ``saved`` is the latest state the folder
    holds (the one the run was resumed from, until it saves one)."""

    folder: Path
    model: Any
    metadata: dict[str, Any]
    warn: Callable[[str], None]
    saved: TrainingState | None = None
    failure: str | None = None
    warned: bool = False

    def __call__(self, state: TrainingState) -> None:
        try:
            save_training_state(state_path(self.folder), self.model, state, metadata=self.metadata)
        except (OSError, CheckpointError) as e:
            self.failure = e.message if isinstance(e, CheckpointError) else (e.strerror or str(e))
            if not self.warned:
                self.warned = True
                self.warn(f"could not save the training state to {state_path(self.folder)} at "
                          f"{describe_position(state)} ({self.failure}): the run goes on, but "
                          f"cannot be resumed from this point; {self.holds()}")
            return
        self.saved, self.failure = state, None

    def holds(self) -> str:
        """What the folder holds to resume from, as a phrase."""
        if self.saved is None:
            return f"{self.folder} holds no training state"
        return f"{self.folder} keeps the state of {describe_position(self.saved)}"


def saver(folder: Path, model: Any, config: RunConfig, outputs: dict[str, str | None],
          warn: Callable[[str], None], resumed: TrainingState | None = None) -> Saver:
    return Saver(folder, model, {"run": attrs.asdict(config), "outputs": outputs}, warn, resumed)


def load(folder: Path, console: Any = None) -> TrainingCheckpoint:
    """The folder's training state; its notice (a file written before states carried an integrity
    digest: not verified) printed on ``console``."""
    checkpoint = load_training_state(state_path(folder))
    if checkpoint.notice is not None and console is not None:
        console.print(f"note: {checkpoint.notice}", highlight=False, markup=False, soft_wrap=True)
    return checkpoint


def saved_config(checkpoint: TrainingCheckpoint) -> RunConfig:
    """The :class:`RunConfig` the saved run was started with; an ArgumentError when the file
    does not say (it was saved from Python, or by another version of purenn)."""
    run = checkpoint.metadata.get("run")
    try:
        return RunConfig(**run)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ArgumentError(
            "its training state does not hold the settings of a `purenn mnist` run (it was "
            "saved from Python, or by another version of purenn); continue it from Python with "
            "fit(..., resume=load_training_state(path).state)") from None


def saved_outputs(checkpoint: TrainingCheckpoint) -> dict[str, str]:
    """The ``--save``, ``--record`` and ``--data-dir`` the saved run was given, as far as the
    file says so legibly (each a printable path of at most :data:`MAX_SHOWN_PATH` characters;
    anything else is left out). Only ever shown: a path read from a file is never written to."""
    outputs = checkpoint.metadata.get("outputs")
    if not isinstance(outputs, dict):
        return {}
    return {k: v for k in OUTPUT_OPTIONS if isinstance(v := outputs.get(k), str)
            and v and v.isprintable() and len(v) <= MAX_SHOWN_PATH}


def as_flags(paths: dict[str, str]) -> str:
    """``--save /x/m.npz --record '/x/my run.json'``, quoted for a shell."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(v)}" for k, v in paths.items())


def resume_command(folder: Path, outputs: dict[str, Any]) -> str:
    """``purenn resume DIR --save ... --record ... --data-dir ...``: the command that continues a
    run and writes what it was asked to (``outputs``: paths by option, None when not given)."""
    flags = as_flags({k: v for k, v in outputs.items() if isinstance(v, str)})
    return " ".join([shlex.join(["purenn", "resume", str(folder)]), *([flags] if flags else [])])


#: Settings no option sets directly, by the phrase that names them in a difference.
SETTING_NAMES = {"init_digest": "the params digest of --init-from's checkpoint"}


def config_differences(saved: RunConfig, current: RunConfig) -> list[str]:
    """``"--epochs: 3 in the saved run, 5 now"`` for each setting that differs."""
    old, new = attrs.asdict(saved), attrs.asdict(current)
    return [f"{SETTING_NAMES.get(k, '--' + k.replace('_', '-'))}: {old[k]!r} in the saved run, {new[k]!r} now"
            for k in old if old[k] != new[k]]


def describe_position(state: TrainingState) -> str:
    """``"epoch 2 of 3, step 17"`` or ``"the end of epoch 2 of 3"``."""
    epochs = state.settings.get("epochs", "?")
    if state.step:
        return f"epoch {state.epoch + 1} of {epochs}, after step {state.step}"
    return f"the end of epoch {state.epoch} of {epochs}"
