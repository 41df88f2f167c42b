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
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from purenn.errors import ArgumentError, RecordError
from purenn.experiments.calls import RESERVED, Call, call_run, result_data  # noqa: F401 - result_data: as before
from purenn.experiments.plan import OWN, Plan, kind_of, make_plan
from purenn.experiments.record import (
    make_experiment,
    pending_entry,
    plan_differences,
    read_experiment,
    run_record_name,
    write_experiment,
)
from purenn.experiments.runner import Outcome, check_where, describe_executor, run_all
from purenn.io.atomic import check_distinct, check_writable
from purenn.io.provenance import file_digests, function_name, provenance
from purenn.recipes.records import write_run_record

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
    plan = make_plan(fn, seeds, grid, settings)
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
    if record["function"] in OWN:
        return OWN[record["function"]][1]
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


def _check_outputs(plan: Plan, path: Path, declared: dict[str, str]) -> None:
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


def _start(plan: Plan, path: Path | None) -> dict[tuple[int, int], dict[str, Any]]:
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

    def __init__(self, plan: Plan, path: Path | None, entries: dict[tuple[int, int], dict[str, Any]],
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
