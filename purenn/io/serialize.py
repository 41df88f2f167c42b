"""Frozen attrs records (layers, models) <-> plain JSON data, and params trees' structure.

A record becomes ``{"type": name, "fields": {...}}`` with one entry per ``__init__`` argument;
values are encoded recursively::

    Sequential(layers=(Dense(784, 100), Tanh()))
    -> {"type": "Sequential", "fields": {"layers": [
           {"type": "Dense", "fields": {"in_features": 784, "out_features": 100, ...}},
           {"type": "Tanh", "fields": {}}]}}

    record                -> {"type": name, "fields": {field: value, ...}}
    tuple or list         -> JSON array (comes back as a tuple; the class's converter, if any,
                             turns it into whatever it holds, e.g. Reshape's shape)
    dict with str keys    -> {"dict": {key: value, ...}}
    None, bool, int, str  -> itself;  float -> itself, or {"float": "nan" | "inf" | "-inf"}
    NumPy scalar          -> the matching Python scalar

Nesting is bounded: data nested more than :data:`MAX_DEPTH` levels deep (JSON arrays and objects
inside each other; a ``Sequential`` inside a ``Sequential`` is two levels) is refused with a
:class:`SerializeError` when encoding and when decoding, so a hostile file cannot exhaust the
stack. The same bound holds for params trees. So is size: more than :data:`MAX_RECORDS` records
in one model are refused, when encoding and, before the next one is built, when decoding.

Decoding looks each name up in a registry built at call time from every public layer class in
:mod:`purenn.layers` (each name in its ``__all__`` that subclasses :class:`~purenn.layers.base.Layer`),
likewise the optimizers, transformations and schedules (see :func:`record_registry`), plus
the user's own classes given as ``custom=``: a list of attrs classes (registered under their
``__name__``) or a ``{name: class}`` mapping. Round trip gives an equal record:
``from_data(to_data(m)) == m``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import attrs
import numpy as np

import purenn.layers as layers  # noqa: PLR0402 - the submodule itself; io never imports the package root
import purenn.optim as optim  # noqa: PLR0402
from purenn.errors import SerializeError
from purenn.layers.base import Layer
from purenn.optim.averaging import Average
from purenn.optim.base import Optimizer, Transformation
from purenn.optim.schedules import Schedule

__all__ = [
    "SerializeError", "Custom", "MAX_DEPTH", "MAX_RECORDS", "REGISTERED", "record_registry", "to_data",
    "from_data",
    "tree_to_data", "tree_from_data",
]

Custom = Mapping[str, type] | Iterable[type] | None

#: How deeply encoded data may nest (JSON arrays and objects within each other).
MAX_DEPTH = 100
#: Most records (layers, optimizers, schedules: ``{"type": ..., "fields": ...}`` entries) one
#: encoded model may hold: 10,000. The presets have at most 22 layers; a ``Parallel`` of 400
#: ``Parallel`` of 400 branches each would be 160,401. Decoding stops before building one more.
MAX_RECORDS = 10_000


class _Count:
    """The records encoded or decoded so far in one call; :meth:`one_more` refuses the one past
    :data:`MAX_RECORDS`."""

    def __init__(self) -> None:
        self.records = 0

    def one_more(self, where: str) -> None:
        self.records += 1
        if self.records > MAX_RECORDS:
            raise SerializeError(
                f"{_short(where)}: more than {MAX_RECORDS} records (layers, optimizers, schedules) in "
                f"one model; purenn reads and writes at most {MAX_RECORDS} (MAX_RECORDS) (is the "
                "data damaged, or built by mistake?)"
            )


def _short(where: str) -> str:
    return where if len(where) <= 80 else f"{where[:40]}...{where[-30:]}"


def _check_depth(depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise SerializeError(
            f"{_short(where)}: nested more than {MAX_DEPTH} levels deep; purenn reads and writes at "
            f"most {MAX_DEPTH} (is the data damaged, or built by mistake?)"
        )



#: Where purenn's records are: (a module whose ``__all__`` lists public records, their base class).
REGISTERED: tuple[tuple[ModuleType, type], ...] = (
    (layers, Layer), (optim, Optimizer), (optim, Transformation), (optim, Schedule), (optim, Average),
)


def record_registry(custom: Custom = None) -> dict[str, type]:
    """The classes ``from_data`` can rebuild, by name: purenn's public records plus ``custom``.

    Built at call time from the ``__all__`` of :mod:`purenn.layers` and :mod:`purenn.optim`:
    every attrs class there that subclasses one of the base classes ``Layer``, ``Optimizer``,
    ``Transformation``, ``Schedule`` or ``Average`` (the bases themselves excluded). A custom class may
    not reuse the name of a different built-in class (rebuilding would be ambiguous); register
    it under another name with ``custom={"MyDense": MyDense}``.
    """
    registry: dict[str, type] = {}
    for module, base in REGISTERED:
        for name in module.__all__:
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base and attrs.has(obj):
                registry.setdefault(obj.__name__, obj)
    for name, cls in _custom_items(custom):
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise SerializeError(f"custom entry {name!r} must be an attrs class, got {cls!r}")
        known = registry.get(name)
        if known is not None and known is not cls:
            raise SerializeError(
                f"custom class {cls.__module__}.{cls.__qualname__} is named {name!r}, which is "
                f"already the built-in {known.__module__}.{known.__qualname__}; register it under "
                f"another name, e.g. custom={{'My{name}': {cls.__qualname__}}}"
            )
        registry[name] = cls
    return registry


def _custom_items(custom: Custom) -> list[tuple[str, Any]]:
    if custom is None:
        return []
    if isinstance(custom, Mapping):
        return [(str(k), v) for k, v in custom.items()]
    if isinstance(custom, type):
        return [(custom.__name__, custom)]
    return [(getattr(c, "__name__", repr(c)), c) for c in custom]


def to_data(record: Any, *, custom: Custom = None) -> Any:
    """Encode ``record`` (usually a layer or model) as plain JSON data; see the module docstring.

    ``custom`` is only needed for a class registered under a name other than its ``__name__``.
    A record whose class shares a name with a different built-in class is refused, since loading
    it would silently give the built-in.
    """
    names = {cls: name for name, cls in record_registry(custom).items()}
    builtin = record_registry()
    return _encode(record, names, builtin, "model", 0, _Count())


def _encode(value: Any, names: dict[type, str], builtin: dict[str, type], where: str,
            depth: int, count: _Count) -> Any:
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        if math.isfinite(value):
            return value
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return _encode(value.item(), names, builtin, where, depth, count)
    if isinstance(value, (bool, int, float, str)):
        # subclasses (IntEnum, ...) would not come back as themselves
        raise SerializeError(
            f"{where}: a value of type {type(value).__name__} ({value!r:.80}) cannot be saved; "
            "use a plain bool, int, float or str"
        )
    _check_depth(depth + 1, where)
    if isinstance(value, (tuple, list)):
        return [_encode(v, names, builtin, f"{where}[{i}]", depth + 1, count) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise SerializeError(f"{where}: dict keys must be str to be saved, got {k!r}")
        return {"dict": {k: _encode(v, names, builtin, f"{where}[{k!r}]", depth + 1, count)
                         for k, v in value.items()}}
    if attrs.has(type(value)):
        count.one_more(where)
        cls = type(value)
        name = names.get(cls, cls.__name__)
        if name in builtin and builtin[name] is not cls:
            raise SerializeError(
                f"{where}: {cls.__module__}.{cls.__qualname__} has the same name as the built-in "
                f"{name}; rename it, or save and load with custom={{'My{name}': {cls.__qualname__}}}"
            )
        fields = {}
        for a in attrs.fields(cls):
            if a.init:
                fields[a.alias] = _encode(getattr(value, a.name), names, builtin, f"{where}.{a.name}",
                                          depth + 1, count)
        return {"type": name, "fields": fields}
    raise SerializeError(
        f"{where}: a value of type {type(value).__name__} ({value!r:.80}) cannot be saved; "
        "records may hold only other attrs records, tuples, lists, str-keyed dicts, "
        "None, bool, int, float and str"
    )


def from_data(data: Any, *, custom: Custom = None) -> Any:
    """Rebuild the record encoded by :func:`to_data`, looking classes up by name.

    Raises :class:`SerializeError` naming an unknown type (pass it via ``custom=``), an unknown
    or invalid field, or data that is not in this format.
    """
    return _decode(data, record_registry(custom), "model", 0, _Count())


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(data: Any, registry: dict[str, type], where: str, depth: int, count: _Count) -> Any:
    if data is None or type(data) in (bool, int, float, str):
        return data
    _check_depth(depth + 1, where)
    if isinstance(data, list):
        return tuple(_decode(v, registry, f"{where}[{i}]", depth + 1, count) for i, v in enumerate(data))
    if not isinstance(data, dict):
        raise SerializeError(f"{where}: unexpected {type(data).__name__} in saved data: {data!r:.80}")
    if data.keys() == {"float"} and isinstance(data["float"], str) and data["float"] in _FLOATS:
        return _FLOATS[data["float"]]
    if data.keys() == {"dict"} and isinstance(data["dict"], dict):
        return {k: _decode(v, registry, f"{where}[{k!r}]", depth + 1, count)
                for k, v in data["dict"].items()}
    if data.keys() != {"type", "fields"} or not isinstance(data["fields"], dict):
        raise SerializeError(
            f"{where}: expected {{'type': ..., 'fields': {{...}}}}, got keys {sorted(data)}"
        )
    count.one_more(where)
    name = data["type"]
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise SerializeError(
            f"{where}: unknown type {name!r:.80}; it is not one of purenn's layers, optimizers, "
            "transformations or schedules",
            hint=f"if it is your own class, pass it when loading, e.g. custom=[{name}]",
        )
    inits = {a.alias: a for a in attrs.fields(cls) if a.init}
    unknown = sorted(set(data["fields"]) - set(inits))
    if unknown:
        raise SerializeError(
            f"{where}: {name} has no field(s) {unknown}; its fields are {sorted(inits)}"
        )
    kwargs = {k: _decode(v, registry, f"{where}.{k}", depth + 1, count) for k, v in data["fields"].items()}
    try:
        return cls(**kwargs)
    except Exception as e:  # noqa: BLE001 - the data is untrusted: any refusal is a bad file
        raise SerializeError(f"{where}: could not rebuild {name} from fields {kwargs!r:.200}: {e}") from None


def tree_to_data(tree: Any) -> tuple[Any, list[np.ndarray]]:
    """Split a params tree into JSON data for its structure and the list of its leaf arrays.

    dict -> ``{"dict": [[key, sub], ...]}`` (order kept), tuple -> ``{"tuple": [...]}``,
    list -> ``{"list": [...]}``, leaf -> ``{"leaf": i, "dtype": "<f4", "shape": [...]}`` where
    ``i`` indexes the returned leaves. Leaves must be numeric or boolean arrays.
    """
    leaves: list[np.ndarray] = []

    def encode(node: Any, where: str, depth: int) -> Any:
        _check_depth(depth + 2, f"params{where}")  # each node is two JSON levels
        if isinstance(node, dict):
            for k in node:
                if not isinstance(k, str):
                    raise SerializeError(f"params{where}: dict keys must be str, got {k!r}")
            return {"dict": [[k, encode(v, f"{where}[{k!r}]", depth + 3)] for k, v in node.items()]}
        if isinstance(node, (tuple, list)):
            items = [encode(v, f"{where}[{i}]", depth + 2) for i, v in enumerate(node)]
            return {"tuple" if isinstance(node, tuple) else "list": items}
        a = np.asarray(node)
        if a.dtype.kind not in "biufc":
            raise SerializeError(
                f"params{where}: leaves must be numeric arrays, got dtype {a.dtype} "
                f"({type(node).__name__})"
            )
        leaves.append(a)
        return {"leaf": len(leaves) - 1, "dtype": a.dtype.str, "shape": list(a.shape)}

    return encode(tree, "", 0), leaves


def tree_from_data(data: Any, leaves: list[Any], what: str = "params") -> Any:
    """Inverse of :func:`tree_to_data`: put ``leaves`` back into the encoded structure.

    Checks each leaf's dtype and shape against the ones recorded; every leaf must be used once.
    ``what`` names the tree in messages (``"state"``, ``"opt_state"``).
    """
    used: set[int] = set()

    def decode(node: Any, where: str, depth: int) -> Any:
        _check_depth(depth + 2, f"{what}{where}")  # each node is two JSON levels
        if isinstance(node, dict) and node.keys() == {"dict"} and isinstance(node["dict"], list):
            out = {}
            for item in node["dict"]:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise SerializeError(f"{what}{where}: malformed dict entry {item!r:.80}")
                out[item[0]] = decode(item[1], f"{where}[{item[0]!r}]", depth + 3)
            return out
        for kind, make in (("tuple", tuple), ("list", list)):
            if isinstance(node, dict) and node.keys() == {kind} and isinstance(node[kind], list):
                return make(decode(v, f"{where}[{i}]", depth + 2) for i, v in enumerate(node[kind]))
        if isinstance(node, dict) and node.keys() == {"leaf", "dtype", "shape"}:
            i = node["leaf"]
            if type(i) is not int or not 0 <= i < len(leaves) or i in used:
                raise SerializeError(f"{what}{where}: bad or repeated leaf index {i!r:.80}")
            used.add(i)
            a = leaves[i]
            if a.dtype.str != node["dtype"] or list(a.shape) != node["shape"]:
                raise SerializeError(
                    f"{what}{where}: stored array has dtype {a.dtype.str} and shape "
                    f"{tuple(a.shape)}, but the structure says {node['dtype']!s:.40} and "
                    f"{_as_shape(node['shape'])!s:.80}"
                )
            return a
        raise SerializeError(f"{what}{where}: malformed structure entry {node!r:.80}")

    tree = decode(data, "", 0)
    if len(used) != len(leaves):
        raise SerializeError(f"{len(leaves) - len(used)} stored array(s) of {what} are not used by its structure")
    return tree


def _as_shape(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
