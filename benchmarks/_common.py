"""What bench_mlp.py and bench_cnn.py share: machine info, interleaved timing, verdicts, and the
optional ``--cli`` part that runs ``purenn mnist`` in child processes and measures their memory."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from threadpoolctl import threadpool_info

MB = 1e6  # memory is reported in MB of 10^6 bytes (ru_maxrss is in KiB on Linux)


def blas_pools() -> list[dict[str, Any]]:
    return [i for i in threadpool_info() if i.get("user_api") == "blas"]


def machine_info(console: Console, extra: str = "") -> None:
    """numpy and BLAS versions, BLAS threads, CPUs (and this process's affinity), load average."""
    blas = "; ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
                     f"{i['num_threads']} threads)" for i in blas_pools()) or "no BLAS found by threadpoolctl"
    cpus = os.cpu_count()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                      "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
                    if k in os.environ)
    console.print(f"python {sys.version.split()[0]}, numpy {np.__version__}, BLAS {blas}", highlight=False)
    console.print(f"{cpus} CPUs, this process may run on {affinity}; load average (1, 5, 15 min) {load}"
                  + (f"; {env}" if env else "") + (f"; {extra}" if extra else ""), highlight=False)


def malloc_warmup(console: Console) -> None:
    # glibc's malloc serves large blocks with mmap and trims the heap top beyond a threshold that
    # it raises after the first large block is freed, so a process's allocation history decides
    # whether each 0.3-0.6 MB temporary costs ~150 page faults (the tutorial's float64 updates are
    # about 6x slower when it happens). Freeing one 16 MB block first puts every contestant in the
    # same, fault-free state.
    np.ones(16 << 20, dtype=np.uint8)  # allocated, then freed at once
    console.print("malloc warm-up: one 16 MB block allocated and freed before timing "
                  "(--no-malloc-warmup to skip)")


