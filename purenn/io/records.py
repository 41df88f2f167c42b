"""Run records: a JSON file saying what a training run was, what it gave, and on what.

Schema (one JSON object; keys written sorted, indent 2)::

    format    "purenn.run/1"                          required
    config    {...}  the run's settings (model, optimizer, lr, epochs, batch size, data...)  required
    seed      int    the seed every generator of the run was spawned from                   required
    digest    str    params_digest(final params): 64 hex chars                             required
    versions  {...}  environment(): python, numpy, purenn, platform
    history   [...]  one entry per epoch, e.g. {"epoch": 1, "loss": 0.041, "accuracy": 0.93}
    metrics   {...}  final evaluation, e.g. {"test_accuracy": 0.97}

Extra keys are allowed and kept. ``write_record`` and ``read_record`` check the same rules, so a
record that would not read back is never written. Non-finite floats are written as Python's
``json`` does (``NaN``, ``Infinity``) and read back exactly; NumPy scalars and arrays are written
as plain numbers and lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from typing import Any

import numpy as np

from purenn.errors import RecordError
from purenn.io.atomic import atomic_write_text

__all__ = [
    "RecordError", "RECORD_FORMAT", "REQUIRED_KEYS", "params_digest", "environment",
    "make_record", "write_record", "read_record",
]

RECORD_FORMAT = "purenn.run/1"
REQUIRED_KEYS = ("format", "config", "seed", "digest")
_DIGEST_TAG = b"purenn.params_digest/1\0"
_HEX64 = re.compile(r"[0-9a-f]{64}")



def params_digest(params: Any) -> str:
    """SHA-256 (hex) of a params tree: its structure, and each leaf's dtype, shape and bytes.

    Hashed, in order: a version tag; the structure as canonical JSON (dict keys sorted, tuple and
    list told apart, each leaf as its little-endian dtype and shape); then every leaf's raw bytes,
    little-endian, C order, in that same order. Any change of a value (even 0.0 -> -0.0), a
    dtype or a shape changes the digest; dict insertion order and memory layout do not.
    """
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


def environment() -> dict[str, str]:
    """Versions a run depends on: Python, NumPy, purenn, and the platform it ran on."""
    import purenn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "purenn": getattr(purenn, "__version__", "unknown"),
        "platform": platform.platform(),
    }


def make_record(*, config: dict[str, Any], seed: int, digest: str,
                history: list[Any] | None = None, metrics: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A record in the schema above, with ``format`` and ``versions`` (environment()) filled in."""
    record = {"format": RECORD_FORMAT, "config": config, "seed": seed, "digest": digest,
              "versions": environment(), "history": list(history or []), "metrics": metrics or {}}
    record.update(extra)
    _validate(record, "record")
    return record


def write_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` as JSON (sorted keys, indent 2), atomically."""
    where = os.fspath(path)
    _validate(record, f"run record for {where!r}")
    try:
        text = json.dumps(record, sort_keys=True, indent=2, default=_plain)
    except (TypeError, ValueError) as e:
        raise RecordError(f"run record for {where!r} is not plain JSON data: {e}") from None
    atomic_write_text(path, text + "\n")


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a record written by :func:`write_record`."""
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise RecordError(f"run record not found: {where!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(f"cannot read run record {where!r}: {e}") from None
    try:
        record = json.loads(text)
    except ValueError as e:
        raise RecordError(f"run record {where!r} is not valid JSON: {e}") from None
    _validate(record, f"run record {where!r}")
    return record


def _validate(record: Any, what: str) -> None:
    if not isinstance(record, dict):
        raise RecordError(f"{what} must be a JSON object (dict), got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise RecordError(f"{what} lacks required key(s) {missing}; required: {list(REQUIRED_KEYS)}")
    if record["format"] != RECORD_FORMAT:
        raise RecordError(f"{what} has format {record['format']!r}; this purenn reads {RECORD_FORMAT!r}")
    checks = [
        ("config", isinstance(record["config"], dict), "a JSON object"),
        ("seed", isinstance(record["seed"], (int, np.integer)) and not isinstance(record["seed"], bool),
         "an integer"),
        ("digest", isinstance(record["digest"], str) and _HEX64.fullmatch(record["digest"]) is not None,
         "64 lowercase hex characters (params_digest)"),
        ("versions", isinstance(record.get("versions", {}), dict), "a JSON object"),
        ("history", isinstance(record.get("history", []), (list, tuple)), "a list (one entry per epoch)"),
        ("metrics", isinstance(record.get("metrics", {}), dict), "a JSON object"),
    ]
    for key, ok, should in checks:
        if not ok:
            raise RecordError(f"{what}: `{key}` must be {should}, got {record[key]!r:.80}")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__name__} ({value!r:.80})")
