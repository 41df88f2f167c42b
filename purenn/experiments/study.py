"""Experiments on any training code: a function run over seeds and a grid of settings, on any
executor, resumable, with provenance.

::

    def train(seed, lr, width):          # top level of a module: worker processes import it
        ...
        return {"accuracy": acc, "history": history, "digest": pn.params_digest(params)}

    study = pn.experiments.run(train, seeds=range(5), grid={"lr": [1e-3, 4e-3], "width": [64, 128]},
                               jobs=2, record="runs/study.json")

**The run function** is called as ``fn(seed, **settings)`` (the shared ``settings`` and its
group's values of the ``grid``) and returns a mapping: every key is a metric (a finite number or a
bool) except these, all optional: ``history`` (a :class:`~purenn.training.History`, or a list of
per-epoch mappings of numbers), ``digest`` (:func:`~purenn.io.records.params_digest` of the
params it trained), ``samples`` (``{"train": indices, "test": indices}``: the samples it trained
and tested on, recorded as digests). Inside it, :func:`~purenn.experiments.context.current_run`
says which run it is and :func:`~purenn.experiments.context.report` shows its progress.

**Where it runs**: in this process (``jobs=1``, the default), in ``jobs`` local worker processes,
on a Dask cluster (``scheduler="tcp://HOST:PORT"``) or on any ``executor`` whose ``submit``
returns something with ``result()`` (see :mod:`purenn.experiments.runner`). Outside this process
the function must be importable by the workers: defined at the top level of a module, or of the
script run (then under ``if __name__ == "__main__":``). Every way gives the same results for the
same settings, seeds and BLAS threads.

**The record** (``record="EXP.json"``, :mod:`purenn.experiments.record`) is written atomically
before the first run and after every run that ends, each run with its status ("ok", "failed",
"not_started"), so an interrupted experiment (Ctrl-C: ``KeyboardInterrupt`` goes on to the caller,
after the workers are stopped) keeps every finished run. Calling :func:`run` again with the same
function, settings, grid, seeds and record, or :func:`resume` with the record, runs only what is
missing (not started, or failed); the record it writes then equals an uninterrupted experiment's,
every digest. Only the record's own path is written (and, for purenn's MNIST runs, the run
records named from it): never a path read from the file.

**Provenance** (:mod:`purenn.io.provenance`): every finished run's entry holds the command line,
purenn's version, the git commit (and whether the tree was dirty) of purenn and of the function's
code when they run from a checkout, the function as ``module:qualname``, the SHA-256 of each data
file purenn loaded for it during the run and of each file listed in ``data_files=``, and the
digests of its sample indices.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, RecordError
from purenn.experiments.context import RunContext, running
from purenn.experiments.record import (
    MAX_EPOCHS,
    MAX_METRICS,
    MAX_NAME_LENGTH,
    MAX_RUNS,
    groups_of,
    json_scalar,
    make_experiment,
    pending_entry,
    plan_differences,
    read_experiment,
    run_record_name,
    setting_name,
    write_experiment,
)
from purenn.experiments.runner import Outcome, check_where, describe_executor, run_all
from purenn.experiments.seeds import MAX_SEEDS, parse_seeds
from purenn.experiments.tasks import MNIST_FUNCTION, XOR_FUNCTION, XorTask, mnist_trial, xor_trial
from purenn.io.atomic import check_distinct, check_writable
from purenn.io.provenance import file_digests, function_name, provenance, reading, samples
from purenn.io.records import DIGEST
from purenn.recipes.records import write_run_record
from purenn.recipes.runs import RunConfig
from purenn.training import History

__all__ = [
    "RESERVED",
    "Call",
    "Group",
    "Run",
    "Study",
    "call_run",
    "kind_of",
    "load_function",
    "own_function",
    "resume",
    "run",
]

#: The keys of a run function's result that are not metrics.
RESERVED = ("history", "digest", "samples", "run_record")
_OWN = {MNIST_FUNCTION: ("mnist", mnist_trial), XOR_FUNCTION: ("xor", xor_trial)}


# --- one run, in whichever process runs it ------------------------------------------------------


@attrs.frozen
class Call:
    """One run to make: ``fn(seed, **settings)`` as run ``(group, seed)``, with its checkpoint
    folder (or None) and the session's ``options`` (see :class:`~.context.RunContext`)."""

    fn: Callable[..., Any]
    group: int
    seed: int
    settings: dict[str, Any]
    checkpoint_dir: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


