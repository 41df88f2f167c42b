"""A run function of a caller's own for the command line's tests (``_study_task:train``): it
reads a data file of its own, given as a setting, and fits a line to it."""

from __future__ import annotations

from typing import Any

import numpy as np

import purenn as pn


def train(seed: int, data: str, lr: float) -> dict[str, Any]:
    values = np.loadtxt(data, delimiter=",", dtype=np.float32).reshape(-1, 2)
    x, y = values[:, :1], values[:, 1:]
    model = pn.Dense(1, 1)
    params = model.init(np.random.default_rng(seed))
    params, history = pn.fit(model, params, x, y, loss=pn.mse, epochs=3, lr=lr, batch_size=2, seed=seed)
    return {"loss": history.loss[-1], "history": history, "digest": pn.params_digest(params)}
