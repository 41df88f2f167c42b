"""``--scheduler`` pointing at something that is not a Dask scheduler: a service that accepts the
connection and never speaks, or speaks something else, is refused within CONNECT_SECONDS, never
waited for forever. Real processes: the command runs in a subprocess against a socket server of
the test's own."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading

import _tasks
import pytest
from _mnist_files import write_tiny_mnist

from purenn.errors import ArgumentError
from purenn.experiments import runner
from purenn.experiments.runner import run_all

pytest.importorskip("distributed", reason="the `distributed` extra is not installed: pip install \"purenn[distributed]\"")

HANG_GUARD = 120  # seconds: far more than the command may take; only there so a hang fails


@contextlib.contextmanager
def _server(reply: bytes | None):
    """A TCP server on a free local port that accepts every connection, then sends ``reply``
    (None: says nothing, ever) and keeps it open; yields its address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            if reply is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in accepted:
            conn.close()


SILENT = None
GARBAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" * 50


def test_the_limit_is_documented():
    assert runner.CONNECT_SECONDS == 10.0


@pytest.mark.parametrize("reply, says", [
    (SILENT, "did not answer within 10 s"),
    (GARBAGE, "is not a Dask scheduler: it does not answer as one"),
])
def test_the_command_refuses_a_service_that_is_no_scheduler(tmp_path, reply, says):
    data = write_tiny_mnist(tmp_path, train=60, test=20)
    with _server(reply) as address:
        done = subprocess.run(
            [sys.executable, "-m", "purenn_cli.main", "mnist", "--preset", "mlp", "--epochs", "1",
             "--limit", "30", "--seeds", "0-1", "--data-dir", str(data), "--scheduler", address],
            capture_output=True, text=True, timeout=HANG_GUARD, env={"COLUMNS": "300", "PATH": ""}, check=False)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, text
    assert f"error: {address!r}" in text or f"at {address!r}" in text, text
    assert says in text and "Traceback" not in text, text


def test_run_all_refuses_garbage_and_a_closed_port():
    with _server(GARBAGE) as address, pytest.raises(ArgumentError, match="is not a Dask scheduler"):
        run_all(_tasks.square, {1: 1}, scheduler=address)
    with _server(b"") as address:  # listening, then closed before it says anything
        pass
    with pytest.raises(ArgumentError, match=f"cannot reach the Dask scheduler at '{address}'"):
        run_all(_tasks.square, {1: 1}, scheduler=address)
