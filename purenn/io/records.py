"""Run records: a JSON file saying what a training run was, what it gave, and on what.

Schema (one JSON object; keys written sorted, indent 2). Fields marked required must be present;
the others, when present, must have the type shown; extra keys anywhere are allowed and kept::

    format    "purenn.run/1"                                                       required
    config    object: the run's settings                                           required
      run         object: what was asked (purenn.recipes.runs.RunConfig's fields)
        preset      str (required in ``run``)     seed     non-negative int
        epochs, batch_size, limit, threads, patience   positive int or null (null: the preset's)
        lr          positive number or null        dataset  str
      resolved    object: the settings used: preset, dataset (str), seed (non-negative int),
                  limit (positive int or null), epochs, batch_size (positive int),
                  lr (positive number), loss, optimizer (str), shuffle (bool)
      model       object: purenn.io.serialize.to_data(model)
      update      object: to_data(optimizer)
      train_samples  non-negative int: samples trained on
    seed      non-negative int: the seed every generator of the run was spawned from  required
    digest    str: params_digest(final params), 64 lowercase hex characters        required
    versions  object: environment(): python, numpy, purenn, platform, cpu, blas, blas_version,
              blas_architecture, blas_threads
    history   list of objects, one per epoch: epoch, epochs (positive int), loss (number),
              val_loss, val_accuracy, lr_scale (number or null), digest (params_digest of
              the params and layer state at the epoch's end, or null)
    metrics   object: final evaluation: test_accuracy, train_seconds (number), ...
    early_stopping  object, when the run had a patience: monitor (str), patience (positive
              int), stopped_early (bool), best_epoch (positive int or null)

One setting may be written in several places (``seed`` is also ``config.run.seed`` and
``config.resolved.seed``; ``preset``, ``dataset`` and ``limit`` are in both ``run`` and
``resolved``, as are ``epochs``, ``batch_size`` and ``lr`` when ``run`` overrides them): the copies must agree, so a record edited in one place only is refused rather than
silently repeated with the other value.

``write_record`` and ``read_record`` check the same rules (:func:`check_record`), so a record that
would not read back is never written; every refusal is a :class:`RecordError` naming the field
(``config.train_samples``), what it must be, and the value found. Non-finite floats are written as
Python's ``json`` does (``NaN``, ``Infinity``) and read back exactly; NumPy scalars and arrays are
written as plain numbers and lists.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import reprlib
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, RecordError
from purenn.io.atomic import atomic_write_text, read_regular_file
from purenn.io.environment import fingerprint
from purenn.tree import tree_leaves
from purenn.validation import Rule, boolean, non_negative_int, optional, positive_int, positive_number

__all__ = [
    "RecordError", "RECORD_FORMAT", "REQUIRED_KEYS", "params_digest", "environment",
    "make_record", "write_record", "read_record", "check_record",
]

RECORD_FORMAT = "purenn.run/1"
REQUIRED_KEYS = ("format", "config", "seed", "digest")
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
                    raise TypeError(f"params_digest: dict keys must be str, got {k!r}")
            return {"dict": [[k, outline(node[k])] for k in sorted(node)]}
        if isinstance(node, (tuple, list)):
            return {"tuple" if isinstance(node, tuple) else "list": [outline(v) for v in node]}
        a = np.asarray(node)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"params_digest: leaves must be numeric arrays, got dtype {a.dtype}")
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
    import purenn

    return {**fingerprint(), "purenn": getattr(purenn, "__version__", "unknown")}


def environment_differences(record: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (recorded, here)}`` for each field of the record's ``versions`` that differs from
    this machine's :func:`environment` (fields this purenn does not record are left out)."""
    here = environment()
    recorded = record.get("versions", {})
    return {k: (v, here[k]) for k, v in recorded.items() if k in here and here[k] != v}


