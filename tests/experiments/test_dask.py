"""Experiments on a real Dask cluster (``distributed.LocalCluster`` with worker processes): the
same params as local runs, a killed worker's run started again, and a run whose workers keep
dying reported failed. Needs the ``distributed`` extra, which ``.ci/run`` installs."""

from __future__ import annotations

import json
import os
import signal
import threading

import attrs
import pytest
from _mnist_files import write_tiny_mnist
from typer.testing import CliRunner

from purenn.experiments.runner import run_all
from purenn.experiments.study import Call
from purenn.experiments.study import call_run as mnist_run  # every task here is an MNIST run
from purenn.experiments.tasks import mnist_trial
from purenn.recipes.runs import RunConfig

distributed = pytest.importorskip(
    "distributed", reason="the `distributed` extra is not installed: pip install \"purenn[distributed]\"")
dask = pytest.importorskip("dask")

CONFIG = RunConfig("mlp", epochs=1, limit=600, batch_size=2, threads=1)  # about a second a run


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_tiny_mnist(tmp_path_factory.mktemp("dask-data"), train=600, test=50))


def _cluster(**config):
    with dask.config.set(config):
        return distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                        dashboard_address=":0")  # any free port


@pytest.fixture(scope="module")
def cluster():
    c = _cluster()
    yield c
    c.close()


def _tasks(data_dir, seeds):
    settings = {k: v for k, v in attrs.asdict(CONFIG).items() if k != "seed"}
    return {s: Call(mnist_trial, 0, s, settings, options={"data_dir": data_dir}) for s in seeds}


@pytest.fixture(scope="module")
def local(data_dir):
    return {o.key: o.value["digest"] for o in run_all(mnist_run, _tasks(data_dir, (0, 1, 2)), jobs=1)}


def test_runs_on_a_cluster_give_the_params_of_local_runs(cluster, data_dir, local):
    events = []
    outcomes = run_all(mnist_run, _tasks(data_dir, (0, 1, 2)), scheduler=cluster.scheduler_address,
                       on_event=lambda key, event, data: events.append((key, event)))
    assert [(o.key, o.status, o.attempts) for o in outcomes] == [(0, "ok", 1), (1, "ok", 1), (2, "ok", 1)]
    assert {o.key: o.value["digest"] for o in outcomes} == local
    assert {(k, e) for k, e in events} >= {(k, e) for k in (0, 1, 2) for e in ("start", "step", "epoch", "end")}


def _killer(victim: int):
    """An on_event that kills the worker process running ``victim`` at its 20th step report."""
    state = {"pid": None, "steps": 0, "killed": False}
    lock = threading.Lock()

    def on_event(key, event, data):
        with lock:
            if key != victim:
                return
            if event == "start" and not state["killed"]:
                state["pid"] = data["pid"]
            elif event == "step" and not state["killed"]:
                state["steps"] += 1
                if state["steps"] == 20:
                    os.kill(state["pid"], signal.SIGKILL)
                    state["killed"] = True

    return on_event, state


def test_a_worker_killed_mid_run_has_its_run_started_again(cluster, data_dir, local):
    on_event, state = _killer(victim=1)
    outcomes = run_all(mnist_run, _tasks(data_dir, (0, 1, 2)), scheduler=cluster.scheduler_address,
                       on_event=on_event)
    assert state["killed"]
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert outcomes[1].attempts == 2  # started, killed, started again on a worker still alive
    assert {o.key: o.value["digest"] for o in outcomes} == local  # and the same params


def test_a_run_whose_worker_dies_is_reported_failed_when_retries_are_off(data_dir, local):
    cluster = _cluster(**{"distributed.scheduler.allowed-failures": 0})
    try:
        on_event, state = _killer(victim=0)
        outcomes = run_all(mnist_run, _tasks(data_dir, (0, 1)), scheduler=cluster.scheduler_address,
                           on_event=on_event)
    finally:
        cluster.close()
    assert state["killed"]
    assert outcomes[0].status == "failed" and "KilledWorker" in outcomes[0].error
    assert outcomes[1].status == "ok" and outcomes[1].value["digest"] == local[1]


def test_the_command_line_runs_seeds_on_a_cluster(cluster, data_dir, tmp_path, local):
    from purenn_cli.main import app

    record = tmp_path / "exp.json"
    result = CliRunner().invoke(app, [
        "mnist", "--preset", "mlp", "--epochs", "1", "--limit", "600", "--batch-size", "2",
        "--threads", "1", "--seeds", "0-1", "--data-dir", data_dir,
        "--scheduler", cluster.scheduler_address, "--record", str(record)])
    assert result.exit_code == 0, result.output
    experiment = json.loads(record.read_text())
    assert experiment["scheduler"] == cluster.scheduler_address
    assert [(r["seed"], r["status"], r["digest"]) for r in experiment["runs"]] == [
        (0, "ok", local[0]), (1, "ok", local[1])]
    assert json.loads((tmp_path / "exp.seed1.json").read_text())["digest"] == local[1]


def test_an_unreachable_scheduler_is_a_clear_error(data_dir):
    from purenn.errors import ArgumentError

    with pytest.raises(ArgumentError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_all(mnist_run, _tasks(data_dir, (0,)), scheduler="tcp://127.0.0.1:9")
