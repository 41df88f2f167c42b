"""Seed lists as people write them: ``"0-9"``, ``"1,4,7"``, ``"0-4,10,20-22"``."""

from __future__ import annotations

from purenn.errors import ArgumentError

__all__ = ["parse_seeds", "MAX_SEEDS"]

MAX_SEEDS = 100_000  # more runs than anyone starts by accident


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds ``text`` names, in its order, each once: ranges ``a-b`` (both ends included) and
    single seeds, separated by commas. An :class:`~purenn.errors.ArgumentError` says what is
    wrong otherwise."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            low, high = (int(p) for p in part.split("-", 1)) if "-" in part[1:] else (int(part),) * 2
        except ValueError:
            raise ArgumentError(
                f"cannot read the seeds {text!r}: {part!r} is not a seed or a range; write e.g. "
                "0-9 or 1,4,7 (non-negative integers)") from None
        if high < low:
            raise ArgumentError(f"seed range {part!r} runs backwards; write {high}-{low}")
        if high - low + 1 > MAX_SEEDS:
            raise ArgumentError(f"seed range {part!r} holds more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    if any(s < 0 for s in seeds):
        raise ArgumentError(f"seeds must be non-negative, got {text!r}")
    unique = list(dict.fromkeys(seeds))
    if len(unique) > MAX_SEEDS:
        raise ArgumentError(f"{len(unique)} seeds is more than {MAX_SEEDS}")
    return tuple(unique)
