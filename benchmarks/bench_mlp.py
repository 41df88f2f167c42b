"""Benchmark: the tutorial's MNIST network trained by purenn.fit against hand-written NumPy loops.

The network is the tutorial's: Dense(784,100), tanh, Dense(100,50), tanh, Dense(50,10), tanh,
uniform init, plain SGD with lr 0.1, one epoch. The data is random, of MNIST's shape (784 floats in
[0, 1), labels 0-9), or with ``--mnist`` the first ``--samples`` real MNIST images. In each part
all contestants run in this process on the same data from the same initial weights; their runs
are interleaved (the order rotates each round, A B / B A) so machine noise falls on every
contestant alike, and the MEDIAN time over ``--repeats`` runs is compared. Before timing, one
16 MB block is allocated and freed so that glibc's malloc is in the same fault-free state for
everyone (see ``--no-malloc-warmup``); page faults per sample are shown.

Parts (``--part``, repeatable; default all):
  seed     MSE on one-hot targets, one sample per step, in order (the ``seed`` preset's training):
           purenn.fit against the hand loop, in float32 AND float64, each judged against the loop
           of its own dtype; the tutorial's own code (float64, benchmarks/tutorial_code.py) is an
           extra, labelled reference.
  batch64  the same at batch 64, in order, float32 and float64.
  ce       softmax cross-entropy on the tanh outputs (purenn.softmax_cross_entropy, integer
           labels), shuffled (fit's permutation, reproduced), float32, at batch 8 / 32 / 128 / 1024
           (``--ce-batch``): purenn.fit against a hand loop doing the same.

The hand loops do the same math in the same dtype and order of operations, updating their weight
arrays in place and skipping the unused input gradient of the first layer (the baseline for the
cost of the functional design). The final weights of purenn and its loop must agree
(bit-identical in practice, else allclose): a ratio is not reported for a pair that differs, and
the run exits 1.

Targets (issue 12), on medians:
  seed:     purenn / numpy loop (same dtype) <= 1.10, float32 and float64
  batch64:  purenn / numpy loop (same dtype) <= 1.03, float32 and float64
  ce:       purenn / numpy loop at batch 8 <= 1.10 (the other batch sizes are shown, no target)
  --cli:    `purenn mnist` (preset mlp): test accuracy >= 98.5% on every seed, training <= 12 s
            (peak memory of the process is shown)

Run it as a script (it imports its sibling benchmarks/_common.py):

    python benchmarks/bench_mlp.py                                 # all parts, random data
    python benchmarks/bench_mlp.py --samples 2000 --repeats 2      # a quick look
    python benchmarks/bench_mlp.py --part seed --mnist --samples 60000 --repeats 5
    python benchmarks/bench_mlp.py --part ce --ce-batch 8 --repeats 7
    python benchmarks/bench_mlp.py --part ce --cli --seeds 0,1,2   # plus the CLI's time to accuracy
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from _common import (
    add_cli_options,
    cli_part,
    interleave,
    machine_info,
    malloc_warmup,
    median,
    verdict,
)
from rich.console import Console
from rich.table import Table
from tutorial_code import tutorial_network

from purenn import Dense, Sequential, Tanh, fit, load_mnist, mse, one_hot, softmax_cross_entropy

SIZES = (784, 100, 50, 10)
LR = 0.1
PARTS = ("seed", "batch64", "ce")
DEFAULT_SAMPLES = {"seed": 10000, "batch64": 60000, "ce": 60000}
CE_BATCHES = (8, 32, 128, 1024)
TARGET = {"seed": 1.10, "batch64": 1.03, "ce": 1.10}  # ce: at batch 8 only
CE_TARGET_BATCH = 8


def build(dtype: str, seed: int):
    layers = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        layers += [Dense(fan_in, fan_out, initializer="uniform", dtype=dtype), Tanh()]
    model = Sequential(layers)
    return model, model.init(np.random.default_rng(seed))


def load_data(args, n: int):
    """``n`` rows of float64 inputs and integer labels: random, or the first real MNIST images."""
    if args.mnist:
        train = load_mnist(args.data_dir, download=False).train
        return train.images[:n].astype(np.float64), train.labels[:n].astype(np.int64)
    rng = np.random.default_rng(args.seed + 1)
    return rng.random((n, SIZES[0])), rng.integers(0, SIZES[-1], n)


# --- the hand loops


def _weights(params):
    return [np.array(p["w"]) for p in params[::2]], [np.array(p["b"]) for p in params[::2]]


def _forward(ws, bs, x):
    h = [x]
    for w, b in zip(ws, bs):
        z = np.dot(h[-1], w)
        z += b
        h.append(np.tanh(z))
    return h


def _backward_sgd(ws, bs, h, d):
    """Backward from dE/d(output) ``d`` through the tanh/Dense stack, SGD in place."""
    for k in range(len(ws) - 1, -1, -1):
        d *= 1 - h[k + 1] * h[k + 1]
        gw = np.dot(h[k].T, d)
        gb = np.add.reduce(d, axis=0)
        if k:
            d = np.dot(d, ws[k].T)
        ws[k] -= LR * gw
        bs[k] -= LR * gb


def mse_loop(params, x, y, batch):
    """One epoch in order: forward, MSE gradient, backward, in-place SGD."""
    ws, bs = _weights(params)
    total = 0.0
    for s in range(0, len(x), batch):
        h = _forward(ws, bs, x[s : s + batch])
        e = h[-1] - y[s : s + batch]
        total += float(np.vdot(e, e)) / e.size * len(e)  # the epoch's mean loss, as fit reports
        _backward_sgd(ws, bs, h, e * (2.0 / e.size))
    return ws, bs, total / len(x)


def ce_loop(params, x, labels, batch, seed):
    """One shuffled epoch: fit's permutation, softmax cross-entropy as purenn.losses computes it."""
    ws, bs = _weights(params)
    shuffle_rng, _ = np.random.default_rng(seed).spawn(2)  # fit: shuffle_rng, layer_rng = rng.spawn(2)
    order = shuffle_rng.permutation(len(x))
    total = 0.0
    for s in range(0, len(x), batch):
        rows = order[s : s + batch]
        t = labels[rows]
        h = _forward(ws, bs, x[rows])
        z = h[-1]
        shifted = z - z.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        d = np.exp(logp)
        r = np.arange(len(t))
        total += float(-logp[r, t].mean()) * len(t)
        d[r, t] -= 1
        d /= len(t)
        _backward_sgd(ws, bs, h, d)
    return ws, bs, total / len(x)


