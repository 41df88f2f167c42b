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

Both ``run`` and ``resolved`` follow from ``attrs.fields(RunConfig)``: a setting added to
RunConfig is recorded, read and checked with no other change here.

One setting may be written in several places, and the copies must agree, so a record edited in
one place only is refused rather than silently repeated with the other value: ``seed`` is also
``config.run.seed``; each field of ``run`` is also in ``resolved`` (where ``run`` holding null for
a setting of :data:`FROM_PRESET` means "the preset's", which is not a copy); every epoch's
``epochs`` is ``config.resolved.epochs``; ``early_stopping.patience`` is ``config.run.patience``;
``provenance.samples.train.count`` (records since provenance) is ``config.train_samples``.

:func:`write_run_record` and :func:`read_run_record` check the same rules
(:func:`check_run_record`: the envelope's, then these), within
:data:`~purenn.io.records.MAX_RECORD_BYTES`; every refusal is a :class:`~purenn.errors.RecordError`
naming the field (``config.train_samples``), what it must be, and the value found.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from purenn.errors import RecordError
from purenn.io.records import (
    JSON_OBJECT,
    MAX_RECORD_BYTES,
    STRING,
    Object,
    check_agreement,
    check_record,
    check_schema,
    dump_json,
    fields_object,
    load_json,
    lookup,
)
from purenn.recipes.runs import RunConfig
from purenn.validation import Rule, boolean, non_negative_int

__all__ = ["FROM_PRESET", "CONFIG", "RUN", "RESOLVED", "config_schema", "setting_copies",
           "check_run_record", "read_run_record", "write_run_record"]

#: RunConfig's settings whose ``None`` means "the preset's value": ``resolved`` holds that value.
FROM_PRESET = ("epochs", "batch_size", "lr")


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
                   "train_samples": non_negative_int})


#: ``config`` of a preset's run, and its ``run`` and ``resolved`` parts.
CONFIG = config_schema(RunConfig)
RUN, RESOLVED = CONFIG.fields["run"], CONFIG.fields["resolved"]


def check_run_record(record: Any, what: str = "run record") -> None:
    """Raise :class:`~purenn.errors.RecordError` unless ``record`` is a preset run's record: the
    envelope (:func:`purenn.io.records.check_record`), ``config`` as above, the copies of one
    setting equal and no more samples trained on than the limit. ``what`` starts each message."""
    check_record(record, what)
    check_schema(record["config"], CONFIG, what, "config")
    check_agreement(record, setting_copies(record), what)
    limit, samples = lookup(record, "config.resolved.limit"), lookup(record, "config.train_samples")
    if isinstance(limit, int) and isinstance(samples, int) and samples > limit:
        raise RecordError(f"{what}: `config.train_samples` ({samples}) is more than "
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
