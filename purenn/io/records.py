"""Run records: a JSON file saying what a training run was, what it gave, and on what.

This module holds the envelope every run record has, and the schema toolkit records are checked
with; what ``config`` holds for one kind of run is that kind's (a preset's run:
:mod:`purenn.recipes.records`, whose reader checks the envelope and its ``config`` both).

Schema (one JSON object; keys written sorted, indent 2). Fields marked required must be present;
the others, when present, must have the type and range shown; extra keys anywhere are allowed and
kept::

    format    "purenn.run/1"                                                       required
    config    object: the run's settings (a preset's run: see purenn.recipes.records) required
    seed      non-negative int: the seed every generator of the run was spawned from  required
    digest    str: params_digest(final params), exactly 64 lowercase hex characters  required
    versions  object: environment(): python, numpy, purenn, platform, cpu, blas, blas_version,
              blas_architecture (str or null), blas_threads (non-negative int or null)
    history   list of objects, one per epoch, numbered 1, 2, ... in order; each with
              epoch (positive int, at most ``epochs``), epochs (positive int: the run's epochs),
              loss (finite number >= 0: a run that finished never had another), and maybe
              val_loss (number >= 0, inf or nan: a test forward that overflowed, or null),
              val_accuracy (number in [0, 1] or null), lr_scale (number in [0, 1] or null),
              digest (params_digest of the params and layer state at the epoch's end, or null),
              accuracy (the training accuracy, number in [0, 1] or null), metrics (object of
              numbers, or null), average_digest (the averaged params' digest, or null)
    metrics   object: final evaluation: test_accuracy (number in [0, 1]), train_seconds
              (finite number >= 0), ...
    early_stopping  object, when the run had a patience, all four required: monitor (str),
              patience (positive int), stopped_early (bool), best_epoch (positive int, at most
              the epochs run, or null)
    provenance  object (purenn.io.provenance; records written before it have none), its keys
              optional: command (list of str), purenn (str), function (str), git (object:
              purenn, code, each null or {commit: 40 lowercase hex characters, dirty: bool}),
              data_files (object: path -> SHA-256, 64 lowercase hex characters), samples
              (object: split name -> {count: non-negative int, sha256: 64 hex characters})

The final ``digest`` must be the digest of the epoch whose params the run kept (the last, or with
early stopping ``best_epoch``), when that epoch has one, so a record edited in one place only is
refused rather than silently repeated with the other value.

``write_record`` and ``read_record`` check the same rules (:func:`check_record`), so a record that
would not read back is never written; every refusal is a :class:`RecordError` naming the field
(``history[0].loss``), what it must be, and the value found. A file larger than
:data:`MAX_RECORD_BYTES` is refused before it is read, and never written. Non-finite floats are
written as Python's ``json`` does (``NaN``, ``Infinity``) and read back exactly; NumPy scalars and
arrays are written as plain numbers and lists.

The schema toolkit (:class:`Object`, :class:`ListOf`, :func:`fields_object`, :func:`check_schema`,
:func:`check_agreement`, :func:`load_json`) lives in :mod:`purenn.io.schema` and is re-exported
here; it serves the preset run's record (:mod:`purenn.recipes.records`) and the experiment
record (:mod:`purenn.experiments.record`) too.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
from typing import Any

import numpy as np

from purenn.errors import ArgumentTypeError, RecordError
from purenn.io.environment import fingerprint
from purenn.io.schema import (  # the schema toolkit, re-exported: records import it from here
    ABSENT, STRING, ListOf, Object, check_agreement, check_schema, dump_json, fields_object,
    load_json, lookup, show,
)
from purenn.tree import tree_leaves
from purenn.validation import (
    Rule, boolean, non_negative_int, non_negative_number, optional, positive_int, real,
)
from purenn.version import __version__

__all__ = [
    "RecordError", "RECORD_FORMAT", "REQUIRED_KEYS", "MAX_RECORD_BYTES", "params_digest", "environment",
    "environment_differences", "make_record", "write_record", "read_record", "check_record", "SCHEMA",
    # the schema toolkit, shared with the preset run's record and the experiment record
    "Object", "ListOf", "fields_object", "check_schema", "check_agreement", "lookup", "ABSENT",
    "load_json", "dump_json", "show", "STRING", "JSON_OBJECT", "DIGEST", "VERSIONS", "FRACTION",
    "LOSS", "SECONDS", "PROVENANCE", "SHA256",
]

RECORD_FORMAT = "purenn.run/1"
REQUIRED_KEYS = ("format", "config", "seed", "digest")
#: The largest run record read or written, in bytes (16 MiB). A record holds about 270 bytes per
#: epoch besides some 2.5 kB of settings: this is some 60 000 epochs, where the presets' runs of
#: 20 epochs give about 8 kB. A larger file is refused before it is read.
MAX_RECORD_BYTES = 16 * 2**20
_DIGEST_TAG = b"purenn.params_digest/1\0"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def params_digest(params: Any, *, state: Any = None) -> str:
    """SHA-256 (hex) of a params tree: its structure, and each leaf's dtype, shape and bytes.

    ``state``: a model's state (BatchNorm's running statistics). When it holds any array, the
    digest is that of the pair ``{"params": params, "state": state}``, so a run's digest covers
    everything its predictions depend on; a state without arrays (a model without stateful
    layers) leaves the digest of ``params`` alone as it was.

    Hashed, in order: a version tag; the structure as canonical JSON (dict keys sorted, tuple and
    list told apart, each leaf as its little-endian dtype and shape); then every leaf's raw bytes,
    little-endian, C order, in that same order. Any change of a value (even 0.0 -> -0.0), a
    dtype or a shape changes the digest; dict insertion order and memory layout do not.
    """
    if state is not None and tree_leaves(state):
        params = {"params": params, "state": state}
    leaves: list[np.ndarray] = []

    def outline(node: Any) -> Any:
        if isinstance(node, dict):
            for k in node:
                if not isinstance(k, str):
                    raise ArgumentTypeError(f"params_digest: dict keys must be str, got {k!r}")
            return {"dict": [[k, outline(node[k])] for k in sorted(node)]}
        if isinstance(node, (tuple, list)):
            return {"tuple" if isinstance(node, tuple) else "list": [outline(v) for v in node]}
        a = np.asarray(node)
        if a.dtype.kind not in "biufc":
            raise ArgumentTypeError(f"params_digest: leaves must be numeric arrays, got dtype {a.dtype}")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        leaves.append(a)
        return {"dtype": a.dtype.str, "shape": list(a.shape)}

    structure = json.dumps(outline(params), sort_keys=True, separators=(",", ":"))
    h = hashlib.sha256(_DIGEST_TAG)
    h.update(structure.encode())
    for a in leaves:
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


def environment() -> dict[str, Any]:
    """What a run's bits depend on: Python, NumPy, purenn, the platform, and
    :func:`purenn.io.environment.fingerprint`'s CPU model, BLAS library, version and threads."""
    return {**fingerprint(), "purenn": __version__}


