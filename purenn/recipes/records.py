"""The run record of a preset's run: the run-record envelope (:mod:`purenn.io.records`) whose
``config`` says which preset ran, how, and on what, so the run can be repeated exactly.

``config`` (what :func:`purenn.recipes.runs.describe` writes)::

    run        object: what was asked, :class:`~purenn.recipes.runs.RunConfig`'s fields, each
               checked by the rule RunConfig checks it by (``preset`` required: one of this
               purenn's presets; ``null`` for an override: the preset's value)
    resolved   object: the settings used: the same fields, those a preset gives
               (:data:`FROM_PRESET`) never null; and the preset's ``loss``, ``optimizer`` (str)
               and ``shuffle`` (bool)
    model      object: purenn.io.serialize.to_data(model)
    update     object: to_data(optimizer)
    train_samples  non-negative int: samples trained on (at most ``limit``)
    evaluated_on   "validation" or "test": the set each epoch's ``val_loss`` and
               ``val_accuracy`` (and early stopping) came from; "validation" exactly when
               ``run.validation`` is set (``metrics.test_accuracy`` is always the test set's).
               Records written before validation splits existed lack it: their per-epoch metrics
               are the test set's
    validation_samples  positive int: samples held out for validation, present exactly when
               ``run.validation`` is set (with ``train_samples``, at most ``limit``)

Both ``run`` and ``resolved`` follow from ``attrs.fields(RunConfig)``: a setting added to
RunConfig is recorded, read and checked with no other change here.

One setting may be written in several places, and the copies must agree, so a record edited in
one place only is refused rather than silently repeated with the other value: ``seed`` is also
``config.run.seed``; each field of ``run`` is also in ``resolved`` (where ``run`` holding null for
a setting of :data:`FROM_PRESET` means "the preset's", which is not a copy); every epoch's
``epochs`` is ``config.resolved.epochs``; ``early_stopping.patience`` is ``config.run.patience``;
``provenance.samples.train.count`` (records since provenance) is ``config.train_samples``.
The settings of ``run`` that only make sense together are checked together, as RunConfig
checks them (a ``data_seed`` or ``vary_split`` needs a ``validation`` split; ``init_from`` and
``init_digest`` come in pairs).

:func:`write_run_record` and :func:`read_run_record` check the same rules
(:func:`check_run_record`: the envelope's, then these), within
:data:`~purenn.io.records.MAX_RECORD_BYTES`; every refusal is a :class:`~purenn.errors.RecordError`
naming the field (``config.train_samples``), what it must be, and the value found.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from purenn.errors import ArgumentError, RecordError
from purenn.io.records import (
    ABSENT, JSON_OBJECT, MAX_RECORD_BYTES, STRING, Object, check_agreement, check_record,
    check_schema, dump_json, fields_object, load_json, lookup, show,
)
from purenn.recipes.runs import RunConfig
from purenn.validation import Rule, boolean, non_negative_int, one_of, positive_int

__all__ = [
    "CONFIG", "EVALUATED_ON", "FROM_PRESET", "RESOLVED", "RUN", "check_run_record",
    "config_schema", "read_run_record", "setting_copies", "write_run_record",
]

#: RunConfig's settings whose ``None`` means "the preset's value": ``resolved`` holds that value.
FROM_PRESET = ("epochs", "batch_size", "lr")
#: What ``config.evaluated_on`` may say: the set a run's per-epoch metrics came from.
EVALUATED_ON = ("validation", "test")


def _given(rule: Rule) -> Rule:
    """``rule`` (an ``optional(...)`` one) without its None: the value the preset gives."""
    return Rule(rule.what.removesuffix(" or None"), lambda v: v is not None and rule.kind(v), rule.test)


def config_schema(cls: type = RunConfig) -> Object:
    """The ``config`` of a run of ``cls`` (RunConfig; or a subclass with more settings): ``run``
    holds its fields, each with the rule ``cls`` checks it by, ``resolved`` the same fields
    (those of :data:`FROM_PRESET` never null) and the preset's loss, optimizer and shuffling."""
    run = fields_object(cls)
    resolved = Object({
        **{name: _given(rule) if name in FROM_PRESET else rule for name, rule in run.fields.items()},
        "loss": STRING, "optimizer": STRING, "shuffle": boolean,
    })
    return Object({"run": run, "resolved": resolved, "model": JSON_OBJECT, "update": JSON_OBJECT,
                   "train_samples": non_negative_int, "evaluated_on": one_of(EVALUATED_ON),
                   "validation_samples": positive_int})


#: ``config`` of a preset's run, and its ``run`` and ``resolved`` parts.
CONFIG = config_schema(RunConfig)
RUN, RESOLVED = CONFIG.fields["run"], CONFIG.fields["resolved"]