def call_run(call: Call, report: Callable[..., None]) -> dict[str, Any]:
    """Make the run (a runner task: see :mod:`purenn.experiments.runner`): its result as plain
    data, ``{"metrics", "history", "digest", "samples", "data_files", "run_record"}``; an
    :class:`~purenn.errors.ArgumentError` when the function's result is not one a run gives."""
    context = RunContext(call.group, call.seed, call.settings, call.checkpoint_dir, call.options, report)
    with running(context), reading() as files:
        value = call.fn(call.seed, **call.settings)
    return result_data(value, files)


def result_data(value: Any, files: Iterable[str] = ()) -> dict[str, Any]:
    """A run function's result checked and made plain data (see the module's docstring), with
    the SHA-256 of the data ``files`` it read."""
    if not isinstance(value, Mapping):
        raise ArgumentError(f"a run function must return a mapping of metric name -> number (and "
                            f"optionally {', '.join(RESERVED[:3])}), got {type(value).__name__}")
    metrics = {k: _metric(k, v) for k, v in value.items() if k not in RESERVED}
    if len(metrics) > MAX_METRICS:
        raise ArgumentError(f"a run may report at most {MAX_METRICS} metrics, got {len(metrics)}")
    digest = value.get("digest")
    if digest is not None and not (DIGEST.kind(digest) and DIGEST.test(digest)):
        raise ArgumentError(f"`digest` must be {DIGEST.what}, got {digest!r:.80}")
    indices = value.get("samples") or {}
    if not isinstance(indices, Mapping):
        raise ArgumentError(f"`samples` must map a split name to its sample indices, got {type(indices).__name__}")
    return {"metrics": metrics, "history": _history(value.get("history")), "digest": digest,
            "samples": samples(**{str(k): v for k, v in indices.items()}),
            "data_files": file_digests(sorted(files)), "run_record": value.get("run_record")}


def _metric(name: Any, value: Any) -> float | bool:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise ArgumentError(f"a metric's name must be a string of 1 to {MAX_NAME_LENGTH} characters, got {name!r:.80}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ArgumentError(f"metric `{name}` must be a finite number or a bool, got {value!r:.80}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _history(history: Any) -> list[dict[str, Any]]:
    """A History, or a list of per-epoch mappings, as the record's list of epochs."""
    if history is None:
        return []
    if isinstance(history, History):
        history = [{k: v for k, v in attrs.asdict(e).items() if k != "epochs"} for e in history.epochs]
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise ArgumentError(f"`history` must be a purenn History or a list of per-epoch mappings, "
                            f"got {type(history).__name__}")
    if len(history) > MAX_EPOCHS:
        raise ArgumentError(f"`history` holds {len(history)} epochs, more than the {MAX_EPOCHS} a record keeps")
    out = []
    for i, point in enumerate(history):
        if not isinstance(point, Mapping) or point.get("epoch", i + 1) != i + 1:
            raise ArgumentError(f"`history[{i}]` must be a mapping of numbers for epoch {i + 1}, got {point!r:.80}")
        out.append({"epoch": i + 1, **{k: _point(i, k, v) for k, v in point.items() if k != "epoch"}})
    return out


def _point(i: int, key: Any, value: Any) -> Any:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME_LENGTH:
        raise ArgumentError(f"`history[{i}]`: a name must be a string of 1 to {MAX_NAME_LENGTH} "
                            f"characters, got {key!r:.80}")
    if value is None or (key == "digest" and DIGEST.kind(value) and DIGEST.test(value)):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, str):
        return bool(value) if isinstance(value, bool) else float(value)
    raise ArgumentError(f"`history[{i}].{key}` must be a number, a bool or None, got {value!r:.80}")


# --- what an experiment is ----------------------------------------------------------------------


@attrs.frozen
class _Plan:
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
    return _OWN.get(function_name(fn), ("function", None))[0]


def _plan(fn: Any, seeds: Any, grid: Any, settings: Any) -> _Plan:
    if not callable(fn):
        raise ArgumentError(f"the run function must be callable, called as fn(seed, **settings); got {fn!r:.80}")
    kind = kind_of(fn)
    settings = _settings("settings", settings or {})
    grid = _grid(grid or {})
    both = sorted(set(settings) & set(grid))
    if both:
        raise ArgumentError(f"{both} are in both `settings` and `grid`: a setting is either shared by "
                            "every run or swept")
    plan = _Plan(fn, kind, function_name(fn), settings, grid, _seeds(seeds))
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


