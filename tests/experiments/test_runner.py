"""The runner: serial and local worker processes give the same results; a task's error or a dying
worker is recorded, never dropped; a run inside an experiment equals the same seed run alone."""

from __future__ import annotations

import _tasks
import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.experiments.runner import default_jobs, run_all
from purenn.experiments.study import Call, call_run
from purenn.experiments.tasks import mnist_trial, threads_per_run, xor_trial
from purenn.recipes.runs import RunConfig, train_preset


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_come_back_in_the_keys_order_with_their_events(jobs):
    events = []
    outcomes = run_all(_tasks.square, {k: k for k in (5, 2, 7)}, jobs=jobs,
                       on_event=lambda key, event, data: events.append((key, event)))
    assert [(o.key, o.status, o.value, o.attempts) for o in outcomes] == [
        (5, "ok", 25, 1), (2, "ok", 4, 1), (7, "ok", 49, 1)]
    for key in (5, 2, 7):
        mine = [e for k, e in events if k == key]
        # "end" comes from this process as the result arrives, the others through the workers'
        # queue: only their own order is fixed
        assert sorted(mine) == ["end", "start", "step"] and mine.index("start") < mine.index("step")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_tasks_error_is_recorded_and_the_others_finish(jobs):
    outcomes = run_all(_tasks.fails_for_three, {k: k for k in range(5)}, jobs=jobs)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok", "failed", "ok"]
    assert "ValueError: three is not allowed" in outcomes[3].error


def test_a_worker_that_dies_has_its_run_started_again(tmp_path):
    marker = str(tmp_path / "died")
    outcomes = run_all(_tasks.dies_once, {k: (k, marker) for k in range(4)}, jobs=2)
    assert [(o.status, o.value) for o in outcomes] == [("ok", k) for k in range(4)]
    assert outcomes[1].attempts >= 2  # it started, its worker died, it started again


def test_a_run_whose_worker_dies_every_time_is_reported_failed():
    outcomes = run_all(_tasks.always_dies, {k: k for k in range(3)}, jobs=2)
    assert outcomes[1].status == "failed" and "died twice" in outcomes[1].error
    assert outcomes[1].attempts == 2
    # the runs that shared its first pool went again, each alone, and finished
    assert [(o.status, o.value) for o in (outcomes[0], outcomes[2])] == [("ok", 0), ("ok", 2)]


def test_jobs_must_be_positive():
    with pytest.raises(pn.ArgumentError, match="`jobs` must be a positive integer"):
        run_all(_tasks.square, {1: 1}, jobs=0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from _mnist_files import write_tiny_mnist

    return write_tiny_mnist(tmp_path_factory.mktemp("data"), train=200, test=50)


def test_a_run_in_an_experiment_equals_the_same_seed_alone(data_dir):
    config = RunConfig("cnn", epochs=1, limit=120, batch_size=32, threads=1)  # with dropout
    settings = {k: v for k, v in attrs.asdict(config).items() if k != "seed"}
    tasks = {s: Call(mnist_trial, 0, s, settings, options={"data_dir": str(data_dir)}) for s in (0, 3)}
    outcomes = run_all(call_run, tasks, jobs=2)
    data = pn.load_mnist(data_dir)
    for o in outcomes:
        alone = train_preset(attrs.evolve(config, seed=o.key), data.train.images, data.train.labels,
                             validation=(data.test.images, data.test.labels))
        assert o.value["digest"] == alone.digest
        assert [e["digest"] for e in o.value["history"]] == [e.digest for e in alone.history.epochs]
        assert o.value["run_record"]["digest"] == alone.digest
    assert outcomes[0].value["digest"] != outcomes[1].value["digest"]


def test_xor_runs_in_workers_equal_serial_ones():
    tasks = {s: Call(xor_trial, 0, s, {"epochs": 50}) for s in range(3)}
    serial = run_all(call_run, tasks, jobs=1)
    parallel = run_all(call_run, tasks, jobs=2)
    assert [o.value["digest"] for o in serial] == [o.value["digest"] for o in parallel]
    assert len({o.value["digest"] for o in serial}) == 3
    assert all(np.isfinite(o.value["metrics"]["loss"]) for o in serial)


def test_each_run_of_an_experiment_gets_its_share_of_the_cores():
    cores = default_jobs(1 << 30)
    assert threads_per_run(3, 2, None) == 3  # as asked
    assert threads_per_run(None, 1, None) == cores
    assert threads_per_run(None, 2, None) == max(1, cores // 2)
    assert threads_per_run(None, 4 * cores, None) == 1  # never none
    assert threads_per_run(None, 1, "tcp://127.0.0.1:8786") == 1  # a cluster's cores are unknown
