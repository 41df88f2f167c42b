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

from purenn.errors import ArgumentError

__all__ = ["generator_state", "generator_from_state"]


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


def _arrays(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"array", "dtype"}:
            return np.asarray(value["array"], dtype=np.dtype(value["dtype"]))
        return {k: _arrays(v) for k, v in value.items()}
    return value


def _check_bounds(seq: Any) -> None:
    """A seed sequence NumPy can build at once: bounded pool, entropy and spawn key (a damaged
    file could otherwise ask for exabytes)."""
    pool, entropy, key = seq["pool_size"], seq["entropy"], seq["spawn_key"]
    if not (type(pool) is int and 4 <= pool <= 64):
        raise ValueError(f"pool_size must be an int in [4, 64], got {pool!r:.40}")
    if isinstance(entropy, int) and not isinstance(entropy, bool):
        if not 0 <= entropy < 1 << 4096:
            raise ValueError("entropy out of range")
    elif not (isinstance(entropy, list) and len(entropy) <= 128):
        raise ValueError("entropy must be an int or a short list of ints")
    if not (isinstance(key, list) and len(key) <= 1024):
        raise ValueError("spawn_key must be a list of at most 1024 ints")


def generator_from_state(data: dict[str, Any]) -> np.random.Generator:
    """A generator in the state :func:`generator_state` captured."""
    try:
        seq_data = data["seed_sequence"]
        _check_bounds(seq_data)
        seq = np.random.SeedSequence(
            seq_data["entropy"], spawn_key=tuple(seq_data["spawn_key"]),
            pool_size=seq_data["pool_size"], n_children_spawned=seq_data["n_children_spawned"],
        )
        kind = getattr(np.random, data["bit_generator"])
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise TypeError(f"{data['bit_generator']!r} is not a NumPy bit generator")
        bit = kind(seq)
        bit.state = _arrays(data["state"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ArgumentError(f"not a saved random generator state ({type(e).__name__}: {e})") from None
    return np.random.Generator(bit)
