"""Valid experiment records (format /2) to edit, for the record's tests and its fuzz test:
``from _records import xor_experiment, mnist_experiment``. Records of format /1 are files in
``data/`` (written by purenn before grids: ``exp_v1.json`` with its run records, ``xor_v1.json``)."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from purenn.experiments.record import make_experiment, pending_entry, write_experiment
from purenn.experiments.tasks import MNIST_FUNCTION, XOR_FUNCTION, XorTask
from purenn.io.records import params_digest, write_record
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import RunConfig, TrainedRun, run_record
from purenn.training import EpochLog, History

DATA = Path(__file__).resolve().parent / "data"
ORIGIN = {"command": ["purenn", "xor", "--sweep", "3"], "purenn": "0.2.0", "git": {"purenn": None, "code": None},
          "function": XOR_FUNCTION, "data_files": {}, "samples": {}}


def xor_entry(seed: int, group: int = 0) -> dict:
    losses = [0.5 / (seed + 1), 0.25 / (seed + 1), 0.125 / (seed + 1)]
    return {**pending_entry(group, seed), "status": "ok", "attempts": 1,
            "digest": params_digest(np.full(3, seed + 10 * group, np.float32)),
            "metrics": {"solved": seed % 2 == 0, "loss": losses[-1], "train_seconds": 0.5 + seed},
            "seconds": 0.75 + seed, "history": [{"epoch": i + 1, "loss": v} for i, v in enumerate(losses)],
            "provenance": dict(ORIGIN)}


def failed_entry(seed: int, group: int = 0) -> dict:
    return {**pending_entry(group, seed), "status": "failed", "attempts": 2,
            "error": "ValueError: three is not allowed", "seconds": 0.25}


XOR_SETTINGS = {k: v for k, v in attrs.asdict(XorTask(0, epochs=3)).items() if k != "seed"}


def xor_experiment(seeds=(0, 1, 2), failed=(1,), grid=None, not_started=()) -> dict:
    grid = grid or {}
    settings = {k: v for k, v in XOR_SETTINGS.items() if k not in grid}
    groups = 1
    for values in grid.values():
        groups *= len(values)
    runs = [pending_entry(g, s) if s in not_started else failed_entry(s, g) if s in failed else xor_entry(s, g)
            for g in range(groups) for s in seeds]
    return make_experiment(kind="xor", function=XOR_FUNCTION, settings=settings, grid=grid, seeds=seeds,
                           runs=runs, jobs=2, scheduler=None)


MNIST = RunConfig("mlp", epochs=2, limit=100, threads=1)


def mnist_record(seed: int) -> dict:
    params = ({"w": np.full((2, 2), seed, np.float32)},)
    digest = params_digest(params)
    history = History((EpochLog(1, 2, 0.5, 0.4, 0.75), EpochLog(2, 2, 0.25, 0.3, 0.875, digest=digest)))
    trained = TrainedRun(PRESETS["mlp"].model, params, (), history)
    return run_record(attrs.evolve(MNIST, seed=seed), trained, 100,
                      {"test_accuracy": 0.875, "train_seconds": 1.5 + seed})


def mnist_entry(seed: int, name: str) -> dict:
    record = mnist_record(seed)
    return {**pending_entry(0, seed), "status": "ok", "attempts": 1, "record": name, "digest": record["digest"],
            "metrics": {"test_accuracy": 0.875, "loss": 0.25, "train_seconds": 1.5 + seed}, "seconds": 2.0,
            "history": [{"epoch": h["epoch"], "loss": h["loss"], "val_accuracy": h["val_accuracy"],
                         "digest": h.get("digest")} for h in record["history"]],
            "provenance": None}


def mnist_experiment(folder, seeds=(0, 1, 2), failed=(1,)) -> dict:
    """An MNIST experiment record in ``folder``/exp.json, its run records beside it."""
    runs = []
    for s in seeds:
        if s in failed:
            runs.append(failed_entry(s))
            continue
        write_record(folder / f"exp.seed{s}.json", mnist_record(s))
        runs.append(mnist_entry(s, f"exp.seed{s}.json"))
    settings = {k: v for k, v in attrs.asdict(MNIST).items() if k != "seed"}
    experiment = make_experiment(kind="mnist", function=MNIST_FUNCTION, settings=settings, grid={}, seeds=seeds,
                                 runs=runs, jobs=1, scheduler=None)
    write_experiment(folder / "exp.json", experiment)
    return experiment