def make_record(*, config: dict[str, Any], seed: int, digest: str,
                history: list[Any] | None = None, metrics: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A record in the schema above, with ``format`` and ``versions`` (environment()) filled in."""
    record = {"format": RECORD_FORMAT, "config": config, "seed": seed, "digest": digest,
              "versions": environment(), "history": list(history or []), "metrics": metrics or {}}
    record.update(extra)
    check_record(record)
    return record


def write_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` as JSON (sorted keys, indent 2), atomically.

    Raises :class:`RecordError` if the record breaks the schema, is not plain JSON data, or
    ``path`` cannot be written (see :func:`purenn.io.atomic.check_writable`).
    """
    where = os.fspath(path)
    check_record(record, f"run record for {where!r}")
    try:
        text = json.dumps(record, sort_keys=True, indent=2, default=_plain)
    except (TypeError, ValueError, RecursionError) as e:
        raise RecordError(f"run record for {where!r} is not plain JSON data: {e}") from None
    try:
        atomic_write_text(path, text + "\n")
    except ArgumentError as e:  # a path that cannot be written: a folder, a device, ...
        raise RecordError(e.message, hint=e.hint) from None


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`write_record` and check it (:func:`check_record`)."""
    where = os.fspath(path)
    try:
        text = read_regular_file(where).decode("utf-8")
    except FileNotFoundError:
        raise RecordError(f"run record not found: {where!r}") from None
    except ArgumentError as e:  # a directory, a FIFO, a device: never read
        raise RecordError(f"run record {e.message}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(f"cannot read run record {where!r}: {e}") from None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RecordError(f"run record {where!r} is not valid JSON: {e}") from None
    check_record(record, f"run record {where!r}")
    return record


# --- the schema -------------------------------------------------------------------------------


@attrs.frozen
class _Object:
    """A JSON object whose known keys hold what ``fields`` says; ``required`` ones must be there."""

    fields: dict[str, Any]  # key -> Rule, _Object or _ListOf
    required: tuple[str, ...] = ()


@attrs.frozen
class _ListOf:
    """A JSON array each of whose items is ``item`` (a Rule or an _Object)."""

    item: Any


_string = Rule("a string", lambda v: isinstance(v, str))
_number = Rule("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool))
_object = Rule("a JSON object", lambda v: isinstance(v, dict))
_digest = Rule("64 lowercase hex characters (params_digest)", lambda v: isinstance(v, str),
               lambda v: _HEX64.fullmatch(v) is not None)

_RUN = _Object({
    "preset": _string, "seed": non_negative_int, "epochs": optional(positive_int),
    "batch_size": optional(positive_int), "lr": optional(positive_number),
    "limit": optional(positive_int), "dataset": _string, "threads": optional(positive_int),
    "patience": optional(positive_int),
}, required=("preset",))
_RESOLVED = _Object({
    "preset": _string, "dataset": _string, "seed": non_negative_int,
    "limit": optional(positive_int), "epochs": positive_int, "batch_size": positive_int,
    "lr": positive_number, "loss": _string, "optimizer": _string, "shuffle": boolean,
    "threads": optional(positive_int), "patience": optional(positive_int),
})
_EPOCH = _Object({
    "epoch": positive_int, "epochs": positive_int, "loss": _number,
    "val_loss": optional(_number), "val_accuracy": optional(_number),
    "lr_scale": optional(_number), "digest": optional(_digest),
})
_SCHEMA = _Object({
    "config": _Object({
        "run": _RUN, "resolved": _RESOLVED, "model": _object, "update": _object,
        "train_samples": non_negative_int,
    }),
    "seed": non_negative_int,
    "digest": _digest,
    "versions": _object,
    "history": _ListOf(_EPOCH),
    "metrics": _Object({"test_accuracy": _number, "train_seconds": _number}),
    "early_stopping": _Object({"monitor": _string, "patience": positive_int, "stopped_early": boolean,
                               "best_epoch": optional(positive_int)}),
}, required=REQUIRED_KEYS)

# Places holding one setting: all present copies must be equal. For the overrides, ``run``
# holding null means "the preset's value", which is not a copy.
_COPIES = (
    ("seed", "config.run.seed", "config.resolved.seed"),
    ("config.run.preset", "config.resolved.preset"),
    ("config.run.dataset", "config.resolved.dataset"),
    ("config.run.limit", "config.resolved.limit"),
)
_OVERRIDES = ("epochs", "batch_size", "lr", "threads", "patience")


def check_record(record: Any, what: str = "run record") -> None:
    """Raise :class:`RecordError` unless ``record`` follows the schema above: each field of the
    type shown, and the copies of one setting equal. ``what`` starts each message."""
    if not isinstance(record, dict):
        raise RecordError(f"{what} must be a JSON object (dict), got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise RecordError(f"{what} lacks required key(s) {missing}; required: {list(REQUIRED_KEYS)}")
    if record["format"] != RECORD_FORMAT:
        raise RecordError(f"{what} has format {_show(record['format'])}; this purenn reads "
                          f"{RECORD_FORMAT!r}")
    _check(record, _SCHEMA, "", what)
    _check_copies(record, what)


def _check(value: Any, spec: Any, path: str, what: str) -> None:
    if isinstance(spec, Rule):
        if not _passes(spec, value):
            raise RecordError(f"{what}: `{path}` must be {spec.what}, got {_show(value)}"
                              f"{'' if value is None else f' of type {type(value).__name__}'}")
    elif isinstance(spec, _ListOf):
        if not isinstance(value, (list, tuple)):
            raise RecordError(f"{what}: `{path}` must be a list, got {_show(value)}")
        for i, item in enumerate(value):
            _check(item, spec.item, f"{path}[{i}]", what)
    else:
        _check_object(value, spec, path, what)


def _check_object(value: Any, spec: _Object, path: str, what: str) -> None:
    if not isinstance(value, dict):
        raise RecordError(f"{what}: `{path}` must be a JSON object, got {_show(value)}")
    missing = [k for k in spec.required if k not in value]
    if missing:
        raise RecordError(f"{what}: `{path}` lacks required key(s) {missing}")
    for key, sub in spec.fields.items():
        if key in value:
            _check(value[key], sub, f"{path}.{key}" if path else key, what)


def _passes(rule: Rule, value: Any) -> bool:
    try:
        return bool(rule.kind(value) and rule.test(value))
    except (ArithmeticError, TypeError, ValueError):  # e.g. math.isfinite(10**400)
        return False


def _check_copies(record: dict[str, Any], what: str) -> None:
    groups = list(_COPIES) + [
        (f"config.run.{k}", f"config.resolved.{k}") for k in _OVERRIDES
        if _lookup(record, f"config.run.{k}") not in (None, _ABSENT)
    ]
    for paths in groups:
        found = [(p, v) for p in paths if (v := _lookup(record, p)) is not _ABSENT]
        for (p, v), (q, w) in zip(found, found[1:]):
            if v != w:
                raise RecordError(
                    f"{what}: `{p}` is {_show(v)} but `{q}` is {_show(w)}; both say the same "
                    "setting and must agree (was the record edited in one place only?)"
                )


_ABSENT = object()


def _lookup(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path``, or ``_ABSENT``."""
    node: Any = record
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _ABSENT
        node = node[key]
    return node


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def _show(value: Any) -> str:
    """``value`` for a message: its repr, shortened (a hostile record may hold anything)."""
    return _repr.repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__name__} ({value!r:.80})")