def environment_differences(record: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (recorded, here)}`` for each field of the record's ``versions`` that differs from
    this machine's :func:`environment` (fields this purenn does not record are left out)."""
    here = environment()
    recorded = record.get("versions", {})
    return {k: (v, here[k]) for k, v in recorded.items() if k in here and here[k] != v}


def make_record(*, config: dict[str, Any], seed: int, digest: str,
                history: list[Any] | None = None, metrics: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A record with the envelope above, ``format`` and ``versions`` (environment()) filled in."""
    record = {"format": RECORD_FORMAT, "config": config, "seed": seed, "digest": digest,
              "versions": environment(), "history": list(history or []), "metrics": metrics or {}}
    record.update(extra)
    check_record(record)
    return record


def write_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` as JSON (sorted keys, indent 2), atomically.

    Raises :class:`RecordError` if the record breaks the schema, is not plain JSON data, would be
    larger than :data:`MAX_RECORD_BYTES`, or ``path`` cannot be written (see
    :func:`purenn.io.atomic.check_writable`).
    """
    where = os.fspath(path)
    check_record(record, f"run record for {where!r}")
    dump_json(path, record, f"run record for {where!r}", MAX_RECORD_BYTES)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`write_record` and check it (:func:`check_record`); a file
    larger than :data:`MAX_RECORD_BYTES` is refused unread."""
    where = os.fspath(path)
    record = load_json(where, "run record", MAX_RECORD_BYTES)
    check_record(record, f"run record {where!r}")
    return record


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)



#: a JSON object (a dict), whatever it holds
JSON_OBJECT = Rule("a JSON object", lambda v: isinstance(v, dict))
#: a params digest: exactly 64 lowercase hex characters, nothing before or after
DIGEST = Rule("64 lowercase hex characters (params_digest)", lambda v: isinstance(v, str),
              lambda v: _HEX64.fullmatch(v) is not None)
#: a finished run's training loss: finite (fit stops a run whose loss is not) and never negative
LOSS = Rule("a finite number >= 0", non_negative_number.kind, non_negative_number.test)
#: a duration: finite and never negative
SECONDS = LOSS
#: an accuracy, a fraction of samples: [0, 1]
FRACTION = real(0.0, 1.0, high_open=False)
_test_loss = Rule("a number >= 0, inf or nan (a test forward that overflowed)", _is_real,
                  lambda v: math.isnan(v) or v >= 0)
_string_or_null = optional(STRING)
#: the machine a run ran on (environment()); other keys are kept as they are
VERSIONS = Object({
    **{k: _string_or_null for k in ("python", "numpy", "purenn", "platform", "cpu", "blas",
                                     "blas_version", "blas_architecture")},
    "blas_threads": optional(non_negative_int),
})

_NUMBERS = Rule("an object of numbers", lambda v: isinstance(v, dict),
                lambda v: all(isinstance(k, str) and _is_real(x) for k, x in v.items()))
#: a SHA-256 digest in hex: exactly 64 lowercase hex characters (a file's, a sample list's)
SHA256 = Rule("64 lowercase hex characters (a SHA-256)", lambda v: isinstance(v, str),
              lambda v: _HEX64.fullmatch(v) is not None)
_GIT = Rule("null or {commit: 40 lowercase hex characters, dirty: bool}",
            lambda v: v is None or isinstance(v, dict),
            lambda v: v is None or (set(v) == {"commit", "dirty"} and isinstance(v["commit"], str)
                                    and re.fullmatch(r"[0-9a-f]{40}", v["commit"]) is not None
                                    and isinstance(v["dirty"], bool)))
_MAP_OF_SHA256 = Rule("an object of path -> SHA-256 (64 lowercase hex characters)",
                      lambda v: isinstance(v, dict),
                      lambda v: all(isinstance(k, str) and isinstance(d, str) and _HEX64.fullmatch(d)
                                    for k, d in v.items()))
#: where a run's result came from (purenn.io.provenance), every key optional
PROVENANCE = Object({
    "command": ListOf(STRING), "purenn": STRING, "function": STRING,
    "git": Object({"purenn": _GIT, "code": _GIT}, closed=True),
    "data_files": _MAP_OF_SHA256,
    "samples": Rule("an object of split name -> {count, sha256}", lambda v: isinstance(v, dict),
                    lambda v: all(isinstance(k, str) and isinstance(s, dict) and set(s) == {"count", "sha256"}
                                  and non_negative_int.kind(s["count"]) and non_negative_int.test(s["count"])
                                  and isinstance(s["sha256"], str) and _HEX64.fullmatch(s["sha256"])
                                  for k, s in v.items())),
})

_EPOCH = Object({
    "epoch": positive_int, "epochs": positive_int, "loss": LOSS,
    "val_loss": optional(_test_loss), "val_accuracy": optional(FRACTION),
    "lr_scale": optional(real(0.0, 1.0, high_open=False)), "digest": optional(DIGEST),
    "accuracy": optional(FRACTION), "metrics": optional(_NUMBERS), "average_digest": optional(DIGEST),
}, required=("epoch", "epochs", "loss"))
#: The envelope of every run record (the module's docstring); ``config`` is any JSON object here.
SCHEMA = Object({
    "config": JSON_OBJECT,
    "seed": non_negative_int,
    "digest": DIGEST,
    "versions": VERSIONS,
    "history": ListOf(_EPOCH),
    "metrics": Object({"test_accuracy": FRACTION, "train_seconds": SECONDS}),
    "early_stopping": Object({"monitor": STRING, "patience": positive_int, "stopped_early": boolean,
                              "best_epoch": optional(positive_int)},
                             required=("monitor", "patience", "stopped_early", "best_epoch")),
    "provenance": PROVENANCE,
}, required=REQUIRED_KEYS)


def check_record(record: Any, what: str = "run record") -> None:
    """Raise :class:`RecordError` unless ``record`` has the envelope above: each field of the
    type and range shown, the epochs numbered in order and the final digest the kept epoch's.
    ``what`` starts each message. (A preset's run: :func:`purenn.recipes.records.check_run_record`
    checks its ``config`` too.)"""
    if not isinstance(record, dict):
        raise RecordError(f"{what} must be a JSON object (dict), got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise RecordError(f"{what} lacks required key(s) {missing}; required: {list(REQUIRED_KEYS)}")
    if record["format"] != RECORD_FORMAT:
        raise RecordError(f"{what} has format {show(record['format'])}; this purenn reads "
                          f"{RECORD_FORMAT!r}")
    check_schema(record, SCHEMA, what)
    _check_epochs(record, what)


def _check_epochs(record: dict[str, Any], what: str) -> None:
    """Epochs numbered 1, 2, ... (none past ``epochs``), and the final digest that of the epoch
    whose params the run kept."""
    history = record.get("history", [])
    for i, entry in enumerate(history):
        if entry["epoch"] != i + 1 or entry["epoch"] > entry["epochs"]:
            raise RecordError(f"{what}: `history[{i}].epoch` must be {i + 1} (epochs are numbered "
                              f"from 1, in order, up to `epochs` {entry['epochs']}), got {show(entry['epoch'])}")
    early = record.get("early_stopping")
    kept = len(history) if early is None or early["best_epoch"] is None else early["best_epoch"]
    if kept > len(history):
        raise RecordError(f"{what}: `early_stopping.best_epoch` ({kept}) is past the "
                          f"{len(history)} epochs of `history`")
    theirs = history[kept - 1].get("digest") if kept else None
    if theirs is not None and theirs != record["digest"]:
        raise RecordError(f"{what}: `digest` is {show(record['digest'])} but the params it kept, "
                          f"epoch {kept}'s, have `history[{kept - 1}].digest` {show(theirs)}; they "
                          "must agree (was the record edited?)")


