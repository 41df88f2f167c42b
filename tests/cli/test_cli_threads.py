"""The BLAS thread count is part of a run: `--threads N` sets it (threadpoolctl), the record keeps
it, and `purenn reproduce` uses the recorded count whatever the caller's OPENBLAS_NUM_THREADS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def purenn(*args: str, threads_env: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if threads_env is not None:
        env["OPENBLAS_NUM_THREADS"] = threads_env
    return subprocess.run([sys.executable, "-m", "purenn_cli.main", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def records(tiny_mnist, tmp_path_factory):
    """Runs of the mlp preset (big enough matrices for OpenBLAS to use its threads) recorded
    with 1 and with 2 threads, each started with OPENBLAS_NUM_THREADS set to the other count."""
    folder = tmp_path_factory.mktemp("threads")
    made = {}
    for n in (1, 2):
        path = folder / f"r{n}.json"
        done = purenn("mnist", "--preset", "mlp", "--epochs", "1", "--limit", "256",
                      "--data-dir", str(tiny_mnist), "--threads", str(n), "--record", str(path),
                      threads_env=str(3 - n))
        assert done.returncode == 0, done.stdout + done.stderr
        made[n] = path
    return made


def test_the_record_keeps_the_thread_count(records):
    for n, path in records.items():
        record = json.loads(path.read_text())
        assert record["config"]["run"]["threads"] == n
        # the machine's fingerprint is read while the run's limit holds, not the caller's count
        assert record["versions"]["blas_threads"] == n


@pytest.mark.parametrize("caller", ["1", "2"])
@pytest.mark.parametrize("recorded", [1, 2])
def test_each_record_reproduces_under_any_caller_thread_setting(records, tiny_mnist, recorded, caller):
    done = purenn("reproduce", str(records[recorded]), "--data-dir", str(tiny_mnist), threads_env=caller)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced" in done.stdout


def test_the_thread_count_matters_here_so_the_test_above_means_something(records):
    digests = {n: json.loads(p.read_text())["digest"] for n, p in records.items()}
    if digests[1] == digests[2]:
        pytest.skip("this BLAS gives bit-identical results with 1 and 2 threads")
    assert digests[1] != digests[2]


@pytest.mark.parametrize("recorded", [1, 2])
def test_a_failed_reproduce_compares_the_machine_under_the_recorded_thread_count(records, tiny_mnist,
                                                                                  tmp_path, recorded):
    """The fingerprint of this machine is read inside the run's thread limit too: a record of
    --threads 1 does not look like one of another machine because the caller has 2."""
    record = json.loads(records[recorded].read_text())
    record["digest"] = record["history"][-1]["digest"] = "0" * 64  # edited consistently: not reproduced
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(record))
    done = purenn("reproduce", str(tampered), "--data-dir", str(tiny_mnist), threads_env=str(3 - recorded))
    assert done.returncode == 1 and "not reproduced" in done.stdout, done.stdout + done.stderr
    assert "then, " not in done.stdout  # no field of the machine named as different
    assert "is the same here" in " ".join(done.stdout.split())
