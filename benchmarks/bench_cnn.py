"""Benchmark: training steps of the MNIST CNN, purenn against PyTorch on the CPU.

The network is the ``cnn`` preset's (see ``build_purenn``): input rows of 784 floats reshaped to
28 x 28 x 1, Conv2D(1, 32, 5), MaxPool2D(2), ReLU, Conv2D(32, 64, 5), MaxPool2D(2), ReLU, Flatten,
Dense(1024, 128), ReLU, Dropout(0.25), Dense(128, 10), softmax cross-entropy, Adam(lr 1e-3).
(Pooling before the ReLU gives exactly the same function as after it -- max and ReLU commute --
on 4x fewer values.) The data is random, of MNIST's shape. One step is forward, loss, backward
and the Adam update; a timed run is ``--batches`` consecutive steps of batch 128 in order (no
shuffle; ``--full``: a whole epoch of 60000 samples), from the same initial weights each time.

Contestants, in this process, on the same data:
  purenn   ``purenn.fit(model, params, x, y, loss=softmax_cross_entropy, batch_size=128,
           optimizer=Adam(1e-3), shuffle=False)``
  torch    (if ``import torch`` works) the same network in PyTorch on the CPU, float32, NCHW,
           ``torch.optim.Adam(lr=1e-3)``, started from purenn's initial weights

Threads: each thread count of ``--threads`` (default 1,2) is measured in the same run: OpenBLAS
is limited at runtime with threadpoolctl (checked with threadpool_info) and torch gets
``torch.set_num_threads``. All (contestant, threads) runs are interleaved, the order rotating
each round, and the MEDIAN over ``--repeats`` is compared.

Before timing, both networks are checked to compute the same function: purenn's initial params
are copied into the torch model (channels-last conv kernels (kh, kw, in, out) -> (out, in, kh, kw);
the first Dense's rows permuted from purenn's (h, w, c) flattening to torch's (c, h, w); Dense
(in, out) -> Linear (out, in)), and the logits, the loss and every parameter gradient of one batch
in evaluation mode (no dropout) must agree to a relative 1e-4 of each array's scale. If they do
not, nothing is timed and the run exits 1.

Targets (issue 12), on medians:
  purenn / torch <= 1.0, with 1 and with 2 BLAS threads
  --cli: `purenn mnist --preset cnn`: test accuracy >= 99.2% on every seed (default 0,1,2),
         training <= 45 s, peak memory of the process <= 400 MB

Run it as a script (it imports its sibling benchmarks/_common.py):

    python benchmarks/bench_cnn.py                         # 100 steps of 128, 1 and 2 threads
    python benchmarks/bench_cnn.py --batches 5 --repeats 2 # a quick look
    python benchmarks/bench_cnn.py --full --repeats 3      # whole epochs (469 steps)
    python benchmarks/bench_cnn.py --threads 1 --profile   # plus per-layer forward/backward times
    python benchmarks/bench_cnn.py --cli --batches 5 --cli-args="--limit 2000 --epochs 1"  # CLI smoke test
    python benchmarks/bench_cnn.py --no-torch --cli --seeds 0,1,2   # the CLI's time to accuracy
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time

import numpy as np
from _common import (
    add_cli_options,
    blas_pools,
    cli_part,
    interleave,
    machine_info,
    median,
    verdict,
)
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

import purenn
from purenn import Conv2D, Dense, Dropout, MaxPool2D, Sequential, softmax_cross_entropy
from purenn.recipes.presets import PRESETS

MNIST_TRAIN = 60000
TARGET = 1.0
TORCH_MISSING = ("PyTorch is not installed: the purenn/PyTorch ratios are not measured "
                 "(pip install torch==2.13.0)")
KERNEL, CHANNELS, HIDDEN, DROPOUT = 5, (32, 64), 128, 0.25
SIDE = ((28 - KERNEL + 1) // 2 - KERNEL + 1) // 2  # 4: the side of the last feature maps
# torch flattens (c, h, w), purenn (h, w, c): torch's input t of the first Linear is purenn's row FLAT[t]
FLAT = np.arange(SIDE * SIDE * CHANNELS[1]).reshape(SIDE, SIDE, CHANNELS[1]).transpose(2, 0, 1).ravel()
RTOL = 1e-4  # agreement: |purenn - torch| <= RTOL * (|torch| + max |torch|), per array


def build_purenn() -> Sequential:
    """The ``cnn`` preset's network (flat (batch, 784) rows in); the torch twin below mirrors it."""
    model = PRESETS["cnn"].model
    expected = (KERNEL, CHANNELS, HIDDEN, DROPOUT)
    conv = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    drop = [layer for layer in model.layers if isinstance(layer, Dropout)]
    found = (conv[0].kernel_size[0], (conv[0].out_channels, conv[1].out_channels),
             dense[0].out_features, drop[0].rate)
    if found != expected:
        raise SystemExit(f"the cnn preset changed ({found} != {expected}): update build_torch")
    return model


