"""The XOR problem as data (purenn.recipes.xor): its inputs and targets, the tutorial's network,
the "solved" test, and examples/xor.py, the same run written against purenn's Python API.
(`purenn xor`, the command built on them, is tested in tests/cli/test_cli_xor.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from purenn.recipes.xor import XOR_INPUTS, XOR_TARGETS, xor_network, xor_solved

ROOT = Path(__file__).resolve().parents[2]


def test_xor_solved_rounds_each_output_to_its_target():
    assert xor_solved(np.array([0.1, 0.9, 0.6, -0.4]))
    assert not xor_solved(np.array([0.1, 0.9, 0.6, 0.5]))
    assert not xor_solved(np.array([0.1, 0.4, 0.6, 0.0]))
    assert XOR_INPUTS.shape == (4, 2) and XOR_TARGETS.shape == (4, 1)
    assert np.array_equal(XOR_TARGETS.ravel(), np.logical_xor(*XOR_INPUTS.T))


def test_xor_network_is_the_tutorials():
    model = xor_network()
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Tanh", "Dense", "Tanh"]
    assert (model.layers[0].in_features, model.layers[0].out_features, model.layers[2].out_features) == (2, 3, 1)
    assert all(layer.initializer == "uniform" for layer in model.layers[::2])
    assert xor_network(5).layers[0].out_features == 5


EXAMPLE = ROOT / "examples" / "xor.py"


def test_examples_xor_runs():
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    # it prints one line per XOR sample with its output and target, then its verdict
    rows = re.findall(r"\[(\d) (\d)\] -> ([+-]\d\.\d+)\s+\(target (\d)\)", proc.stdout)
    assert [(a, b, t) for a, b, _, t in rows] == [("0", "0", "0"), ("0", "1", "1"), ("1", "0", "1"), ("1", "1", "0")]
    solved = all(abs(float(o) - float(t)) < 0.5 for _, _, o, t in rows)
    assert solved == (proc.stdout.strip().splitlines()[-1] == "solved")
