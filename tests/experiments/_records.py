"""Valid experiment records to edit, for the record's tests and its fuzz test:
``from _records import xor_experiment, mnist_experiment``."""

from __future__ import annotations

import attrs
import numpy as np

from purenn.experiments.record import make_experiment, run_entry, write_experiment
from purenn.experiments.runner import Outcome
from purenn.experiments.tasks import XorTask
from purenn.io.records import params_digest, write_record
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import RunConfig, TrainedRun, run_record
from purenn.training import EpochLog, History


def xor_value(seed: int) -> dict:
    losses = [0.5 / (seed + 1), 0.25 / (seed + 1), 0.125 / (seed + 1)]
    return {"seed": seed, "solved": seed % 2 == 0, "outputs": [0.0, 1.0, 1.0, 0.0], "loss": losses[-1],
            "train_seconds": 0.5 + seed, "history": [{"epoch": i + 1, "loss": v} for i, v in enumerate(losses)],
            "digest": params_digest(np.full(3, seed, np.float32))}


def xor_entry(seed: int) -> dict:
    return run_entry(seed, Outcome(seed, "ok", value=xor_value(seed)))


def failed_entry(seed: int) -> dict:
    return run_entry(seed, Outcome(seed, "failed", error="ValueError: three is not allowed", attempts=2))


XOR_SETTINGS = {k: v for k, v in attrs.asdict(XorTask(0, epochs=3)).items() if k != "seed"}


def xor_experiment(seeds=(0, 1, 2), failed=(1,)) -> dict:
    runs = [failed_entry(s) if s in failed else xor_entry(s) for s in seeds]
    return make_experiment(kind="xor", settings=XOR_SETTINGS, seeds=seeds, runs=runs, jobs=2, scheduler=None)


MNIST = RunConfig("mlp", epochs=2, limit=100, threads=1)


def mnist_record(seed: int) -> dict:
    params = ({"w": np.full((2, 2), seed, np.float32)},)
    digest = params_digest(params)
    history = History((EpochLog(1, 2, 0.5, 0.4, 0.75), EpochLog(2, 2, 0.25, 0.3, 0.875, digest=digest)))
    trained = TrainedRun(PRESETS["mlp"].model, params, (), history)
    return run_record(attrs.evolve(MNIST, seed=seed), trained, 100,
                      {"test_accuracy": 0.875, "train_seconds": 1.5 + seed})


def mnist_experiment(folder, seeds=(0, 1, 2), failed=(1,)) -> dict:
    """An MNIST experiment record in ``folder``/exp.json, its run records beside it."""
    runs = []
    for s in seeds:
        if s in failed:
            runs.append(failed_entry(s))
            continue
        write_record(folder / f"exp.seed{s}.json", mnist_record(s))
        runs.append(run_entry(s, Outcome(s, "ok", value=mnist_record(s)), f"exp.seed{s}.json"))
    settings = {k: v for k, v in attrs.asdict(MNIST).items() if k != "seed"}
    experiment = make_experiment(kind="mnist", settings=settings, seeds=seeds, runs=runs, jobs=1, scheduler=None)
    write_experiment(folder / "exp.json", experiment)
    return experiment