def build_torch(torch):
    """The same network in PyTorch (NCHW inside, same flat input rows)."""
    nn = torch.nn
    c1, c2 = CHANNELS
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, c1, KERNEL), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(c1, c2, KERNEL), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(SIDE * SIDE * c2, HIDDEN), nn.ReLU(),
        nn.Dropout(DROPOUT),
        nn.Linear(HIDDEN, 10),
    )


def make_data(n: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


# --- purenn's params <-> torch's modules


def param_pairs(torch, model, net):
    """(purenn layer index, torch module, kind) for each layer with weights, in order; kind is
    'conv', 'flat' (the Dense after Flatten) or 'dense'."""
    mine = [i for i, layer in enumerate(model.layers) if isinstance(layer, (Conv2D, Dense))]
    theirs = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    kinds = ["conv" if isinstance(model.layers[i], Conv2D) else "dense" for i in mine]
    kinds[kinds.index("dense")] = "flat"
    return list(zip(mine, theirs, kinds))


def to_torch_layout(kind: str, w: np.ndarray) -> np.ndarray:
    if kind == "conv":
        return w.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    return (w[FLAT] if kind == "flat" else w).T  # (in, out) -> (out, in)


def from_torch_layout(kind: str, g: np.ndarray) -> np.ndarray:
    if kind == "conv":
        return g.transpose(2, 3, 1, 0)
    if kind == "flat":
        out = np.empty_like(g.T)
        out[FLAT] = g.T
        return out
    return g.T


def torch_twin(torch, model, params):
    """The torch network holding a copy of purenn's ``params``."""
    net = build_torch(torch)
    with torch.no_grad():
        for i, module, kind in param_pairs(torch, model, net):
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(to_torch_layout(kind, params[i]["w"]))))
            module.bias.copy_(torch.from_numpy(np.array(params[i]["b"])))
    return net


