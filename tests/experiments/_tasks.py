"""Tasks for the runner's tests, importable by spawned worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def square(arg: int, report: Any) -> int:
    report("step", done=1, total=1)
    return arg * arg


def fails_for_three(arg: int, report: Any) -> int:
    if arg == 3:
        raise ValueError("three is not allowed")
    return arg


def dies_once(arg: tuple[int, str], report: Any) -> int:
    """The first run of seed 1 kills its worker process; later runs finish."""
    seed, marker = arg
    if seed == 1 and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    time.sleep(0.05)
    return seed


def always_dies(arg: int, report: Any) -> int:
    if arg == 1:
        os._exit(1)
    time.sleep(0.2)
    return arg


# --- run functions of the caller's own code (purenn.experiments.run) ---------------------------


def fit_toy(seed: int, lr: float = 0.05, width: int = 8, epochs: int = 3) -> dict[str, Any]:
    """A small model of the caller's own on synthetic data: the sign of x0 * x1, learned by a
    two-layer network; one BLAS thread, so every process computes the same bits."""
    import numpy as np

    import purenn as pn
    from purenn.io.environment import blas_thread_limit

    rng = np.random.default_rng(1000 + seed)
    x = rng.normal(size=(96, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = pn.Sequential([pn.Dense(2, width), pn.Tanh(), pn.Dense(width, 2)])
    with blas_thread_limit(1):
        params = model.init(np.random.default_rng(seed))
        params, history = pn.fit(model, params, x[:64], y[:64], loss=pn.softmax_cross_entropy, epochs=epochs,
                                 optimizer=pn.Adam(lr), batch_size=16, seed=seed, validation=(x[64:], y[64:]))
        accuracy = pn.accuracy(pn.predict(model, params, x[64:]), y[64:])
    return {"accuracy": accuracy, "final_loss": history.loss[-1], "history": history,
            "digest": pn.params_digest(params), "samples": {"train": range(64), "test": range(64, 96)}}


def dies_for_one(seed: int, marker: str, victim: int = 1, **settings: Any) -> dict[str, Any]:
    """:func:`fit_toy`, but the run of ``victim`` kills its worker process: once (then leaves
    ``marker``), or every time when ``marker`` is ``"always"``."""
    if seed == victim and (marker == "always" or not Path(marker).exists()):
        if marker != "always":
            Path(marker).write_text("died")
        os._exit(1)
    return fit_toy(seed, **settings)


def returns(seed: int, value: Any = None) -> Any:
    """Whatever the test asks it to return (a wrong result, say)."""
    return value


def loads_mnist(seed: int, data_dir: str) -> dict[str, Any]:
    """Loads a data set through purenn, as a caller's code would: its files go into the provenance."""
    import purenn as pn

    data = pn.load_idx_dataset(data_dir, splits=("test",))
    return {"test_samples": len(data.test)}


def slow(seed: int, seconds: float = 0.5) -> dict[str, Any]:
    time.sleep(seconds)
    return {"seed": seed}


def fails_for_seed(seed: int, victim: int) -> dict[str, Any]:
    if seed == victim:
        raise ValueError(f"seed {seed} fails")
    return {"seed": seed}


def context_of(seed: int, x: int, y: str) -> dict[str, Any]:
    """What the run's context says about it."""
    from purenn.experiments import current_run, report

    run = current_run()
    report("epoch", epoch=1, epochs=1, loss=0.0, accuracy=None)
    return {"group": run.group, "seed": run.seed, "x": run.settings["x"],
            "same_options": run.options == {"data_dir": "/data"} and run.settings == {"x": x, "y": y}}


def interrupted_at(seed: int, lr: float, marker: str) -> dict[str, Any]:
    """:func:`fit_toy`, but the run of seed 2 is interrupted (Ctrl-C) the first time (``marker``
    then exists)."""
    if seed == 2 and not Path(marker).exists():
        Path(marker).write_text("interrupted")
        raise KeyboardInterrupt
    return fit_toy(seed, lr=lr)


def counts_runs(seed: int, folder: str) -> dict[str, Any]:
    """Counts in ``folder/ran-SEED`` how many times the run of ``seed`` ran."""
    path = Path(folder) / f"ran-{seed}"
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return {"count": count}
