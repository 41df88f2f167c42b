"""Atomic file writes (purenn.io.atomic): a write either replaces the file whole or leaves the
old one, with no temporary file left behind and the old file's permissions kept."""

from __future__ import annotations

import os

import pytest

import purenn.io.atomic as atomic
from purenn.io.atomic import atomic_write_bytes, atomic_write_text, atomic_writer


def test_atomic_write_replaces(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    atomic_write_text(path, "trois\n")
    assert path.read_text() == "trois\n"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_writer(path) as f:
            f.write(b"new partial")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_fsync_failure_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("io error")))
    with pytest.raises(OSError, match="io error"):
        atomic_write_bytes(path, b"x")
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_permissions(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write_bytes(path, b"new")
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_atomic_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="`mode` must be one of"):
        with atomic_writer(tmp_path / "x", "ab"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "no" / "x", b"")