# --- the contestants: each a function of (x, y) returning (weights, biases, epoch mean loss)


def _result(params, hist):
    return [p["w"] for p in params[::2]], [p["b"] for p in params[::2]], hist.loss[0]


def mse_contestants(dtypes, batch, seed, tutorial):
    """purenn and the hand loop per dtype (and the tutorial's code, float64): name -> (dtype, run)."""
    runs = {}
    for dtype in dtypes:
        model, params = build(dtype, seed)

        def run_purenn(x, y, model=model, params=params):
            return _result(*fit(model, params, x, y, loss=mse, epochs=1, batch_size=batch, lr=LR,
                                shuffle=False))

        runs[f"purenn {dtype}"] = (dtype, run_purenn)
        runs[f"numpy loop {dtype}"] = (dtype, lambda x, y, p=params: mse_loop(p, x, y, batch))
    if tutorial:
        _, params64 = build("float64", seed)

        def run_tutorial(x, y):
            net = tutorial_network(params64, [0, 2, 4])
            err = net.fit(x.reshape(len(x), 1, -1), y.reshape(len(y), 1, -1), epochs=1,
                          learning_rate=LR, verbose=False)
            dense = net.layers[::2]
            return [d.weights for d in dense], [d.bias.ravel() for d in dense], float(err[0])

        runs["tutorial float64"] = ("float64", run_tutorial)
    return runs


