"""Provenance (purenn.io.provenance): the SHA-256 of data files (special files refused), digests
of sample indices, the git state of a checkout within its time limit, the data files purenn loads
while a run watches, and run records that hold it and are checked by it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _mnist_files import write_tiny_mnist

import purenn as pn
from purenn.io import provenance
from purenn.io.provenance import (
    GIT_SECONDS,
    data_differences,
    dataset_files,
    file_digests,
    file_sha256,
    git_state,
    indices_digest,
    reading,
    samples,
)
from purenn.io.records import PROVENANCE, check_schema


def test_a_files_digest_is_its_sha256_and_follows_its_changes(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"1,2,3\n")
    assert file_sha256(path) == hashlib.sha256(b"1,2,3\n").hexdigest()
    path.write_bytes(b"1,2,4\n")  # same size: a new modification time or inode tells
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == hashlib.sha256(b"1,2,4\n").hexdigest()
    assert file_digests([path]) == {str(path.resolve()): hashlib.sha256(b"1,2,4\n").hexdigest()}


def test_special_and_missing_files_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(pn.ArgumentError, match="is not a regular file"):
        file_sha256(fifo)  # reading it would wait for a writer forever
    with pytest.raises(pn.ArgumentError, match="is not a regular file"):
        file_sha256(tmp_path)
    with pytest.raises(pn.ArgumentError, match="cannot be read"):
        file_sha256(tmp_path / "missing.csv")


def test_sample_indices_are_digested_in_order():
    assert indices_digest(range(5)) == indices_digest(np.arange(5, dtype=np.int32))
    assert indices_digest([0, 1, 2]) != indices_digest([0, 2, 1])
    assert indices_digest([]) != indices_digest([0])
    assert samples(train=range(3), test=None) == {"train": {"count": 3, "sha256": indices_digest([0, 1, 2])}}
    with pytest.raises(pn.ArgumentError, match="1-d sequence of integers"):
        indices_digest([0.5, 1.5])


def test_the_git_state_of_a_checkout_and_of_a_folder_outside_one(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_state(repo) == {"commit": commit, "dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    assert git_state(repo) == {"commit": commit, "dirty": True}
    (tmp_path / "plain").mkdir()
    assert git_state(tmp_path / "plain") is None


def test_a_git_that_does_not_answer_in_time_is_unknown(tmp_path, monkeypatch):
    assert GIT_SECONDS == 5.0
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setattr(provenance, "GIT_SECONDS", 0.2)
    assert git_state(tmp_path) is None  # given up after 0.2 s, not 30


def test_the_data_files_purenn_loads_are_noted_while_watched(tmp_path):
    data = write_tiny_mnist(tmp_path, train=10, test=5)
    with reading() as files:
        dataset = pn.load_idx_dataset(data, splits=("test",))
    assert sorted(os.path.basename(f) for f in files) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert sorted(p.name for p in dataset_files(dataset)) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    pn.load_idx_dataset(data, splits=("test",))  # not watched: noted nowhere
    assert len(files) == 2


def test_data_differences_name_the_file(tmp_path):
    recorded = {"/old/place/a.gz": "0" * 64, "/old/place/b.gz": "1" * 64}
    found = {str(tmp_path / "a.gz"): "0" * 64, str(tmp_path / "b.gz"): "2" * 64}
    assert data_differences(recorded, found, by_name=True) == [
        f"{tmp_path / 'b.gz'} has SHA-256 2222222222222222..., the run read one of 1111111111111111..."]
    assert data_differences(recorded, found, by_name=False) == [
        "/old/place/a.gz is not there", "/old/place/b.gz is not there"]
    assert data_differences(recorded, {}, by_name=True)[0] == "a.gz is not there (the run read it from /old/place/a.gz)"


def test_a_preset_runs_record_holds_its_provenance(tmp_path):
    from purenn.recipes.runs import RunConfig, run_preset

    data = pn.load_mnist(write_tiny_mnist(tmp_path, train=40, test=10))
    record = run_preset(RunConfig("mlp", epochs=1, limit=30, threads=1), data).record()
    origin = record["provenance"]
    check_schema(origin, PROVENANCE, "provenance")
    assert {os.path.basename(p) for p in origin["data_files"]} == {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
    assert origin["samples"] == samples(train=range(30), test=range(10))
    assert origin["command"] == sys.argv and origin["purenn"] == pn.__version__
    here = Path(pn.__file__).resolve().parent
    assert origin["git"]["purenn"] == git_state(here)


@pytest.mark.parametrize("path, value, says", [
    (("command",), "purenn mnist", r"`provenance\.command` must be a list"),
    (("data_files",), {"a.gz": "ABC"}, r"`provenance\.data_files` must be an object of path -> SHA-256"),
    (("samples",), {"train": {"count": -1, "sha256": "0" * 64}}, r"`provenance\.samples` must be an object of split"),
    (("git",), {"purenn": {"commit": "0" * 40, "dirty": "no"}}, r"`provenance\.git\.purenn` must be null or"),
    (("samples", "train", "count"), 29, r"`provenance\.samples\.train\.count` \(29\) is not `config\.train_samples` \(30\)"),
])
def test_a_run_records_provenance_is_checked(tmp_path, path, value, says):
    from purenn.recipes.records import read_run_record, write_run_record
    from purenn.recipes.runs import RunConfig, run_preset

    data = pn.load_mnist(write_tiny_mnist(tmp_path, train=40, test=10))
    record = run_preset(RunConfig("mlp", epochs=1, limit=30, threads=1), data).record()
    write_run_record(tmp_path / "ok.json", record)
    assert read_run_record(tmp_path / "ok.json") == record
    node = record["provenance"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(pn.RecordError, match=says):
        write_run_record(tmp_path / "bad.json", record)
    assert not (tmp_path / "bad.json").exists()
