"""A run function for experiment tests whose run of one seed fails (importable by spawned
workers): the real MNIST run for every other seed."""

from __future__ import annotations

from typing import Any

from purenn.experiments.tasks import mnist_trial

FAILING_SEED = 1


def mnist_trial_failing_for_one_seed(seed: int, **settings: Any) -> dict[str, Any]:
    if seed == FAILING_SEED:
        raise ValueError(f"seed {FAILING_SEED} is made to fail [/] (brackets: shown, not read as markup)")
    return mnist_trial(seed, **settings)
