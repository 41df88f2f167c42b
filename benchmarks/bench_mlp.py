"""Benchmark: one training epoch of the tutorial's MNIST network, purenn against plain NumPy.

The network is the tutorial's: Dense(784,100), tanh, Dense(100,50), tanh, Dense(50,10), tanh,
MSE, plain SGD with lr 0.1, samples in order. The data is random, of MNIST's shape (784 floats
in [0, 1), one-hot targets). All contestants run in this process on the same data from the same
initial weights; the repeats are interleaved (the order rotates each round) so machine noise
falls on every contestant alike, and the best time of each is reported. The final weights of
purenn and the NumPy loop must agree (they are bit-identical in practice), or the run fails.
Before timing, one 16 MB block is allocated and freed so that glibc's malloc is in the same
fault-free state for everyone (see ``--no-malloc-warmup``); page faults per sample are shown.

Contestants:
  purenn         purenn.fit(..., batch_size=B, shuffle=False, lr=0.1, loss=mse), one epoch
  numpy loop     a hand-written NumPy loop doing the same math in the same dtype, updating
                 its weight arrays in place and skipping the unused input gradient of the
                 first layer (the baseline for the cost of the functional design)
  tutorial       (batch 1 only) the tutorial's own Network.fit, per sample, float64 weights

Targets (from the issues):
  batch 64: purenn / numpy loop <= 1.15      (the functional design costs at most 15%)
  batch 1:  purenn / tutorial   <= 1.0       (at least as fast as the tutorial's code)
  batch 1:  purenn / tutorial   <= 0.7       (the `seed` preset: float32, initializer "uniform")

    python benchmarks/bench_mlp.py                  # batch 64 and batch 1, float32
    python benchmarks/bench_mlp.py --batch 1 --samples 20000 --repeats 5
    python benchmarks/bench_mlp.py --batch 1 --mnist --samples 60000   # the seed preset's data
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `benchmarks.tutorial_code`

from benchmarks.tutorial_code import tutorial_network  # noqa: E402
from purenn import Dense, Sequential, Tanh, fit, load_mnist, mse, one_hot  # noqa: E402

SIZES = (784, 100, 50, 10)
LR = 0.1
DEFAULT_SAMPLES = {64: 60000, 1: 10000}


def build(dtype: str, seed: int):
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [Dense(fan_in, fan_out, initializer="uniform", dtype=dtype), Tanh()]
    model = Sequential(layers)
    return model, model.init(np.random.default_rng(seed))


def make_data(n: int, dtype: str, seed: int):
    rng = np.random.default_rng(seed + 1)
    x = rng.random((n, SIZES[0]), dtype=np.dtype(dtype).type)
    y = one_hot(rng.integers(0, SIZES[-1], n), SIZES[-1], dtype=dtype)
    return x, y


def numpy_loop(params, x, y, batch):
    """The same epoch as plain NumPy: forward, MSE gradient, backward, in-place SGD."""
    ws = [np.array(p["w"]) for p in params[::2]]
    bs = [np.array(p["b"]) for p in params[::2]]
    total = 0.0
    for s in range(0, len(x), batch):
        h = [x[s : s + batch]]
        for w, b in zip(ws, bs):
            z = h[-1] @ w
            z += b
            h.append(np.tanh(z))
        out = h[-1]
        e = out - y[s : s + batch]
        total += float(np.vdot(e, e)) / out.size * len(e)  # the epoch's mean loss, as fit reports
        d = e * (2.0 / out.size)
        for k in range(len(ws) - 1, -1, -1):
            d *= 1 - h[k + 1] * h[k + 1]
            gw = np.dot(h[k].T, d)
            gb = d.sum(axis=0)
            if k:
                d = np.dot(d, ws[k].T)
            ws[k] -= LR * gw
            bs[k] -= LR * gb
    return ws, bs, total / len(x)


def contestants(model, params, x, y, batch):
    def run_purenn():
        new, hist = fit(model, params, x, y, loss=mse, epochs=1, batch_size=batch, lr=LR, shuffle=False)
        return [p["w"] for p in new[::2]], [p["b"] for p in new[::2]], hist.loss[0]

    runs = {"purenn": run_purenn, "numpy loop": lambda: numpy_loop(params, x, y, batch)}
    if batch == 1:
        x3, y3 = x.reshape(len(x), 1, -1), y.reshape(len(y), 1, -1)

        def run_tutorial():
            net = tutorial_network(params, [0, 2, 4])
            err = net.fit(x3, y3, epochs=1, learning_rate=LR, verbose=False)
            return [l.weights for l in net.layers[::2]], [l.bias.ravel() for l in net.layers[::2]], float(err[0])

        runs["tutorial"] = run_tutorial
    return runs


def time_all(runs, repeats):
    names = list(runs)
    times = {name: [] for name in names}
    faults = {name: 0 for name in names}
    results = {}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return times, faults, results


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(p, np.float64) - q))) for p, q in zip(a[0] + a[1], b[0] + b[1]))


def report(console, batch, n, dtype, times, faults, results):
    best = {name: min(t) for name, t in times.items()}
    table = Table(title=f"batch {batch}: one epoch of {n} samples, {dtype} (best of {len(times['purenn'])})")
    for col in ("contestant", "s / epoch", "µs / sample", "median s", "faults / sample",
                "vs numpy loop", "vs tutorial"):
        table.add_column(col, justify="left" if col == "contestant" else "right")
    for name, t in best.items():
        vs_tut = f"{t / best['tutorial']:.3f}" if "tutorial" in best else "-"
        table.add_row(name, f"{t:.3f}", f"{t / n * 1e6:.1f}", f"{np.median(times[name]):.3f}",
                      f"{faults[name] / n / len(times[name]):.1f}", f"{t / best['numpy loop']:.3f}", vs_tut)
    console.print(table)

    pw, nw = results["purenn"], results["numpy loop"]
    identical = all(np.array_equal(p, q) for p, q in zip(pw[0] + pw[1], nw[0] + nw[1]))
    close = all(np.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in zip(pw[0] + pw[1], nw[0] + nw[1]))
    close = close and np.isclose(pw[2], nw[2], rtol=1e-4)
    console.print("epoch mean loss: " + ", ".join(f"{name} {r[2]:.6f}" for name, r in results.items()))
    console.print(f"final weights, purenn vs numpy loop: {'bit-identical' if identical else 'allclose' if close else 'DIFFERENT'}"
                  f" (max |diff| {max_diff(pw, nw):.2e})")
    if "tutorial" in results:
        console.print(f"final weights, purenn vs tutorial (float64 weights): max |diff| {max_diff(pw, results['tutorial']):.2e}")
    if not close:
        raise SystemExit("purenn and the numpy loop disagree: the comparison would be dishonest")

    checks = []
    if batch == 64:
        checks.append(("purenn / numpy loop <= 1.15", best["purenn"] / best["numpy loop"], 1.15))
    if batch == 1:
        checks.append(("purenn / tutorial <= 1.0", best["purenn"] / best["tutorial"], 1.0))
        if dtype == "float32":
            checks.append(("seed preset: purenn / tutorial <= 0.7", best["purenn"] / best["tutorial"], 0.7))
    for label, ratio, bound in checks:
        mark = "[green]met[/green]" if ratio <= bound else "[red]NOT met[/red]"
        console.print(f"target {label}: ratio {ratio:.3f} -> {mark}")


def machine(console):
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE")}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"numpy {np.__version__}, BLAS {blas.get('name')} {blas.get('version')}; "
                  f"{os.cpu_count()} CPUs (this machine: 2 cores); load avg {load:.2f}; "
                  + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, choices=(64, 1), action="append",
                        help="batch size to run (repeatable; default: 64 and 1)")
    parser.add_argument("--samples", type=int, help="samples per epoch (default: 60000 at batch 64, 10000 at batch 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per contestant; the best is reported")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", action="store_true",
                        help="train on the first --samples real MNIST images (from --data-dir or "
                        "$PURENN_DATA) instead of random data: the `seed` preset's own data")
    parser.add_argument("--data-dir", help="folder with the MNIST files (default: $PURENN_DATA)")
    parser.add_argument("--no-malloc-warmup", action="store_true",
                        help="skip raising glibc's dynamic mmap/trim threshold before timing")
    args = parser.parse_args(argv)
    console = Console(width=110)
    machine(console)
    if not args.no_malloc_warmup:
        # glibc's malloc serves large blocks with mmap and trims the heap top beyond a threshold
        # that it raises after the first large block is freed, so a process's allocation history
        # decides whether each 0.3-0.6 MB temporary costs ~150 page faults. The tutorial's float64
        # updates hit this hardest (about 6x slower when it happens). Freeing one 16 MB block
        # first puts every contestant in the same, fault-free state.
        np.ones(16 << 20, dtype=np.uint8)  # allocated, then freed at once
        console.print("malloc warm-up: one 16 MB block allocated and freed before timing "
                      "(--no-malloc-warmup to skip)")
    for batch in args.batch or [64, 1]:
        n = args.samples or DEFAULT_SAMPLES[batch]
        model, params = build(args.dtype, args.seed)
        if args.mnist:
            train = load_mnist(args.data_dir, download=False).train
            x = train.images[:n].astype(args.dtype)
            y = one_hot(train.labels[:n], SIZES[-1], dtype=args.dtype)
            n = len(x)
        else:
            x, y = make_data(n, args.dtype, args.seed)
        for run in contestants(model, params, x[:1024], y[:1024], batch).values():
            run()  # warm-up: caches, allocator, BLAS threads
        runs = contestants(model, params, x, y, batch)
        times, faults, results = time_all(runs, args.repeats)
        report(console, batch, n, args.dtype, times, faults, results)


if __name__ == "__main__":
    main()
