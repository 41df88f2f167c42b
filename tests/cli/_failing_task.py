"""A task for experiment tests whose run of one seed fails (importable by spawned workers):
the real MNIST run for every other seed."""

from __future__ import annotations

from typing import Any

from purenn.experiments.tasks import MnistTask, mnist_run

FAILING_SEED = 1


def mnist_run_failing_for_one_seed(task: MnistTask, report: Any) -> dict[str, Any]:
    if task.config.seed == FAILING_SEED:
        raise ValueError(f"seed {FAILING_SEED} is made to fail [/] (brackets: shown, not read as markup)")
    return mnist_run(task, report)
