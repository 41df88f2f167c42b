"""One run of a preset as data: :class:`RunConfig` (what a run record stores, so the run can be
repeated exactly) and the training set it splits off for validation (see
:mod:`purenn.recipes.runs`)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.io.environment import blas_threads
from purenn.io.records import DIGEST
from purenn.optim.base import Optimizer
from purenn.recipes.presets import PRESETS
from purenn.splits import split_fraction, split_indices
from purenn.validation import (
    Rule,
    boolean,
    non_negative_int,
    optional,
    positive_int,
    positive_number,
    thread_count,
)

__all__ = ["DATA_SEED", "MAX_INIT_NAME", "RunConfig", "check_new_run", "split_of", "split_training_set"]

_known_preset = Rule(f"one of the presets {tuple(PRESETS)}", lambda v: isinstance(v, str),
                     lambda v: v in PRESETS)

#: The validation split's seed when none is given: one split for every run seed, so that runs of
#: several seeds differ in initialisation, order and dropout, not in the samples they learn from.
DATA_SEED = 0
#: The longest ``init_from`` (the starting checkpoint's file name) a run records, in characters:
#: file systems allow names of at most 255 bytes. It is only ever shown, never opened.
MAX_INIT_NAME = 255
_file_name = Rule(f"a file name (no folder) of 1 to {MAX_INIT_NAME} printable characters",
                  lambda v: isinstance(v, str),
                  lambda v: 0 < len(v) <= MAX_INIT_NAME and v.isprintable() and v not in (".", "..")
                  and "/" not in v and "\\" not in v)


@attrs.frozen
class RunConfig:
    """One run of a preset: its overrides (``None`` keeps the preset's value), seed and limit,
    and the number of BLAS threads (results differ between thread counts; ``None``: as the BLAS
    is set up, which a recorded run should not leave open). ``patience``: stop early when the
    watched loss has not improved for that many epochs, keeping the best epoch's params.

    ``validation``: hold out this fraction of the (first ``limit``) training samples, stratified
    by label (:func:`split_training_set`): each epoch's metrics and early stopping watch it, and
    the test set is read once, after training. The split's seed is ``data_seed`` (default
    :data:`DATA_SEED`: the same split whatever ``seed`` is), or with ``vary_split`` the pair
    ``(data_seed, seed)`` (:attr:`split_seed`): one split per seed. Both need ``validation``.

    ``init_from``, ``init_digest``: the run starts from a checkpoint's params and state instead
    of the preset's initialisation (:func:`start_from` sets them): the file's name, only shown,
    and the params digest of its params and state, which the run checks the checkpoint it is
    given against. Both or neither. Every field added here defaults to what runs did before it
    existed, so a record without it reads as that default."""

    preset: str = attrs.field(validator=_known_preset)
    seed: int = attrs.field(default=0, validator=non_negative_int)
    epochs: int | None = attrs.field(default=None, validator=optional(positive_int))
    batch_size: int | None = attrs.field(default=None, validator=optional(positive_int))
    lr: float | None = attrs.field(default=None, validator=optional(positive_number))
    limit: int | None = attrs.field(default=None, validator=optional(positive_int))
    dataset: str = attrs.field(default="mnist", validator=Rule("a dataset name", lambda v: isinstance(v, str)))
    threads: int | None = attrs.field(default=None, validator=optional(thread_count))
    patience: int | None = attrs.field(default=None, validator=optional(positive_int))
    validation: float | None = attrs.field(default=None, validator=optional(split_fraction))
    data_seed: int = attrs.field(default=DATA_SEED, validator=non_negative_int)
    vary_split: bool = attrs.field(default=False, validator=boolean)
    init_from: str | None = attrs.field(default=None, validator=optional(_file_name))
    init_digest: str | None = attrs.field(default=None, validator=optional(DIGEST))

    def __attrs_post_init__(self) -> None:
        if self.validation is None and (self.data_seed != DATA_SEED or self.vary_split):
            raise ArgumentError(f"`data_seed` ({self.data_seed}) and `vary_split` ({self.vary_split}) "
                                "choose the validation split: give `validation` too (a fraction of the "
                                "training set, such as 0.1)")
        if (self.init_from is None) != (self.init_digest is None):
            raise ArgumentError("`init_from` and `init_digest` say together which checkpoint the run "
                                f"starts from: give both or neither, got {self.init_from!r:.80} and "
                                f"{self.init_digest!r:.80} (start_from sets both)")

    def resolved(self) -> dict[str, Any]:
        """The settings actually used: the preset's, with this run's overrides applied. A setting
        added after records existed appears only when it is not at its default, so the records
        written before it still compare equal."""
        p = PRESETS[self.preset]
        return {
            "preset": self.preset, "dataset": self.dataset, "seed": self.seed, "limit": self.limit,
            "epochs": p.epochs if self.epochs is None else self.epochs,
            "batch_size": p.batch_size if self.batch_size is None else self.batch_size,
            "lr": p.lr if self.lr is None else self.lr,
            "loss": p.loss, "optimizer": type(p.make_optimizer(1)).__name__.lower(),
            "shuffle": p.shuffle,
            **({} if self.patience is None else {"patience": self.patience}),
            **({} if self.validation is None else {"validation": self.validation, "data_seed": self.data_seed,
                                                   "vary_split": self.vary_split}),
            **({} if self.init_digest is None else {"init_digest": self.init_digest}),
        }

    @property
    def evaluated_on(self) -> str:
        """The set each epoch's ``val_loss`` and ``val_accuracy`` (and early stopping) come from:
        ``"validation"`` with a validation split, else ``"test"``."""
        return "test" if self.validation is None else "validation"

    @property
    def split_seed(self) -> int | tuple[int, int, int]:
        """The seed of the validation split: ``data_seed``; with ``vary_split``,
        ``(data_seed, seed, 1)``: NumPy's seed sequences read trailing zeros as absent, and the
        final 1 keeps every pair apart from every fixed split (``(0, 0)`` would draw what ``0``
        draws)."""
        return (self.data_seed, self.seed, 1) if self.vary_split else self.data_seed

    def with_threads_in_use(self) -> RunConfig:
        """This config, its ``threads`` the BLAS's thread count now when it names none (still
        None when that count is unknown): its record then says how many threads the run used,
        so that the run can be repeated with them."""
        if self.threads is not None:
            return self
        return attrs.evolve(self, threads=blas_threads() or None)

    def optimizer(self, n_train: int) -> Optimizer:
        """The optimizer for ``n_train`` training samples (schedules count the run's steps)."""
        s = self.resolved()
        steps = s["epochs"] * math.ceil(n_train / s["batch_size"])
        return PRESETS[self.preset].make_optimizer(steps, s["lr"])


def check_new_run(config: RunConfig) -> None:
    """Refuse what a new run must not do, though records of earlier runs may hold it (and
    repeat): early stopping (``patience``) without a validation set would keep the epoch whose
    test loss was lowest, choosing by the test set, whose accuracy would then overstate how the
    model does on new data."""
    if config.patience is not None and config.validation is None:
        raise ArgumentError("early stopping (`patience`) without a validation set would choose the epoch "
                            "to keep by the test set, and the test accuracy would then overstate the "
                            "model's: hold out a validation set too (`validation`, such as 0.1)")


def split_training_set(config: RunConfig, x: np.ndarray, y: np.ndarray) -> tuple[
        tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """``((x_train, y_train), validation)``: what ``config`` trains on, and the validation set
    it holds out (None without ``validation``): :func:`split_of`'s samples, each part in the
    original order."""
    if config.limit is not None:
        x, y = x[: config.limit], y[: config.limit]
    split = split_of(config, y)
    if split is None:
        return (x, y), None
    train, held = split
    return (x[train], y[train]), (x[held], y[held])


def split_of(config: RunConfig, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(train_indices, validation_indices)`` of ``config``'s split of a training set with these
    integer ``labels`` (None without ``validation``): from the first ``limit`` samples,
    ``config.validation`` of them, stratified by label, drawn with ``config.split_seed``
    (:func:`purenn.splits.split_indices`, whose ArgumentError says why a split cannot be made).
    Cheap (labels only): a command can check a run's split before it starts."""
    if config.validation is None:
        return None
    return split_indices(labels[: config.limit], config.validation, seed=config.split_seed)
