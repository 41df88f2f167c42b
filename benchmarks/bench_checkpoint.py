"""The cost of a training checkpoint: seconds to save and load, and bytes, for a preset.

    python benchmarks/bench_checkpoint.py [--preset cnn] [--repeats 7]

The state is the one after one real training step on random data (params, Adam's moments, layer
state, generators, position); the median of ``--repeats`` saves and loads is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import purenn as pn
from purenn.recipes.presets import PRESETS
from purenn.training_state import TrainingState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cnn", choices=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    model = preset.model
    rng = np.random.default_rng(0)
    x = rng.random((preset.batch_size, 784), dtype=np.float32)
    y = rng.integers(0, 10, preset.batch_size)
    states: list[TrainingState] = []
    pn.fit(model, model.init(rng), x, y, loss=preset.loss, optimizer=pn.Adam(1e-3), epochs=1,
           batch_size=preset.batch_size, state=model.init_state(), checkpoint=states.append)
    state = states[-1]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "training.npz")
        saves, loads = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pn.save_training_state(path, model, state)
            saves.append(time.perf_counter() - start)
            start = time.perf_counter()
            pn.load_training_state(path)
            loads.append(time.perf_counter() - start)
        size = os.path.getsize(path)
    n_params = sum(a.size for a in pn.tree_leaves(state.params))
    print(f"{args.preset}: {n_params:,} parameters; training checkpoint {size:,} bytes "
          f"({size / 2**20:.2f} MiB); save {statistics.median(saves) * 1e3:.1f} ms, "
          f"load {statistics.median(loads) * 1e3:.1f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
