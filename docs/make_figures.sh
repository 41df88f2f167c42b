#!/usr/bin/env bash
# Draw the README's pictures again from scratch: docs/experiments.png.
#
#   bash docs/make_figures.sh            # needs `pip install -e ".[plot]"` and MNIST
#                                        # ($PURENN_DATA, the cache, or a download)
#
# The runs and their records go to a temporary folder (RUNS=folder keeps them there instead);
# only the picture is written into docs/. About 3 minutes on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-$(mktemp -d)}"
mkdir -p "$runs"

# two recipes over five seeds: the mlp preset, and the same with a smaller learning rate
purenn mnist --seeds 0-4 --record "$runs/mlp.json"
purenn mnist --seeds 0-4 --lr 5e-4 --record "$runs/mlp-lr5e-4.json"
purenn plot "$runs/mlp.json" "$runs/mlp-lr5e-4.json" -o docs/experiments.png --width 1000 --height 400

echo "records in $runs; picture in docs/experiments.png"
