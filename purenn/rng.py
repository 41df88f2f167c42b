"""Random generators as plain data, so a run can stop and continue with the same random numbers.

A NumPy ``Generator`` has two parts that advance: its bit generator (drawn numbers move it) and
the ``SeedSequence`` behind it (each ``spawn`` moves its child counter). :func:`generator_state`
captures both as JSON-able data and :func:`generator_from_state` rebuilds a generator that draws
and spawns exactly what the original would have::

    state = generator_state(rng)
    a = rng.random(3), rng.spawn(2)[0].random()
    b = (r := generator_from_state(state)).random(3), r.spawn(2)[0].random()   # equal to a
"""

from __future__ import annotations

from typing import Any

import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError

__all__ = [
    "generator_state", "generator_from_state", "POOL_SIZES", "MAX_ENTROPY_BITS", "MAX_ENTROPY_WORDS",
    "MAX_SPAWN_KEY", "STATE_DTYPES", "MAX_STATE_WORDS", "MAX_STATE_DEPTH",
]

#: Seed sequences' entropy pool sizes NumPy accepts and a saved state may give, in 32-bit words
#: (NumPy's default is 4).
POOL_SIZES = (4, 64)
#: The largest int a seed sequence's entropy or spawn key may hold: below 2**4096 (NumPy splits
#: each into 32-bit words; a seed from ``default_rng(seed)`` is usually below 2**128).
MAX_ENTROPY_BITS = 4096
#: Most ints in a seed sequence's entropy list.
MAX_ENTROPY_WORDS = 128
#: Most ints in a seed sequence's spawn key (one per generation of ``spawn``).
MAX_SPAWN_KEY = 1024
#: The dtypes of the arrays in NumPy's bit generators' states (MT19937's key: uint32; Philox's
#: counter, key and buffer, SFC64's state: uint64), in either byte order. A saved state's array
#: of any other dtype is refused before an array is made (a ``"<U250000000"`` would take 1 GB).
STATE_DTYPES = ("<u4", ">u4", "<u8", ">u8")
#: The longest array in a bit generator's state: MT19937's key of 624 words.
MAX_STATE_WORDS = 624
#: How deeply a bit generator's state nests dicts: Philox's ``{"state": {"counter": array}}`` is
#: 2 (an array, ``{"array": [...], "dtype": ...}``, counts as a value, not a level).
MAX_STATE_DEPTH = 2


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The full state of ``rng`` as plain data (ints, strings, lists and dicts)."""
    bit = rng.bit_generator
    seq = bit.seed_seq
    if not isinstance(seq, np.random.SeedSequence):
        raise ArgumentError(
            f"cannot capture a generator whose seed sequence is a {type(seq).__name__}; make it "
            "with numpy.random.default_rng(seed) or from a SeedSequence"
        )
    entropy = seq.entropy
    return {
        "bit_generator": type(bit).__name__,
        "state": _plain(bit.state),
        "seed_sequence": {
            "entropy": entropy if isinstance(entropy, int) or entropy is None else [int(e) for e in entropy],
            "spawn_key": [int(k) for k in seq.spawn_key],
            "pool_size": int(seq.pool_size),
            "n_children_spawned": int(seq.n_children_spawned),
        },
    }


def _plain(value: Any) -> Any:
    """A bit generator's state with its arrays (MT19937's key, Philox's counter) as lists."""
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _arrays(value: Any, depth: int = 0) -> Any:
    """A saved bit generator state with its arrays rebuilt, each checked (dtype, length, ints)
    before it is made; an ArgumentError for anything a bit generator's state does not hold."""
    if not isinstance(value, dict):
        return value
    if value.keys() == {"array", "dtype"}:
        return _array(value["array"], value["dtype"])
    if depth >= MAX_STATE_DEPTH:
        raise ArgumentError(f"a bit generator's state nests at most {MAX_STATE_DEPTH} levels deep")
    return {k: _arrays(v, depth + 1) for k, v in value.items()}


def _array(items: Any, dtype: Any) -> np.ndarray:
    if not (isinstance(dtype, str) and dtype in STATE_DTYPES):
        raise ArgumentError(f"a bit generator's state array must have dtype {' or '.join(STATE_DTYPES)}, "
                            f"got {dtype!r:.40}")
    if not (isinstance(items, list) and len(items) <= MAX_STATE_WORDS):
        raise ArgumentError(f"a bit generator's state array must be a list of at most "
                            f"{MAX_STATE_WORDS} ints, got {type(items).__name__} of length "
                            f"{len(items) if isinstance(items, list) else '-'}")
    bound = 1 << (8 * np.dtype(dtype).itemsize)
    if not all(type(v) is int and 0 <= v < bound for v in items):
        raise ArgumentError(f"a bit generator's state array of dtype {dtype} holds a value that is "
                            "not an int in its range")
    return np.asarray(items, dtype=np.dtype(dtype))


def _check_bounds(seq: Any) -> None:
    """A seed sequence NumPy can build at once, as :func:`generator_state` writes one: bounded
    pool, entropy and spawn key of non-negative ints (a damaged file could otherwise ask for
    exabytes, or hand NumPy values it keeps but cannot use)."""
    pool, entropy, key = seq["pool_size"], seq["entropy"], seq["spawn_key"]
    if not (type(pool) is int and POOL_SIZES[0] <= pool <= POOL_SIZES[1]):
        raise ArgumentError(f"pool_size must be an int in [{POOL_SIZES[0]}, {POOL_SIZES[1]}], "
                            f"got {pool!r:.40}")
    _check_ints("entropy", [entropy] if type(entropy) is int else entropy, MAX_ENTROPY_WORDS)
    _check_ints("spawn_key", key, MAX_SPAWN_KEY)
    spawned = seq["n_children_spawned"]
    if not (type(spawned) is int and 0 <= spawned < 1 << 32):  # NumPy keeps it in 32 bits
        raise ArgumentError(f"n_children_spawned must be an int in [0, 2**32), got {spawned!r:.40}")


def _check_ints(name: str, values: Any, most: int) -> None:
    if not (isinstance(values, list) and len(values) <= most
            and all(type(v) is int and 0 <= v < 1 << MAX_ENTROPY_BITS for v in values)):
        raise ArgumentError(f"{name} must be an int or a list of at most {most} ints, each in "
                            f"[0, 2**{MAX_ENTROPY_BITS}), got {values!r:.60}")


def generator_from_state(data: dict[str, Any]) -> np.random.Generator:
    """A generator in the state :func:`generator_state` captured; :class:`ArgumentError` for data
    that is not one (checked before NumPy is given any of it: sizes and dtypes bounded by
    :data:`STATE_DTYPES`, :data:`MAX_STATE_WORDS`, :data:`MAX_STATE_DEPTH`)."""
    try:
        if not isinstance(data, dict):
            raise ArgumentTypeError(f"expected an object, got {type(data).__name__}")
        seq_data = data["seed_sequence"]
        _check_bounds(seq_data)
        seq = np.random.SeedSequence(
            seq_data["entropy"], spawn_key=tuple(seq_data["spawn_key"]),
            pool_size=seq_data["pool_size"], n_children_spawned=seq_data["n_children_spawned"],
        )
        kind = getattr(np.random, data["bit_generator"])
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise ArgumentTypeError(f"{data['bit_generator']!r} is not a NumPy bit generator")
        bit = kind(seq)
        bit.state = _arrays(data["state"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as e:
        why = e.message if isinstance(e, ArgumentError) else f"{type(e).__name__}: {e}"
        raise ArgumentError(f"not a saved random generator state ({why})") from None
    return np.random.Generator(bit)
