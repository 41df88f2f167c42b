"""One experiment on every executor: in this process, in local worker processes (``jobs``), on a
caller's ``concurrent.futures`` process pool, on a Dask ``LocalCluster`` (its scheduler address,
and its ``Client.get_executor()``) and on submitit's local executor: the same per-run digests,
and a worker killed mid-run retried or recorded as failed, never dropped. Real processes."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
from pathlib import Path

import _tasks
import pytest

import purenn as pn

GRID = {"lr": [0.05, 0.01], "width": [4, 8]}
SEEDS = (0, 1)
EXPERIMENTS = Path(__file__).resolve().parent  # where _tasks lives: worker processes import it


@pytest.fixture(scope="module")
def serial():
    study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID)
    assert [r.status for r in study.runs] == ["ok"] * 8
    assert len({r.digest for r in study.runs}) == 8  # every setting and seed trains other params
    return [r.digest for r in study.runs]


def _digests(study):
    assert [(r.group, r.seed, r.status) for r in study.runs] == [(g, s, "ok") for g in range(4) for s in SEEDS]
    return [r.digest for r in study.runs]


def test_local_worker_processes_give_the_serial_digests(serial, tmp_path):
    study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID, jobs=2, record=tmp_path / "e.json")
    assert _digests(study) == serial
    assert json.loads((tmp_path / "e.json").read_text())["jobs"] == 2


def test_a_callers_process_pool_gives_the_serial_digests(serial, tmp_path):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID, executor=pool,
                                   record=tmp_path / "e.json")
    assert _digests(study) == serial
    record = json.loads((tmp_path / "e.json").read_text())
    assert record["executor"] == "concurrent.futures.process.ProcessPoolExecutor"


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip(
        "distributed", reason="the `distributed` extra is not installed: pip install \"purenn[distributed]\"")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0")
    yield cluster
    cluster.close()


def test_a_dask_cluster_gives_the_serial_digests(serial, cluster):
    study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID, scheduler=cluster.scheduler_address)
    assert _digests(study) == serial


def test_a_dask_clients_executor_gives_the_serial_digests(serial, cluster):
    import distributed

    with distributed.Client(cluster.scheduler_address) as client:
        study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID, executor=client.get_executor())
    assert _digests(study) == serial
    assert study.record["executor"] == "distributed.cfexecutor.ClientExecutor"


@pytest.fixture
def submitit_executor(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit", reason="submitit is not installed: pip install submitit")
    # its jobs are new interpreters started from the shell: they find _tasks on PYTHONPATH
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXPERIMENTS), os.environ.get("PYTHONPATH", "")]))
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=5)
    return executor


def test_submitits_executor_gives_the_serial_digests(serial, submitit_executor):
    # submitit's jobs are not concurrent.futures.Future: they are polled with done()
    study = pn.experiments.run(_tasks.fit_toy, seeds=SEEDS, grid=GRID, executor=submitit_executor)
    assert _digests(study) == serial
    assert study.record["executor"] == "submitit.local.local.LocalExecutor"


# --- a worker killed mid-run ------------------------------------------------------------------


def _killed(study, attempts=None):
    """The victim's run (seed 1 of each group) and everyone else's, all of them present."""
    runs = {(r.group, r.seed): r for r in study.runs}
    assert sorted(runs) == [(g, s) for g in range(len(study.groups)) for s in SEEDS]  # none dropped
    return runs


def test_in_local_workers_a_killed_worker_is_retried(tmp_path, serial):
    marker = str(tmp_path / "died")
    study = pn.experiments.run(_tasks.dies_for_one, seeds=SEEDS, settings={"marker": marker}, jobs=2)
    runs = _killed(study)
    assert Path(marker).exists()  # it did die
    assert runs[(0, 1)].status == "ok" and runs[(0, 1)].attempts == 2
    assert [runs[(0, s)].digest for s in SEEDS] == serial[2:4]  # fit_toy's defaults: lr 0.05, width 8
    study = pn.experiments.run(_tasks.dies_for_one, seeds=SEEDS, settings={"marker": "always"}, jobs=2)
    runs = _killed(study)
    assert runs[(0, 1)].status == "failed" and "died twice" in runs[(0, 1)].error
    assert runs[(0, 0)].status == "ok"


def test_on_a_callers_pool_a_killed_worker_fails_its_runs_and_drops_none(tmp_path):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        study = pn.experiments.run(_tasks.dies_for_one, seeds=(0, 1, 2), settings={"marker": "always"},
                                   executor=pool, record=tmp_path / "e.json")
    runs = {r.seed: r for r in study.runs}
    assert sorted(runs) == [0, 1, 2]
    assert runs[0].status == "ok"
    assert runs[1].status == "failed" and "its worker process died" in runs[1].error
    assert runs[2].status == "failed"  # the broken pool took it down too: failed, never dropped
    resumed = pn.experiments.resume(tmp_path / "e.json", _tasks.dies_for_one, jobs=2)
    assert {r.seed: r.status for r in resumed.runs} == {0: "ok", 1: "failed", 2: "ok"}


def test_on_dask_a_killed_worker_is_retried(tmp_path, cluster):
    marker = str(tmp_path / "died")
    study = pn.experiments.run(_tasks.dies_for_one, seeds=SEEDS, settings={"marker": marker},
                               scheduler=cluster.scheduler_address)
    runs = _killed(study)
    assert Path(marker).exists() and [r.status for r in runs.values()] == ["ok", "ok"]


def test_on_submitit_a_killed_job_is_recorded_failed(submitit_executor):
    study = pn.experiments.run(_tasks.dies_for_one, seeds=SEEDS, settings={"marker": "always"},
                               executor=submitit_executor)
    runs = _killed(study)
    assert runs[(0, 0)].status == "ok"
    assert runs[(0, 1)].status == "failed" and runs[(0, 1)].error