# --- running it ---------------------------------------------------------------------------------


def run(fn: Callable[..., Any], *, seeds: Any, grid: Mapping[str, Iterable[Any]] | None = None,
        settings: Mapping[str, Any] | None = None, jobs: int = 1, executor: Any = None,
        scheduler: str | None = None, record: str | os.PathLike[str] | None = None,
        data_files: Iterable[str | os.PathLike[str]] = (), checkpoint_dir: str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
        on_event: Callable[[Any, str, dict[str, Any]], None] | None = None) -> Study:
    """Run ``fn(seed, **settings)`` for every seed of ``seeds`` and every combination of the
    ``grid``'s values (shared ``settings`` added), as the module's docstring says; return the
    :class:`Study`.

    ``seeds``: ``range(5)``, ``[0, 3]`` or ``"0-4,7"``. ``jobs``, ``scheduler``, ``executor``:
    where the runs go. ``record``: the experiment record to write (and continue, when it holds
    this experiment already). ``data_files``: files the function reads that purenn does not load
    for it (their SHA-256 goes into every run's provenance). ``checkpoint_dir``: a folder in which
    each run gets one of its own (``current_run().checkpoint_dir``) to keep training states, so
    that a run interrupted mid-way resumes mid-way. ``options``: given to every run as
    ``current_run().options`` without being settings (not recorded). ``on_event(key, event,
    data)``: progress, ``key`` being ``(group, seed)``.

    Raises :class:`~purenn.errors.ArgumentError` for bad arguments, a record of another
    experiment or unwritable files, before any run starts; ``KeyboardInterrupt`` when
    interrupted, after the workers are stopped (the record keeps the finished runs)."""
    check_where(jobs, scheduler, executor)
    plan = _plan(fn, seeds, grid, settings)
    serial = jobs == 1 and executor is None and scheduler is None
    if not serial and executor is None and scheduler is None:
        _check_picklable(fn)
    declared = file_digests(data_files)
    path = None if record is None else Path(record)
    if path is not None:
        _check_outputs(plan, path, declared)
    entries = _start(plan, path)
    session = _Session(plan, path, entries, declared, jobs, scheduler,
                       None if executor is None else describe_executor(executor))
    folder = None if checkpoint_dir is None else os.path.abspath(os.fspath(checkpoint_dir))
    calls = {key: Call(fn, key[0], key[1], {**plan.settings, **plan.groups[key[0]]},
                       None if folder is None else os.path.join(folder, session.run_folder(*key)),
                       dict(options or {}))
             for key, entry in entries.items() if entry["status"] != "ok"}
    session.write()
    if calls:
        run_all(call_run, calls, jobs=jobs, scheduler=scheduler, executor=executor, on_event=on_event,
                on_outcome=session.finish)
    return Study(session.record(), path)


def resume(path: str | os.PathLike[str], fn: Callable[..., Any] | None = None, **where: Any) -> Study:
    """Continue the experiment recorded in ``path``: run what is missing (runs not started, or
    failed) and write ``path`` again (see :func:`run`; ``where``: its ``jobs``, ``scheduler``,
    ``executor``, ``data_files``, ``checkpoint_dir``, ``options``, ``on_event``). ``fn`` is the
    run function, which must be the one the record names; it may be left out for purenn's own
    (MNIST, XOR): purenn never imports code that a file names."""
    record = read_experiment(path)
    fn = fn if fn is not None else own_function(record)
    if function_name(fn) != record["function"]:
        raise ArgumentError(f"{os.fspath(path)!r} was run with {record['function']}, not with "
                            f"{function_name(fn)}; pass that function")
    return run(fn, seeds=record["seeds"], grid=record["grid"], settings=record["settings"], record=path, **where)


def own_function(record: dict[str, Any]) -> Callable[..., Any]:
    """purenn's own run function of an mnist or xor experiment record; an ArgumentError asking
    for the function for any other."""
    if record["function"] in _OWN:
        return _OWN[record["function"]][1]
    raise ArgumentError(f"the experiment ran {record['function']}, the caller's code: pass that function "
                        "(purenn does not import code that a file names)")