def check_run_record(record: Any, what: str = "run record") -> None:
    """Raise :class:`~purenn.errors.RecordError` unless ``record`` is a preset run's record: the
    envelope (:func:`purenn.io.records.check_record`), ``config`` as above, the copies of one
    setting equal, the settings that go together consistent, the split as ``run.validation`` says,
    and no more samples trained on (and held out) than the limit. ``what`` starts each message."""
    check_record(record, what)
    check_schema(record["config"], CONFIG, what, "config")
    check_agreement(record, setting_copies(record), what)
    _check_together(lookup(record, "config.run"), what)
    _check_split(record, what)


def _check_together(run: Any, what: str) -> None:
    """The settings of ``config.run`` (when the record has one) that only make sense together
    (RunConfig's own checks of several fields: a split seed needs a split, ...)."""
    if not isinstance(run, dict):
        return
    try:
        RunConfig(**{k: v for k, v in run.items() if k in attrs.fields_dict(RunConfig)})
    except ArgumentError as e:
        raise RecordError(f"{what}: `config.run`: {e.message}") from None


def _check_split(record: dict[str, Any], what: str) -> None:
    """``evaluated_on`` and ``validation_samples`` as ``config.run.validation`` says, and no more
    samples trained on and held out than the limit."""
    fraction = lookup(record, "config.run.validation")
    split = fraction is not None and fraction is not ABSENT
    evaluated_on, held = lookup(record, "config.evaluated_on"), lookup(record, "config.validation_samples")
    expected = "validation" if split else "test"
    if evaluated_on is not ABSENT and evaluated_on != expected:
        raise RecordError(f"{what}: `config.evaluated_on` must be {expected!r} when `config.run.validation` "
                          f"is {show(None if fraction is ABSENT else fraction)}, got {show(evaluated_on)}")
    if split and (evaluated_on is ABSENT or held is ABSENT):
        raise RecordError(f"{what}: a run with `config.run.validation` {show(fraction)} must say "
                          "`config.evaluated_on` and `config.validation_samples`")
    if not split and held is not ABSENT:
        raise RecordError(f"{what}: `config.validation_samples` ({show(held)}) needs "
                          "`config.run.validation`, which is not set")
    limit, samples = lookup(record, "config.resolved.limit"), lookup(record, "config.train_samples")
    used = samples + (held if split else 0) if isinstance(samples, int) else None
    if isinstance(limit, int) and used is not None and used > limit:
        held_too = f" plus `config.validation_samples` ({held})" if split else ""
        raise RecordError(f"{what}: `config.train_samples` ({samples}){held_too} is more than "
                          f"`config.resolved.limit` ({limit})")
    counted = lookup(record, "provenance.samples.train.count")
    if isinstance(counted, int) and isinstance(samples, int) and counted != samples:
        raise RecordError(f"{what}: `provenance.samples.train.count` ({counted}) is not "
                          f"`config.train_samples` ({samples}); both count the samples trained on")


def setting_copies(record: dict[str, Any], cls: type = RunConfig) -> list[tuple[str, ...]]:
    """The groups of places holding one setting in ``record`` (a run of ``cls``), which
    :func:`check_run_record` requires to agree (see the module's docstring)."""
    run = lookup(record, "config.run")
    run = run if isinstance(run, dict) else {}
    return [
        ("seed", "config.run.seed"),
        ("early_stopping.patience", "config.run.patience"),
        *[(f"config.run.{name}", f"config.resolved.{name}") for name in attrs.fields_dict(cls)
          if not (name in FROM_PRESET and run.get(name) is None)],
        *[(f"history.{i}.epochs", "config.resolved.epochs") for i in range(len(record.get("history", [])))],
    ]


def write_run_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write a preset run's ``record`` (:func:`purenn.recipes.runs.run_record`) to ``path`` as
    JSON (sorted keys, indent 2), atomically; a :class:`~purenn.errors.RecordError` if it breaks
    the schema (:func:`check_run_record`), is not plain JSON data, would be larger than
    :data:`~purenn.io.records.MAX_RECORD_BYTES`, or ``path`` cannot be written."""
    what = f"run record for {os.fspath(path)!r}"
    check_run_record(record, what)
    dump_json(path, record, what, MAX_RECORD_BYTES)


def read_run_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a preset run's record and check it (:func:`check_run_record`); a file larger than
    :data:`~purenn.io.records.MAX_RECORD_BYTES` is refused unread."""
    where = os.fspath(path)
    record = load_json(where, "run record", MAX_RECORD_BYTES)
    check_run_record(record, f"run record {where!r}")
    return record
