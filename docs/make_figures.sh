#!/usr/bin/env bash
# Draw the README's pictures again from scratch: docs/experiments.png and docs/compare.png.
#
#   bash docs/make_figures.sh            # needs `pip install -e ".[plot,stats]"` and MNIST
#                                        # ($PURENN_DATA, the cache, or a download)
#
# The runs and their records go to a temporary folder (RUNS=folder keeps them there instead);
# only the pictures are written into docs/. About 2 minutes on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-$(mktemp -d)}"
mkdir -p "$runs"

# two recipes over five seeds (the README's worked comparison): the mlp preset at two learning
# rates, 10% of the training set held out for the per-epoch numbers
purenn mnist --preset mlp --seeds 0-4 --set lr=1e-3,4e-3 --validation 0.1 --jobs 2 --threads 1 \
    --record "$runs/lr.json"
docs="$PWD/docs"
cd "$runs"  # the pictures' labels are the records' names as typed: short ones
purenn plot lr.json --band ci -o "$docs/experiments.png" --width 1000 --height 400
purenn compare lr.json:lr=0.001 lr.json:lr=0.004 -o "$docs/compare.png"

echo "records in $runs; pictures in $docs/experiments.png and $docs/compare.png"