def load_function(spec: str) -> Callable[..., Any]:
    """The function ``"module:qualname"`` names, imported; an ArgumentError says why it cannot
    be (one defined in ``__main__``, a script run directly, cannot be imported again)."""
    module_name, _, qualname = str(spec).partition(":")
    if not module_name or not qualname:
        raise ArgumentError(f"a function is named as module:qualname (study:train), got {spec!r}")
    if module_name in ("__main__", "__mp_main__"):
        raise ArgumentError(f"{spec} was defined in a script run directly (__main__), which cannot be "
                            "imported again: move the function into a module and run it from there")
    if "<" in qualname:
        raise ArgumentError(f"{spec} is a lambda or a function defined inside another; only a function at "
                            "the top level of a module can be imported again")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except ImportError as e:
        raise ArgumentError(f"cannot import {module_name} for {spec} ({e}); run from the folder that "
                            "holds it, or put it on PYTHONPATH") from None
    except AttributeError:
        raise ArgumentError(f"module {module_name} has no {qualname}") from None
    if not callable(target):
        raise ArgumentError(f"{spec} is not a function")
    return target


def _check_picklable(fn: Callable[..., Any]) -> None:
    try:
        pickle.dumps(fn)
    except Exception:  # noqa: BLE001 - whatever pickle says: the function cannot go to a worker
        raise ArgumentError(f"{function_name(fn)} cannot be sent to worker processes: define it at the top "
                            "level of a module (or of the script, under if __name__ == \"__main__\":), "
                            "not as a lambda or inside another function") from None
    main = sys.modules.get("__main__")
    if getattr(fn, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
        raise ArgumentError(f"{function_name(fn)} is defined interactively, which worker processes cannot "
                            "import: put it in a file, or run with jobs=1")


def _check_outputs(plan: _Plan, path: Path, declared: dict[str, str]) -> None:
    """The record and the run records it may name (named from its path) must be writable, and
    distinct from each other and from the data files."""
    outputs: dict[str, Any] = {"the experiment record": path}
    if plan.kind == "mnist":
        n = len(plan.groups)
        outputs.update({f"the run record of group {g}, seed {s}": path.with_name(run_record_name(path, g, s, n))
                        for g in range(n) for s in plan.seeds})
    for where in outputs.values():
        check_writable(where)
    check_distinct(outputs, {f"the data file {p}": p for p in declared})


def _start(plan: _Plan, path: Path | None) -> dict[tuple[int, int], dict[str, Any]]:
    """Each run's entry: the record's at ``path`` when it holds this experiment (its finished runs
    kept), else not started; another experiment's record, or anything else there, is refused."""
    keys = [(g, s) for g in range(len(plan.groups)) for s in plan.seeds]
    fresh = {key: pending_entry(*key) for key in keys}
    if path is None or not os.path.exists(path):
        return fresh
    try:
        saved = read_experiment(path)
    except RecordError as e:
        raise ArgumentError(f"{path} exists and cannot be continued ({e.message}); choose another record") from None
    differences = plan_differences(saved, plan.as_record())
    if differences:
        raise ArgumentError(f"{path} holds another experiment ({'; '.join(differences)}); continue it as "
                            "it is (purenn resume), or choose another record")
    return {(r["group"], r["seed"]): (r if r["status"] == "ok" else fresh[(r["group"], r["seed"])])
            for r in saved["runs"]}


class _Session:
    """An experiment being run: its entries, updated and written (with any run record) as each
    run ends."""

    def __init__(self, plan: _Plan, path: Path | None, entries: dict[tuple[int, int], dict[str, Any]],
                 declared: dict[str, str], jobs: int, scheduler: str | None, executor: str | None) -> None:
        self.plan, self.path, self.entries, self.declared = plan, path, entries, declared
        self.where: dict[str, Any] = {"jobs": jobs, "scheduler": scheduler, "executor": executor}
        # purenn's own runs are purenn's code: their records say what a run alone says
        origin = provenance(function=plan.fn if plan.kind == "function" else None)
        self.origin = {k: v for k, v in origin.items() if k in ("command", "purenn", "git", "function")}

    def run_name(self, group: int, seed: int) -> str:
        """The file name of a run's run record, from the record's own path."""
        return run_record_name(self.path or "experiment.json", group, seed, len(self.plan.groups))

    def run_folder(self, group: int, seed: int) -> str:
        """The name of a run's own checkpoint folder: ``seed3``, or with several groups ``g1-seed3``."""
        return f"seed{seed}" if len(self.plan.groups) == 1 else f"g{group}-seed{seed}"

    def record(self) -> dict[str, Any]:
        return make_experiment(**self.plan.as_record(), runs=list(self.entries.values()), **self.where)

    def write(self) -> None:
        if self.path is not None:
            write_experiment(self.path, self.record())

    def finish(self, outcome: Outcome) -> None:
        """Record a run that ended (writing its run record first: the experiment record never
        names a file not there yet)."""
        group, seed = outcome.key
        entry = {**pending_entry(group, seed), "status": outcome.status, "attempts": max(1, outcome.attempts),
                 "seconds": outcome.seconds}
        if outcome.status != "ok":
            entry["error"] = outcome.error or "failed"
        else:
            entry.update(self._results(group, seed, outcome.value))
        self.entries[(group, seed)] = entry
        self.write()

    def _results(self, group: int, seed: int, value: dict[str, Any]) -> dict[str, Any]:
        run_record = value["run_record"]
        theirs = (run_record or {}).get("provenance", {})
        origin = {**self.origin, "data_files": {**self.declared, **theirs.get("data_files", {}), **value["data_files"]},
                  "samples": value["samples"] or theirs.get("samples", {})}
        name = None
        if self.plan.kind == "mnist" and run_record is not None:
            run_record = {**run_record, "provenance": {**theirs, **origin}}
            if self.path is not None:
                name = self.run_name(group, seed)
                write_run_record(self.path.with_name(name), run_record)
        return {"digest": value["digest"], "metrics": value["metrics"], "history": value["history"],
                "provenance": origin, "record": name}


# --- the result ---------------------------------------------------------------------------------


@attrs.frozen
class Run:
    """One run of a study: its group's index and ``settings`` (the grid's values; the shared
    ones are :attr:`Study.settings`), ``seed``, ``status`` ("ok", "failed", "not_started"),
    ``metrics``, ``seconds`` (wall time), ``attempts``, ``error``, ``digest`` and ``history``."""

    group: int
    settings: dict[str, Any]
    seed: int
    status: str
    metrics: dict[str, Any]
    seconds: float | None
    attempts: int
    error: str | None
    digest: str | None
    history: list[dict[str, Any]]


@attrs.frozen
class Group:
    """The runs of one combination of the grid's values (``settings``) and their ``summary``:
    ok, failed and not_started counts and, per metric, n, mean, std, min and max."""

    index: int
    settings: dict[str, Any]
    runs: tuple[Run, ...]
    summary: dict[str, Any]

    def values(self, metric: str) -> list[Any]:
        """The values of ``metric`` of this group's finished runs, in the seeds' order."""
        return [r.metrics[metric] for r in self.runs if r.status == "ok" and metric in r.metrics]


@attrs.frozen(eq=False)
class Study:
    """What :func:`run` gives: the experiment ``record`` (plain data, as written to ``path``,
    None without one), its :attr:`runs` and :attr:`groups`."""

    record: dict[str, Any]
    path: Path | None = None

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.record["settings"])

    @property
    def runs(self) -> tuple[Run, ...]:
        groups = self.record["groups"]
        return tuple(Run(r["group"], dict(groups[r["group"]]["settings"]), r["seed"], r["status"],
                         dict(r["metrics"]), r["seconds"], r["attempts"], r["error"], r["digest"],
                         list(r["history"])) for r in self.record["runs"])

    @property
    def groups(self) -> tuple[Group, ...]:
        runs = self.runs
        return tuple(Group(i, dict(g["settings"]), tuple(r for r in runs if r.group == i), g["summary"])
                     for i, g in enumerate(self.record["groups"]))

    @property
    def finished(self) -> bool:
        """Whether every run has ended (finished or failed): nothing is left to resume."""
        return self.record["summary"]["not_started"] == 0

    def __repr__(self) -> str:
        s = self.record["summary"]
        return (f"Study({self.record['function']}, {len(self.record['groups'])} group(s) x "
                f"{len(self.record['seeds'])} seed(s): {s['ok']} ok, {s['failed']} failed, "
                f"{s['not_started']} not started)")