def interleave(runs: dict[str, Callable[[], Any]], repeats: int,
               around: Callable[[str], AbstractContextManager[Any]] | None = None):
    """Run each contestant ``repeats`` times, A B C / B C A / C A B ...: the order rotates every
    round so that machine noise falls on all alike. ``around(name)``, if given, is a context
    entered before the clock starts and left after it stops (thread limits, say). Returns the
    times (s) and minor page faults per contestant, and each one's last result."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    faults = dict.fromkeys(names, 0)
    results: dict[str, Any] = {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            with around(name) if around is not None else contextlib.nullcontext():
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.perf_counter()
                results[name] = runs[name]()
                times[name].append(time.perf_counter() - start)
                faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return times, faults, results


def median(values: list[float]) -> float:
    return float(np.median(values))


def verdict(console: Console, label: str, ratio: float | None, bound: float, why_not: str = "") -> bool:
    """Print ``target LABEL: ratio R -> met / NOT met``; a ratio of None is "not measured"."""
    if ratio is None:
        console.print(f"target {label}: [yellow]not measured[/yellow] ({why_not})", highlight=False)
        return False
    mark = "[green]met[/green]" if ratio <= bound else "[red]NOT met[/red]"
    console.print(f"target {label}: ratio {ratio:.3f} -> {mark}", highlight=False)
    return ratio <= bound


# --- the optional CLI part: `purenn mnist` in child processes


def add_cli_options(parser: argparse.ArgumentParser, default_seeds: str) -> None:
    group = parser.add_argument_group("the CLI part (real MNIST)")
    group.add_argument("--cli", action="store_true",
                       help="also run `purenn mnist` (one child process per seed, one at a time) and "
                       "report test accuracy, training seconds and peak memory")
    group.add_argument("--seeds", default=default_seeds,
                       help=f"seeds of the CLI runs, e.g. 0,1,2 or 0-2 (default: {default_seeds})")
    group.add_argument("--data-dir", help="folder with the MNIST files, for --cli (and --mnist) (default: $PURENN_DATA)")
    group.add_argument("--cli-args", default="",
                       help="extra arguments for `purenn mnist`, e.g. --cli-args=\"--limit 2000 --epochs 1\" for a "
                       "quick check (the targets are for the preset as it is)")


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        seeds += range(int(lo), int(hi or lo) + 1)
    return seeds


def data_dir(console: Console, given: str | None) -> str | None:
    """The MNIST folder (--data-dir, else $PURENN_DATA) if MNIST is there, else None (said plainly)."""
    from purenn import load_mnist
    from purenn.errors import PurennError

    folder = given or os.environ.get("PURENN_DATA")
    if not folder:
        console.print("MNIST data not given (--data-dir or $PURENN_DATA): the CLI part is not run")
        return None
    try:
        load_mnist(folder, download=False, splits=("test",))
    except (PurennError, OSError) as e:
        first = str(getattr(e, "message", e)).splitlines()[0]
        console.print(f"MNIST data not found ({first}): the CLI part is not run", highlight=False)
        return None
    return str(Path(folder).resolve())


def run_cli(args: list[str], workdir: Path) -> dict[str, Any]:
    """``purenn ARGS --record ...`` as a child process, alone; its metrics and peak RSS (os.wait4)."""
    record = workdir / "run.json"
    record.unlink(missing_ok=True)
    command = [sys.executable, "-c", "from purenn_cli.main import app; app(prog_name='purenn')",
               *args, "--record", str(record)]
    log = workdir / "output.txt"
    with open(log, "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "COLUMNS": "120"})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    result: dict[str, Any] = {"returncode": child.returncode, "peak_mb": usage.ru_maxrss * 1024 / MB,
                              "accuracy": None, "seconds": None, "output": text}
    if record.exists():
        metrics = json.loads(record.read_text())["metrics"]
        result["accuracy"], result["seconds"] = metrics["test_accuracy"], metrics["train_seconds"]
    else:  # no record: the line "test accuracy 99.18% on 10000 samples; training took 70.1 s"
        m = re.search(r"test accuracy ([\d.]+)% on \d+ samples; training took ([\d.]+) s", text)
        if m:
            result["accuracy"], result["seconds"] = float(m[1]) / 100, float(m[2])
    return result


def cli_part(console: Console, args: argparse.Namespace, preset: str, min_accuracy: float,
             max_seconds: float, max_mb: float | None) -> bool:
    """Run ``purenn mnist --preset PRESET --seed K`` for each seed, one at a time; print the table
    and the targets. Returns False when a target is not met or a run failed."""
    folder = data_dir(console, args.data_dir)
    if folder is None:
        return True
    extra = shlex.split(args.cli_args)
    seeds = parse_seeds(args.seeds)
    rows = []
    with tempfile.TemporaryDirectory(prefix="purenn-bench-") as tmp:
        for seed in seeds:
            cmd = ["mnist", "--preset", preset, "--seed", str(seed), "--data-dir", folder, *extra]
            console.print(f"running: purenn {shlex.join(cmd)}", highlight=False)
            rows.append((seed, run_cli(cmd, Path(tmp))))
    table = Table(title=f"purenn mnist --preset {preset}: one child process per seed, one at a time"
                        + (f" (extra arguments: {escape(args.cli_args)})" if extra else ""))
    for col in ("seed", "exit", "test accuracy", "training s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for seed, r in rows:
        table.add_row(str(seed), str(r["returncode"]),
                      "-" if r["accuracy"] is None else f"{r['accuracy']:.2%}",
                      "-" if r["seconds"] is None else f"{r['seconds']:.1f}", f"{r['peak_mb']:.0f}")
    console.print(table)
    console.print("training s: the CLI's own figure (it includes the test evaluation after each epoch); "
                  "peak RSS: the child's ru_maxrss from os.wait4, in MB of 10^6 bytes", highlight=False)
    failed = [(seed, r) for seed, r in rows if r["returncode"] != 0 or r["accuracy"] is None]
    for seed, r in failed:
        tail = "\n".join(r["output"].strip().splitlines()[-8:])
        console.print(f"[red]seed {seed} failed[/red] (exit {r['returncode']}):\n{escape(tail)}")
    if failed:
        console.print("the CLI targets are not judged: a run failed")
        return False
    if extra:
        console.print("[yellow]extra arguments were given: the figures below are not the preset's own "
                      "run, so the targets are judged for form only[/yellow]")
    ok = True
    worst_acc = min(r["accuracy"] for _, r in rows)
    mark = "[green]met[/green]" if worst_acc >= min_accuracy else "[red]NOT met[/red]"
    console.print(f"target test accuracy >= {min_accuracy:.1%} on every seed: lowest {worst_acc:.2%} -> {mark}",
                  highlight=False)
    ok &= worst_acc >= min_accuracy
    worst_s = max(r["seconds"] for _, r in rows)
    mark = "[green]met[/green]" if worst_s <= max_seconds else "[red]NOT met[/red]"
    console.print(f"target training <= {max_seconds:.0f} s on every seed: longest {worst_s:.1f} s "
                  f"(median {median([r['seconds'] for _, r in rows]):.1f} s) -> {mark}", highlight=False)
    ok &= worst_s <= max_seconds
    peak = max(r["peak_mb"] for _, r in rows)
    if max_mb is not None:
        mark = "[green]met[/green]" if peak <= max_mb else "[red]NOT met[/red]"
        console.print(f"target peak memory <= {max_mb:.0f} MB: highest {peak:.0f} MB -> {mark}", highlight=False)
        ok &= peak <= max_mb
    else:
        console.print(f"peak memory: highest {peak:.0f} MB (no target)", highlight=False)
    return ok
