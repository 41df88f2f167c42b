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

The package, bottom to top (``docs/ARCHITECTURE.md`` is the map): ``errors``, ``validation``,
``tree``; ``layers/``, ``losses``, ``metrics``; ``optim/`` (transformations, optimizers,
schedules); ``training``, ``gradcheck``; ``io/`` (data sets, checkpoints, records); ``recipes/``
(the tutorial's XOR and MNIST runs as presets). Every public name is re-exported here.
"""

from purenn.errors import (
    ArgumentError, ArgumentTypeError, CheckpointError, ChecksumError, DataError,
    DatasetNotFoundError, DivergenceError, DownloadError, GradientCheckError, PurennError,
    RecordError, SerializeError, ShapeError, TrainingInterrupted, WrongDatasetError,
)
from purenn.gradcheck import GradientReport, check_gradients, check_loss_gradients
from purenn.io.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from purenn.io.datasets import Dataset, load_idx_dataset, load_mnist
from purenn.io.idx import read_idx
from purenn.io.records import params_digest
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.layers import (
    GELU, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, Identity, Layer, LayerNorm,
    LeakyReLU, MaxPool2D, Parallel, ReLU, Reshape, Residual, Sequential, Sigmoid, Softmax, Tanh,
    apply_layer,
)
from purenn.losses import binary_cross_entropy, mse, one_hot, softmax_cross_entropy
from purenn.metrics import accuracy, confusion_matrix
from purenn.optim import (
    EMA, SGD, AddDecayedWeights, Adagrad, Adam, AdamW, Chain, ClipByGlobalNorm,
    Constant, CosineDecay, ExponentialDecay, Masked, MaskedAdamW, MultiSteps, Optimizer, Partition,
    RMSProp, ScaleByAdagrad, ScaleByAdam, ScaleByLearningRate, ScaleByRMS, ScaleByStddev, Schedule,
    SetToZero, State, StepDecay, Trace, Transformation, WarmUp, apply_updates, chain,
    clip_by_global_norm, decay_mask, global_norm, masked, partition, resolve_masks, sgd_step,
)
from purenn.monitors import EarlyStopping, ReduceLROnPlateau
from purenn.summary import ModelSummary, summary
from purenn.training import EpochLog, History, evaluate, fit, predict
from purenn.training_state import TrainingState
from purenn.tree import freeze, tree_leaves, tree_map, tree_paths
from purenn.version import __version__ as __version__  # re-exported
from purenn import experiments as experiments  # pn.experiments.run(...): experiments on any code

__all__ = [
    # layers
    "Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "GELU", "Softmax",
    "Flatten", "Reshape", "Sequential", "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout",
    "BatchNorm", "LayerNorm", "Identity", "Residual", "Parallel", "apply_layer",
    # losses and metrics
    "mse", "softmax_cross_entropy", "binary_cross_entropy", "one_hot", "accuracy", "confusion_matrix",
    # updates: the tutorial's step, optimizers, transformations, schedules
    "sgd_step", "apply_updates",
    "Optimizer", "SGD", "Adam", "AdamW", "RMSProp", "Adagrad",
    "Transformation", "State", "Chain", "chain", "ScaleByLearningRate", "AddDecayedWeights",
    "Trace", "ScaleByAdam", "ScaleByRMS", "ScaleByStddev", "ScaleByAdagrad", "ClipByGlobalNorm",
    "clip_by_global_norm", "global_norm",
    "Masked", "masked", "Partition", "partition", "SetToZero", "decay_mask", "resolve_masks",
    "MultiSteps", "MaskedAdamW", "EMA",
    "Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "WarmUp",
    # training
    "fit", "predict", "evaluate", "History", "EpochLog", "summary", "ModelSummary",
    "EarlyStopping", "ReduceLROnPlateau", "TrainingState",
    # checking, data, files
    "check_gradients", "check_loss_gradients", "GradientReport",
    "load_mnist", "load_idx_dataset", "read_idx", "Dataset",
    "save_checkpoint", "load_checkpoint", "read_checkpoint", "params_digest",
    "save_training_state", "load_training_state",
    # trees
    "tree_map", "tree_leaves", "tree_paths", "freeze",
    # errors
    "PurennError", "ArgumentError", "ArgumentTypeError", "ShapeError", "GradientCheckError",
    "DivergenceError", "TrainingInterrupted", "DataError", "DatasetNotFoundError", "DownloadError", "ChecksumError",
    "WrongDatasetError", "SerializeError", "CheckpointError",
    "RecordError",
    # experiments: a run function over seeds and a grid of settings (purenn.experiments.run)
    "experiments",
]
