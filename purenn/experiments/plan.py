"""What an experiment runs (see :mod:`purenn.experiments.study`): the run function and its kind,
the seeds, the shared settings and the grid, each checked before any run starts."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from purenn.errors import ArgumentError
from purenn.experiments.record_schema import MAX_RUNS, groups_of, json_scalar, setting_name
from purenn.experiments.seeds import MAX_SEEDS, parse_seeds
from purenn.experiments.tasks import MNIST_FUNCTION, XOR_FUNCTION, XorTask, mnist_trial, xor_trial
from purenn.io.provenance import function_name
from purenn.recipes.runs import RunConfig

__all__ = ["Plan", "kind_of", "make_plan"]

#: purenn's own run functions, by name: their kind, and the function
OWN = {MNIST_FUNCTION: ("mnist", mnist_trial), XOR_FUNCTION: ("xor", xor_trial)}


@attrs.frozen
class Plan:
    """What an experiment runs: ``fn`` (of ``kind``, named ``function``) over ``groups`` x
    ``seeds``, with the shared ``settings``."""

    fn: Callable[..., Any]
    kind: str
    function: str
    settings: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: tuple[int, ...]

    @property
    def groups(self) -> list[dict[str, Any]]:
        return groups_of(self.grid)

    def as_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "function": self.function, "settings": self.settings,
                "grid": self.grid, "seeds": list(self.seeds)}


def kind_of(fn: Callable[..., Any]) -> str:
    """``"mnist"`` or ``"xor"`` for purenn's own run functions, ``"function"`` for any other."""
    return OWN.get(function_name(fn), ("function", None))[0]


def make_plan(fn: Any, seeds: Any, grid: Any, settings: Any) -> Plan:
    if not callable(fn):
        raise ArgumentError(f"the run function must be callable, called as fn(seed, **settings); got {fn!r:.80}")
    kind = kind_of(fn)
    settings = _settings("settings", settings or {})
    grid = _grid(grid or {})
    both = sorted(set(settings) & set(grid))
    if both:
        raise ArgumentError(f"{both} are in both `settings` and `grid`: a setting is either shared by "
                            "every run or swept")
    plan = Plan(fn, kind, function_name(fn), settings, grid, _seeds(seeds))
    size = len(plan.groups) * len(plan.seeds)
    if size > MAX_RUNS:
        raise ArgumentError(f"the grid and seeds make {size} runs, more than the {MAX_RUNS} an experiment may hold")
    for group in plan.groups:
        _check_task(kind, {**settings, **group})
    return plan


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, str):
        return parse_seeds(seeds)
    try:
        values = list(seeds)
    except TypeError:
        raise ArgumentError(f"`seeds` must be seeds (range(5), [0, 3], \"0-4\"), got {seeds!r:.80}") from None
    if not 1 <= len(values) <= MAX_SEEDS or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 0 for s in values):
        raise ArgumentError(f"`seeds` must hold 1 to {MAX_SEEDS} non-negative integers, got {values!r:.80}")
    if len(set(values)) != len(values):
        raise ArgumentError(f"`seeds` must name each seed once, got {values!r:.80}")
    return tuple(int(s) for s in values)


def _settings(what: str, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, Mapping):
        raise ArgumentError(f"`{what}` must map setting names to values, got {type(settings).__name__}")
    for name, value in settings.items():
        if not (setting_name.kind(name) and setting_name.test(name)):
            raise ArgumentError(f"`{what}`: a setting's name must be {setting_name.what}, got {name!r:.80}")
        if not json_scalar.kind(value):
            raise ArgumentError(f"`{what}`: setting `{name}` must be {json_scalar.what} (a record holds "
                                f"it), got {value!r:.80}")
    return {name: _plain(value) for name, value in settings.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _grid(grid: Any) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise ArgumentError(f"`grid` must map setting names to lists of values, got {type(grid).__name__}")
    out = {}
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ArgumentError(f"`grid`: the values of `{name}` must be a list, got {values!r:.80}")
        values = list(values)
        if not values:
            raise ArgumentError(f"`grid`: `{name}` has no values; give at least one")
        checked = [_settings("grid", {name: v})[name] for v in values]
        keys = [(type(v).__name__, v) for v in checked]
        if len(set(keys)) != len(keys):
            raise ArgumentError(f"`grid`: `{name}` names a value twice: {values!r:.80}")
        out[str(name)] = checked
    return {name: out[name] for name in sorted(out)}  # the order groups_of takes, and a JSON file keeps


def _check_task(kind: str, settings: dict[str, Any]) -> None:
    """The settings of a run of purenn's own kinds must make its task (a RunConfig, an XorTask)."""
    if kind == "function":
        return
    cls = RunConfig if kind == "mnist" else XorTask
    known = {f.name for f in attrs.fields(cls)} - {"seed"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ArgumentError(f"{unknown} are not settings of a {kind} run; it has {sorted(known)}")
    try:
        cls(**{"seed": 0, **({"preset": "mlp"} if kind == "mnist" and "preset" not in settings else {}),
               **settings})
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"the settings {settings!r:.200} do not make a {kind} run: {e}") from None
