"""purenn: functional neural networks in plain NumPy.

Layers are frozen attrs records with pure ``init``/``forward``/``backward``; params are trees
of read-only arrays; every training step is a pure function from old values to new ones::

    import numpy as np, purenn as pn
    model = pn.Sequential([pn.Dense(2, 3), pn.Tanh(), pn.Dense(3, 1), pn.Tanh()])
    params = model.init(np.random.default_rng(0))
    y, cache = model.forward(params, x)
    loss, dy = pn.mse(y, targets)
    dx, grads = model.backward(params, cache, dy)
    params = pn.sgd_step(params, grads, lr=0.1)
"""

from purenn.io.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from purenn.io.datasets import DataError, Dataset, load_idx_dataset, load_mnist, read_idx
from purenn.errors import ShapeError
from purenn.gradcheck import GradientCheckError, check_gradients, check_loss_gradients
from purenn.layers import (
    GELU, AvgPool2D, Conv2D, Dense, Dropout, Flatten, Layer, LeakyReLU, MaxPool2D, ReLU, Reshape,
    Sequential, Sigmoid, Softmax, Tanh,
)
from purenn.losses import binary_cross_entropy, mse, one_hot, softmax_cross_entropy
from purenn.metrics import accuracy, confusion_matrix
from purenn.optim.base import sgd_step
from purenn.optim.optimizers import SGD, Adam, AdamW, ClipByGlobalNorm, clip_by_global_norm, global_norm
from purenn.io.records import params_digest
from purenn.optim.schedules import Constant, CosineDecay, ExponentialDecay, StepDecay, WarmUp
from purenn.training import EpochLog, History, evaluate, fit, predict
from purenn.tree import freeze, tree_leaves, tree_map

__version__ = "0.1.0"

__all__ = [
    # layers
    "Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "GELU", "Softmax",
    "Flatten", "Reshape", "Sequential", "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout",
    # losses and metrics
    "mse", "softmax_cross_entropy", "binary_cross_entropy", "one_hot", "accuracy", "confusion_matrix",
    # updates
    "sgd_step", "SGD", "Adam", "AdamW", "ClipByGlobalNorm", "clip_by_global_norm", "global_norm",
    "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "WarmUp",
    # training
    "fit", "predict", "evaluate", "History", "EpochLog",
    # checking, data, files
    "check_gradients", "check_loss_gradients", "GradientCheckError",
    "load_mnist", "load_idx_dataset", "read_idx", "Dataset", "DataError",
    "save_checkpoint", "load_checkpoint", "CheckpointError", "params_digest",
    # trees and errors
    "tree_map", "tree_leaves", "freeze", "ShapeError",
]
