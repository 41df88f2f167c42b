"""purenn: functional neural networks in plain NumPy.

Layers are frozen attrs records with pure ``init``/``forward``/``backward``; params are trees
of read-only arrays; every training step is a pure function from old values to new ones.
"""

from purenn.errors import ShapeError
from purenn.layers import (
    GELU, Dense, Flatten, Layer, LeakyReLU, ReLU, Reshape, Sequential, Sigmoid, Softmax, Tanh,
)
from purenn.losses import binary_cross_entropy, mse, softmax_cross_entropy
from purenn.optim import sgd_step
from purenn.tree import freeze, tree_leaves, tree_map

__version__ = "0.1.0"

__all__ = [
    "Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "GELU", "Softmax",
    "Flatten", "Reshape", "Sequential",
    "mse", "softmax_cross_entropy", "binary_cross_entropy",
    "sgd_step", "tree_map", "tree_leaves", "freeze", "ShapeError",
]
