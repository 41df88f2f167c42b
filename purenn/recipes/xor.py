"""The tutorial's XOR problem: data, network and the test of whether it was solved."""

from __future__ import annotations

import numpy as np

from purenn.layers import Dense, Sequential, Tanh

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float32)


def xor_network(hidden: int = 3) -> Sequential:
    """The tutorial's XOR network: Dense(2, hidden), tanh, Dense(hidden, 1), tanh, with its
    uniform [-0.5, 0.5) initialisation."""
    return Sequential([
        Dense(2, hidden, initializer="uniform"), Tanh(),
        Dense(hidden, 1, initializer="uniform"), Tanh(),
    ])


def xor_solved(outputs: np.ndarray, targets: np.ndarray = XOR_TARGETS) -> bool:
    """Solved when every output rounds to its target: |output - target| < 0.5."""
    return bool(np.all(np.abs(np.asarray(outputs).reshape(targets.shape) - targets) < 0.5))
