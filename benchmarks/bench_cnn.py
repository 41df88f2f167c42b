"""Benchmark: training steps of the MNIST CNN, purenn against PyTorch on the CPU.

The network is the ``cnn`` preset's (see ``build_purenn``): input rows of 784 floats reshaped to
28 x 28 x 1, Conv2D(1, 32, 5), MaxPool2D(2), ReLU, Conv2D(32, 64, 5), MaxPool2D(2), ReLU, Flatten,
Dense(1024, 128), ReLU, Dropout(0.25), Dense(128, 10), softmax cross-entropy, Adam. (Pooling before
the ReLU gives exactly the same function as after it -- max and ReLU commute -- on 4x fewer values.)
The data is random, of MNIST's shape. One step is forward, loss, backward and the Adam update; the
timed run does ``--batches`` consecutive steps in order (``--full``: a whole epoch of 60000 samples).

Contestants, in the same process on the same data, repeats interleaved, best time of each kept:
  purenn   purenn's layers, softmax_cross_entropy and Adam, step by step as ``purenn.fit`` does
  torch    (only if ``import torch`` works) the same network in PyTorch on the CPU, float32,
           NCHW, ``torch.optim.Adam``, ``torch.set_num_threads`` = the BLAS thread count below

Target (from the issue): purenn / torch <= 2.

BLAS threads: OpenBLAS reads OPENBLAS_NUM_THREADS when numpy is imported; ``--threads N`` sets it
(and torch's count) before the import, so compare ``--threads 1`` and ``--threads 2``.

    python benchmarks/bench_cnn.py                         # 100 batches of 128, all cores
    python benchmarks/bench_cnn.py --threads 1 --batches 50
    python benchmarks/bench_cnn.py --full --repeats 1      # one whole epoch (469 batches)
    python benchmarks/bench_cnn.py --profile               # per-layer forward/backward times
"""

from __future__ import annotations

import argparse
import math
import os
import time

MNIST_TRAIN = 60000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128, help="batch size (the preset's: 128)")
    p.add_argument("--batches", type=int, default=100, help="training steps per timed run")
    p.add_argument("--full", action="store_true", help="a whole epoch: 60000 samples")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contestant (best kept)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS / torch threads (default: leave OpenBLAS's default, torch = cpu count)")
    p.add_argument("--no-torch", action="store_true", help="time purenn only")
    p.add_argument("--profile", action="store_true", help="also print per-layer times of purenn")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads is not None:  # must happen before numpy is imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import purenn  # noqa: E402
from purenn import Conv2D, Dense, Dropout, MaxPool2D, Sequential, softmax_cross_entropy  # noqa: E402
from purenn.recipes.presets import PRESETS  # noqa: E402


KERNEL, CHANNELS, HIDDEN, DROPOUT = 5, (32, 64), 128, 0.25
SIDE = ((28 - KERNEL + 1) // 2 - KERNEL + 1) // 2  # 4: the side of the last feature maps


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


def purenn_run(model, batch, seed):
    """One pass of training steps on ``(x, y)`` in order (no shuffle): ``purenn.fit`` itself."""
    def run(x, y):
        params = model.init(np.random.default_rng(seed))
        params, _ = purenn.fit(model, params, x, y, loss=softmax_cross_entropy, epochs=1,
                               batch_size=batch, optimizer=purenn.Adam(1e-3), shuffle=False, seed=seed)
        return params
    return run


def torch_run(torch, batch, seed):
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(x, y):
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        torch.manual_seed(seed)
        net = build_torch(torch)
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for s in range(0, len(xt), batch):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[s : s + batch]), yt[s : s + batch])
            loss.backward()
            opt.step()
        return net
    return run


def time_all(runs, x, y, batch, repeats):
    names = list(runs)
    for name in names:  # warm-up on a few steps: first-call costs (allocator, BLAS buffers, kernels)
        runs[name](x[: 3 * batch], y[: 3 * batch])
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name](x, y)
            times[name].append(time.perf_counter() - start)
    return times


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