def check_same_function(console, torch, model, params, x, y) -> None:
    """Logits, loss and parameter gradients of one batch, evaluation mode, purenn vs torch;
    exit 1 if any disagree."""
    out, caches = model.forward(params, x)  # no rng: evaluation mode, no dropout
    value, dy = softmax_cross_entropy(out, y)
    _, grads = model.backward(params, caches, dy)
    net = torch_twin(torch, model, params)
    net.eval()
    logits = net(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()

    items = [("logits", out, logits.detach().numpy()), ("loss", np.float32(value), loss.detach().numpy())]
    for i, module, kind in param_pairs(torch, model, net):
        name = f"layer {i} {type(model.layers[i]).__name__}"
        items.append((f"{name} dE/dw", grads[i]["w"], from_torch_layout(kind, module.weight.grad.numpy())))
        items.append((f"{name} dE/db", grads[i]["b"], module.bias.grad.numpy()))
    table = Table(title=f"same weights, same batch of {len(x)}, evaluation mode: purenn against torch")
    for col in ("quantity", "shape", "max |torch|", "max |diff|", "agree"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    bad = []
    for name, a, b in items:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = float(np.max(np.abs(b)))
        ok = a.shape == b.shape and bool(np.all(np.abs(a - b) <= RTOL * (np.abs(b) + scale)))
        diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("nan")
        table.add_row(name, str(a.shape), f"{scale:.3g}", f"{diff:.2e}", "yes" if ok else "[red]NO[/red]")
        if not ok:
            bad.append(name)
    console.print(table)
    if bad:
        console.print(f"[red]purenn and torch do not compute the same function ({', '.join(bad)} differ): "
                      "not timing them[/red]")
        raise SystemExit(1)
    console.print(f"purenn and torch agree (to {RTOL:g} of each array's scale): timing them")


# --- the contestants


def purenn_run(model, params, x, y, batch, seed):
    """Training steps on ``(x, y)`` in order: ``purenn.fit`` itself."""
    def run():
        new, _ = purenn.fit(model, params, x, y, loss=softmax_cross_entropy, epochs=1, batch_size=batch,
                            optimizer=purenn.Adam(1e-3), shuffle=False, seed=seed)
        return new
    return run


def torch_run(torch, model, params, x, y, batch, seed):
    """The same steps in torch, from purenn's initial weights (reloaded for every run)."""
    net = torch_twin(torch, model, params)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        net.load_state_dict(start)
        net.train()
        torch.manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for s in range(0, len(xt), batch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[s : s + batch]), yt[s : s + batch])
            loss.backward()
            opt.step()
        return net
    return run


@contextlib.contextmanager
def thread_limit(n: int, torch):
    """OpenBLAS (every BLAS threadpoolctl finds) and torch limited to ``n`` threads, checked."""
    with threadpool_limits(limits=n, user_api="blas"):
        got = sorted({p["num_threads"] for p in blas_pools()})
        if got != [n]:
            raise SystemExit(f"could not limit BLAS to {n} threads: threadpool_info reports {got} "
                             "(is OPENBLAS_NUM_THREADS set lower, or n above the cores?)")
        if torch is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            if torch.get_num_threads() != n:
                raise SystemExit(f"could not set torch to {n} threads (it has {torch.get_num_threads()})")
            yield
        finally:
            torch.set_num_threads(before)


# --- the profile


def _label(layer) -> str:
    """``Conv2D(1->32, 3x3)``-style short names for the profile table."""
    name = type(layer).__name__
    if isinstance(layer, Conv2D):
        return f"{name}({layer.in_channels}->{layer.out_channels}, {layer.kernel_size[0]}x{layer.kernel_size[1]})"
    if isinstance(layer, Dense):
        return f"{name}({layer.in_features}->{layer.out_features})"
    if isinstance(layer, MaxPool2D):
        return f"{name}({layer.pool_size[0]}x{layer.pool_size[1]})"
    if isinstance(layer, Dropout):
        return f"{name}({layer.rate})"
    return name


PROFILE_STEPS = 32  # the first two are warm-up


def profile(model, x, y, batch, seed, threads):
    """Median milliseconds per step of each layer's forward and backward, the loss and Adam.

    Medians, not means, so that a busy machine's stalls do not land on whichever layer ran then.
    """
    params = model.init(np.random.default_rng(seed))
    opt = purenn.Adam(1e-3)
    state = opt.init(params)
    rng = np.random.default_rng(seed)
    n_layers = len(model.layers)
    rows = []  # per step: forward times, backward times, loss, adam
    for k in range(len(x) // batch):
        xb, yb = x[k * batch : (k + 1) * batch], y[k * batch : (k + 1) * batch]
        fwd, bwd, caches = np.zeros(n_layers), np.zeros(n_layers), []
        for i, (layer, p) in enumerate(zip(model.layers, params)):
            t = time.perf_counter()
            if getattr(layer, "stochastic", False):
                xb, c = layer.forward(p, xb, rng=rng)
            else:
                xb, c = layer.forward(p, xb)
            fwd[i] = time.perf_counter() - t
            caches.append(c)
        t = time.perf_counter()
        _, dy = softmax_cross_entropy(xb, yb)
        t_loss = time.perf_counter() - t
        grads = [None] * n_layers
        for i in range(n_layers - 1, -1, -1):
            t = time.perf_counter()
            dy, grads[i] = model.layers[i].backward(params[i], caches[i], dy)
            bwd[i] = time.perf_counter() - t
        t = time.perf_counter()
        params, state = opt.update(tuple(grads), state, params)
        t_adam = time.perf_counter() - t
        if k >= 2:  # the first two steps are warm-up
            rows.append(np.concatenate([fwd, bwd, [t_loss, t_adam]]))
    med = np.median(np.array(rows), axis=0) * 1e3
    fwd, bwd, (t_loss, t_adam) = med[:n_layers], med[n_layers : 2 * n_layers], med[2 * n_layers :]
    total = med.sum()
    table = Table(title=f"purenn, ms per step of batch {batch}, {threads} BLAS thread(s) (median of {len(rows)} steps)")
    for col in ("step part", "forward", "backward", "share"):
        table.add_column(col, justify="left" if col == "step part" else "right")
    for i, layer in enumerate(model.layers):
        table.add_row(f"{i} {_label(layer)}", f"{fwd[i]:.2f}", f"{bwd[i]:.2f}", f"{(fwd[i] + bwd[i]) / total:.0%}")
    table.add_row("softmax_cross_entropy", f"{t_loss:.2f}", "", f"{t_loss / total:.0%}")
    table.add_row("Adam update", "", f"{t_adam:.2f}", f"{t_adam / total:.0%}")
    table.add_row("total", f"{fwd.sum() + t_loss:.1f}", f"{bwd.sum() + t_adam:.1f}", f"{total:.1f} ms")
    return table


# --- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--batch", type=int, default=128, help="batch size (the preset's: 128)")
    p.add_argument("--batches", type=int, default=100, help="training steps per timed run")
    p.add_argument("--full", action="store_true", help="a whole epoch per timed run: 60000 samples")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contestant and thread count (median compared)")
    p.add_argument("--threads", default="1,2", help="BLAS / torch thread counts to measure (default: 1,2)")
    p.add_argument("--no-torch", action="store_true", help="time purenn only")
    p.add_argument("--profile", action="store_true", help="also print per-layer times of purenn")
    p.add_argument("--seed", type=int, default=0)
    add_cli_options(p, default_seeds="0,1,2")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    console = Console(width=120)
    thread_counts = [int(t) for t in args.threads.split(",")]
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            console.print(TORCH_MISSING)
    machine_info(console, f"torch {torch.__version__}" if torch is not None else
                 ("torch not asked for (--no-torch)" if args.no_torch else "torch not installed"))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if max(thread_counts) > cores:
        console.print(f"[yellow]warning: {max(thread_counts)} threads but this process may use {cores} "
                      "core(s): the threads wait for each other, which measures the machine, not the "
                      "code[/yellow]")
    n = MNIST_TRAIN if args.full else args.batches * args.batch
    n_batches = math.ceil(n / args.batch)
    x, y = make_data(n, args.seed)
    model = build_purenn()
    params = model.init(np.random.default_rng(args.seed))
    if torch is not None:
        check_same_function(console, torch, model, params, x[: args.batch], y[: args.batch])

    runs, limits = {}, {}
    for t in thread_counts:
        runs[f"purenn, {t} thread(s)"] = purenn_run(model, params, x, y, args.batch, args.seed)
        limits[f"purenn, {t} thread(s)"] = t
        if torch is not None:
            runs[f"torch, {t} thread(s)"] = torch_run(torch, model, params, x, y, args.batch, args.seed)
            limits[f"torch, {t} thread(s)"] = t
    warm = {name: purenn_run(model, params, x[: 3 * args.batch], y[: 3 * args.batch], args.batch, args.seed)
            if name.startswith("purenn") else
            torch_run(torch, model, params, x[: 3 * args.batch], y[: 3 * args.batch], args.batch, args.seed)
            for name in runs}

    def around(name):
        return thread_limit(limits[name], torch)

    interleave(warm, 1, around)  # first-call costs: allocator, BLAS buffers, kernels
    times, _, _ = interleave(runs, args.repeats, around)

    med = {name: median(ts) for name, ts in times.items()}
    table = Table(title=f"CNN training: {n_batches} steps of batch {args.batch} ({n} samples) per run, float32, "
                        f"Adam; median of {args.repeats} interleaved runs")
    for col in ("contestant", "threads", "median s / run", "min s", "ms / step", "s / epoch (60k)", "purenn / torch"):
        table.add_column(col, justify="left" if col == "contestant" else "right")
    for name, m in med.items():
        who, t = name.split(",")[0], limits[name]
        ratio = med[f"purenn, {t} thread(s)"] / med[f"torch, {t} thread(s)"] if torch is not None else None
        table.add_row(who, str(t), f"{m:.3f}", f"{min(times[name]):.3f}", f"{m / n_batches * 1e3:.1f}",
                      f"{m / n * MNIST_TRAIN:.1f}", "-" if ratio is None or who == "torch" else f"{ratio:.3f}")
    console.print(table)
    console.print("thread limits checked before every run: threadpool_info for BLAS"
                  + (", torch.get_num_threads for torch" if torch is not None else ""))
    for t in thread_counts:
        ratio = med[f"purenn, {t} thread(s)"] / med[f"torch, {t} thread(s)"] if torch is not None else None
        verdict(console, f"purenn / torch <= {TARGET:g} with {t} BLAS thread(s)", ratio, TARGET,
                "PyTorch is not installed" if not args.no_torch else "--no-torch")
    if args.profile:
        px, py = make_data(PROFILE_STEPS * args.batch, args.seed)
        with thread_limit(thread_counts[0], torch):
            console.print(profile(model, px, py, args.batch, args.seed, thread_counts[0]))
    if args.cli:
        cli_part(console, args, "cnn", min_accuracy=0.992, max_seconds=45, max_mb=400)


if __name__ == "__main__":
    main()