def ce_contestants(batch, seed):
    model, params = build("float32", seed)

    def run_purenn(x, labels):
        return _result(*fit(model, params, x, labels, loss=softmax_cross_entropy, epochs=1,
                            batch_size=batch, lr=LR, shuffle=True, seed=seed))

    return {"purenn": run_purenn, "numpy loop": lambda x, labels: ce_loop(params, x, labels, batch, seed)}


def timed(runs, data, repeats):
    """Warm up every contestant on 1024 samples, then time interleaved runs on all of ``data``."""
    for name, run in runs.items():
        run(*(a[:1024] for a in data[name]))  # caches, allocator, BLAS threads
    return interleave({name: (lambda r=run, d=data[name]: r(*d)) for name, run in runs.items()}, repeats)


# --- agreement of the final weights


def agreement(a, b) -> tuple[str, float]:
    """'bit-identical', 'allclose' or 'DIFFERENT' for the final weights of two (weights, biases,
    loss) results, and the largest difference; the losses must agree to 1e-4 too."""
    pairs = list(zip(a[0] + a[1], b[0] + b[1]))
    diff = max(float(np.max(np.abs(np.asarray(p, np.float64) - q))) for p, q in pairs)
    if not np.isclose(a[2], b[2], rtol=1e-4):  # the epoch's mean loss (summed a little differently)
        return "DIFFERENT", diff
    if all(np.array_equal(p, q) for p, q in pairs):
        return "bit-identical", diff
    return ("allclose" if all(np.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in pairs) else "DIFFERENT"), diff


# --- the parts


def mse_part(console, args, part) -> bool:
    """Parts ``seed`` (batch 1) and ``batch64``. Returns False if a pair's weights differ."""
    batch = 1 if part == "seed" else 64
    n = args.samples or DEFAULT_SAMPLES[part]
    x64, labels = load_data(args, n)
    n = len(x64)
    dtypes = args.dtype or ["float32", "float64"]
    runs = mse_contestants(dtypes, batch, args.seed, tutorial=part == "seed")
    data = {name: (x64.astype(dtype), one_hot(labels, SIZES[-1], dtype=dtype)) for name, (dtype, _) in runs.items()}
    times, faults, results = timed({name: run for name, (_, run) in runs.items()}, data, args.repeats)
    med = {name: median(t) for name, t in times.items()}

    title = (f"{part}: MSE, batch {batch}, in order, one epoch of {n} samples "
             f"({'MNIST' if args.mnist else 'random data'}); median of {args.repeats} interleaved runs")
    table = Table(title=title)
    for col in ("contestant", "median s", "min s", "µs / sample", "faults / sample",
                "vs numpy loop (same dtype)", "vs tutorial (float64)"):
        table.add_column(col, justify="left" if col == "contestant" else "right")
    for name, (dtype, _) in runs.items():
        loop = med.get(f"numpy loop {dtype}")
        tut = med.get("tutorial float64")
        table.add_row(name, f"{med[name]:.3f}", f"{min(times[name]):.3f}", f"{med[name] / n * 1e6:.1f}",
                      f"{faults[name] / n / args.repeats:.1f}",
                      f"{med[name] / loop:.3f}" if loop and not name.startswith("tutorial") else "-",
                      f"{med[name] / tut:.3f}" if tut else "-")
    console.print(table)
    console.print("epoch mean loss: " + ", ".join(f"{name} {r[2]:.6f}" for name, r in results.items()),
                  highlight=False)

    ok = True
    for dtype in dtypes:
        mine, loop = f"purenn {dtype}", f"numpy loop {dtype}"
        verdict_text, diff = agreement(results[mine], results[loop])
        console.print(f"final weights, {mine} vs {loop}: {verdict_text} (max |diff| {diff:.2e})", highlight=False)
        same = verdict_text != "DIFFERENT"
        ok &= same
        verdict(console, f"{part}, {dtype}: purenn / numpy loop <= {TARGET[part]:.2f}",
                med[mine] / med[loop] if same else None, TARGET[part],
                "the final weights DIFFER: no honest ratio")
    if "tutorial float64" in results:
        if "float64" in dtypes:
            _, diff = agreement(results["purenn float64"], results["tutorial float64"])
            console.print(f"final weights, purenn float64 vs tutorial float64: max |diff| {diff:.2e} "
                          "(reference only)", highlight=False)
        for dtype in dtypes:
            console.print(f"reference, no target: purenn {dtype} / tutorial float64 = "
                          f"{med[f'purenn {dtype}'] / med['tutorial float64']:.3f}", highlight=False)
    return ok