def profile(model, x, y, batch, seed):
    """Median milliseconds per step of each layer's forward and backward, the loss and Adam.

    Medians, not means, so that a busy machine's stalls do not land on whichever layer ran then.
    """
    params = model.init(np.random.default_rng(seed))
    opt = purenn.Adam(1e-3)
    state = opt.init(params)
    rng = np.random.default_rng(seed)
    n_layers = len(model.layers)
    rows = []  # per step: forward times, backward times, loss, adam
    n_batches = len(x) // batch
    for k in range(n_batches):
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
        params, state = opt.update(params, tuple(grads), state)
        t_adam = time.perf_counter() - t
        if k >= 2:  # the first two steps are warm-up
            rows.append(np.concatenate([fwd, bwd, [t_loss, t_adam]]))
    med = np.median(np.array(rows), axis=0) * 1e3
    fwd, bwd, (t_loss, t_adam) = med[:n_layers], med[n_layers : 2 * n_layers], med[2 * n_layers :]
    total = med.sum()
    table = Table(title=f"purenn, ms per step of batch {batch} (median of {len(rows)} steps)")
    for col in ("step part", "forward", "backward", "share"):
        table.add_column(col, justify="left" if col == "step part" else "right")
    for i, layer in enumerate(model.layers):
        table.add_row(f"{i} {_label(layer)}", f"{fwd[i]:.2f}", f"{bwd[i]:.2f}", f"{(fwd[i] + bwd[i]) / total:.0%}")
    table.add_row("softmax_cross_entropy", f"{t_loss:.2f}", "", f"{t_loss / total:.0%}")
    table.add_row("Adam update", "", f"{t_adam:.2f}", f"{t_adam / total:.0%}")
    table.add_row("total", f"{fwd.sum() + t_loss:.1f}", f"{bwd.sum() + t_adam:.1f}", f"{total:.1f} ms")
    return table


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.environ.get("OPENBLAS_NUM_THREADS", "default")
    counts = {i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"}
    return ",".join(map(str, sorted(counts))) or "?"


def main(args) -> None:
    console = Console()
    n = MNIST_TRAIN if args.full else args.batches * args.batch
    n_batches = math.ceil(n / args.batch)
    x, y = make_data(n, args.seed)
    model = build_purenn()
    runs = {"purenn": purenn_run(model, args.batch, args.seed)}

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            console.print("torch is not installed: timing purenn only")
    if torch is not None:
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        runs["torch"] = torch_run(torch, args.batch, args.seed)

    times = time_all(runs, x, y, args.batch, args.repeats)
    best = {name: min(t) for name, t in times.items()}
    threads = f"BLAS threads {blas_threads()}" + (f", torch threads {torch.get_num_threads()}" if torch else "")
    table = Table(title=f"CNN training: {n_batches} steps of batch {args.batch} ({n} samples), float32, "
                        f"Adam; {threads}; best of {args.repeats}")
    for col in ("contestant", "s / run", "ms / step", "s / epoch (60k)", "median s", "vs torch"):
        table.add_column(col, justify="left" if col == "contestant" else "right")
    for name, t in best.items():
        ratio = f"{t / best['torch']:.2f}" if "torch" in best else "-"
        table.add_row(name, f"{t:.3f}", f"{t / n_batches * 1e3:.1f}",
                      f"{t / n * MNIST_TRAIN:.1f}", f"{np.median(times[name]):.3f}", ratio)
    console.print(table)
    if "torch" in best:
        ratio = best["purenn"] / best["torch"]
        mark = "[green]met[/green]" if ratio <= 2.0 else "[red]NOT met[/red]"
        console.print(f"target purenn / torch <= 2: ratio {ratio:.2f} -> {mark}")
    if args.profile:
        px, py = make_data(PROFILE_STEPS * args.batch, args.seed)
        console.print(profile(model, px, py, args.batch, args.seed))


if __name__ == "__main__":
    main(ARGS)
