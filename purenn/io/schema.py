"""The schema toolkit of purenn's JSON records: reading and writing JSON files within a size
limit, and checking a document against a schema of :class:`Object`, :class:`ListOf` and
:class:`~purenn.validation.Rule` with messages that name the first field that is not as it must be.

It serves the run record (:mod:`purenn.io.records`), the preset run's ``config``
(:mod:`purenn.recipes.records`) and the experiment record (:mod:`purenn.experiments.record`).
"""

from __future__ import annotations

import json
import os
import re
import reprlib
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, RecordError
from purenn.io.atomic import atomic_write_text, read_regular_file
from purenn.validation import Rule

__all__ = ["ABSENT", "STRING", "ListOf", "Object", "check_agreement", "check_schema", "dump_json",
           "fields_object", "load_json", "lookup", "show"]


def load_json(path: str | os.PathLike[str], what: str, limit: int) -> Any:
    """The JSON document in the regular file ``path`` of at most ``limit`` bytes; a
    :class:`RecordError` starting with ``what`` ("run record") and naming the path otherwise."""
    where = os.fspath(path)
    try:
        text = read_regular_file(where, limit=limit).decode("utf-8")
    except FileNotFoundError:
        raise RecordError(f"{what} not found: {where!r}") from None
    except ArgumentError as e:  # a directory, a FIFO, a device, a file too large: never read
        raise RecordError(f"{what} {e.message}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL in the path
        raise RecordError(f"cannot read {what} {where!r}: {e}") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RecordError(f"{what} {where!r} is not valid JSON: {e}") from None


def dump_json(path: str | os.PathLike[str], data: Any, what: str, limit: int) -> None:
    """Write ``data`` to ``path`` as JSON (sorted keys, indent 2), atomically, unless it is not
    plain JSON data or its text would be more than ``limit`` bytes (which could not be read back):
    a :class:`RecordError` starting with ``what`` then, and nothing written."""
    try:
        text = json.dumps(data, sort_keys=True, indent=2, default=_plain) + "\n"
    except (TypeError, ValueError, RecursionError) as e:
        raise RecordError(f"{what} is not plain JSON data: {e}") from None
    size = len(text.encode("utf-8"))
    if size > limit:
        raise RecordError(f"{what} would be {size} bytes, more than the {limit} such a file may "
                          "have (it could not be read back); record fewer runs or epochs")
    try:
        atomic_write_text(path, text)
    except ArgumentError as e:  # a path that cannot be written: a folder, a device, ...
        raise RecordError(e.message, hint=e.hint) from None


@attrs.frozen
class Object:
    """A JSON object whose known keys hold what ``fields`` says (a Rule, Object or ListOf each);
    ``required`` ones must be there; ``closed``: no other key is allowed."""

    fields: dict[str, Any]
    required: tuple[str, ...] = ()
    closed: bool = False


@attrs.frozen
class ListOf:
    """A JSON array each of whose items is ``item`` (a Rule, an Object or a ListOf)."""

    item: Any


def check_schema(value: Any, spec: Any, what: str, path: str = "") -> None:
    """Raise :class:`RecordError` unless ``value`` is what ``spec`` says; the message starts
    with ``what`` and names the dotted ``path`` of the first field that is not."""
    if isinstance(spec, Rule):
        if not _passes(spec, value):
            raise RecordError(f"{what}: `{path}` must be {spec.what}, got {show(value)}"
                              f"{'' if value is None else f' of type {type(value).__name__}'}")
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise RecordError(f"{what}: `{path}` must be a list, got {show(value)}")
        for i, item in enumerate(value):
            check_schema(item, spec.item, what, f"{path}[{i}]")
    else:
        _check_object(value, spec, path, what)


def _check_object(value: Any, spec: Object, path: str, what: str) -> None:
    if not isinstance(value, dict):
        raise RecordError(f"{what}: `{path}` must be a JSON object, got {show(value)}")
    missing = [k for k in spec.required if k not in value]
    if missing:
        raise RecordError(f"{what}: {f'`{path}` ' if path else ''}lacks required key(s) {missing}")
    unknown = [k for k in value if k not in spec.fields]
    if spec.closed and unknown:
        raise RecordError(f"{what}: `{path}` has unknown key(s) {show(unknown)}; it may hold "
                          f"only {list(spec.fields)}")
    for key, sub in spec.fields.items():
        if key in value:
            check_schema(value[key], sub, what, f"{path}.{key}" if path else key)


def _passes(rule: Rule, value: Any) -> bool:
    try:
        return bool(rule.kind(value) and rule.test(value))
    except (ArithmeticError, TypeError, ValueError):  # e.g. math.isfinite(10**400)
        return False


def fields_object(cls: type, *, exclude: tuple[str, ...] = (), closed: bool = False) -> Object:
    """The :class:`Object` of an attrs class's fields (but ``exclude``), each checked by the
    field's own validator, a :class:`~purenn.validation.Rule`, so what the schema accepts the class
    accepts; the fields without a default are required. An
    :class:`~purenn.errors.ArgumentTypeError` for a field whose validator is not a Rule."""
    fields = [f for f in attrs.fields(cls) if f.name not in exclude]
    for f in fields:
        if not isinstance(f.validator, Rule):
            raise ArgumentTypeError(f"{cls.__name__}.{f.name}'s validator must be a purenn.validation.Rule "
                                    f"for records to check the field by it, got {f.validator!r:.80}")
    return Object({f.name: f.validator for f in fields},
                  required=tuple(f.name for f in fields if f.default is attrs.NOTHING), closed=closed)


def check_agreement(record: dict[str, Any], groups: Any, what: str) -> None:
    """Raise :class:`RecordError` unless the values at each group of dotted paths (``"seed"``,
    ``"config.run.seed"``, ``"history.0.epochs"``) that ``record`` holds are equal: places that
    say one setting must agree (was the record edited in one place only?)."""
    for paths in groups:
        found = [(p, v) for p in paths if (v := lookup(record, p)) is not ABSENT]
        for (p, v), (q, w) in zip(found, found[1:]):
            if v != w:
                raise RecordError(
                    f"{what}: `{_dotted(p)}` is {show(v)} but `{_dotted(q)}` is {show(w)}; both say "
                    "the same setting and must agree (was the record edited in one place only?)"
                )


#: What :func:`lookup` gives for a path the record does not hold.
ABSENT: Any = object()


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list indices as numbers), or :data:`ABSENT`."""
    node: Any = record
    for key in path.split("."):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return ABSENT
    return node


def _dotted(path: str) -> str:
    """``history.2.epochs`` as a message writes it: ``history[2].epochs``."""
    return re.sub(r"\.(\d+)", r"[\1]", path)


#: a string
STRING = Rule("a string", lambda v: isinstance(v, str))

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def show(value: Any) -> str:
    """``value`` for a message: its repr, shortened (a hostile record may hold anything)."""
    return _repr.repr(value)


def _plain(value: Any) -> Any:
    """``json.dumps``'s ``default``: NumPy scalars and arrays as plain data; a TypeError (as json
    expects) for anything else."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise ArgumentTypeError(f"a value of type {type(value).__name__} ({value!r:.80})")