def ce_part(console, args) -> bool:
    """Part ``ce``: purenn.fit against the shuffled softmax cross-entropy loop, per batch size."""
    n = args.samples or DEFAULT_SAMPLES["ce"]
    x64, labels = load_data(args, n)
    n, x = len(x64), x64.astype(np.float32)
    table = Table(title=f"ce: softmax cross-entropy, shuffled (seed {args.seed}), float32, one epoch of {n} "
                        f"samples; median of {args.repeats} interleaved runs")
    for col in ("batch", "steps", "purenn s", "loop s", "purenn µs/step", "loop µs/step",
                "extra µs/step", "purenn / loop", "final weights", "max |diff|"):
        table.add_column(col, justify="right")
    ok, ratios = True, {}
    for batch in args.ce_batch or CE_BATCHES:
        runs = ce_contestants(batch, args.seed)
        times, _, results = timed(runs, dict.fromkeys(runs, (x, labels)), args.repeats)
        p, q = median(times["purenn"]), median(times["numpy loop"])
        steps = -(-n // batch)
        same, diff = agreement(results["purenn"], results["numpy loop"])
        ok &= same != "DIFFERENT"
        ratios[batch] = p / q if same != "DIFFERENT" else None
        table.add_row(str(batch), str(steps), f"{p:.3f}", f"{q:.3f}", f"{p / steps * 1e6:.1f}",
                      f"{q / steps * 1e6:.1f}", f"{(p - q) / steps * 1e6:+.1f}",
                      "-" if ratios[batch] is None else f"{ratios[batch]:.3f}", same, f"{diff:.1e}")
    console.print(table)
    if CE_TARGET_BATCH in ratios:
        verdict(console, f"ce, batch {CE_TARGET_BATCH}: purenn / numpy loop <= {TARGET['ce']:.2f}",
                ratios[CE_TARGET_BATCH], TARGET["ce"], "the final weights DIFFER: no honest ratio")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--part", choices=PARTS, action="append", help="part to run (repeatable; default: all)")
    parser.add_argument("--samples", type=int,
                        help="samples per epoch in every part (default: seed 10000, batch64 and ce 60000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per contestant; the median is compared")
    parser.add_argument("--dtype", choices=("float32", "float64"), action="append",
                        help="dtype of the seed and batch64 parts (repeatable; default: both)")
    parser.add_argument("--ce-batch", type=int, action="append",
                        help=f"batch size of the ce part (repeatable; default: {', '.join(map(str, CE_BATCHES))})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", action="store_true",
                        help="train on the first --samples real MNIST images (from --data-dir or "
                        "$PURENN_DATA) instead of random data")
    parser.add_argument("--no-malloc-warmup", action="store_true",
                        help="skip raising glibc's dynamic mmap/trim threshold before timing")
    add_cli_options(parser, default_seeds="0")
    args = parser.parse_args(argv)
    console = Console(width=130)
    machine_info(console)
    if not args.no_malloc_warmup:
        malloc_warmup(console)
    ok = True
    for part in args.part or PARTS:
        ok &= ce_part(console, args) if part == "ce" else mse_part(console, args, part)
    if args.cli:
        cli_part(console, args, "mlp", min_accuracy=0.985, max_seconds=12, max_mb=None)
    if not ok:
        raise SystemExit("purenn and a hand loop ended with DIFFERENT weights: those ratios were not reported")


if __name__ == "__main__":
    main()
