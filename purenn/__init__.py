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
(the tutorial's XOR and MNIST runs as presets).

Re-exported here: every name of the kinds one extends, taken whole from their modules' ``__all__``
(errors, layers, losses, metrics, optimizers, transformations and schedules: a new layer listed in
its module's ``__all__`` is ``purenn.NewLayer`` with no edit here), and the training, checking,
file and tree functions a user calls, listed by name below.
"""

# ruff reads only a literal ``__all__``: every import below is a re-export, and the ``__all__`` at the
# end is built from the kinds' modules and ``_NAMED``.
# ruff: noqa: F401, PLE0605

from typing import TYPE_CHECKING

from purenn import experiments as experiments  # pn.experiments.run(...): experiments on any code
from purenn.errors import *
from purenn.gradcheck import GradientReport, check_gradients, check_loss_gradients
from purenn.io.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from purenn.io.datasets import Dataset, load_idx_dataset, load_mnist
from purenn.io.idx import read_idx
from purenn.io.records import params_digest
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.layers import *
from purenn.losses import *
from purenn.lr_range import LRRangeResult, lr_range_test
from purenn.metrics import *
from purenn.monitors import EarlyStopping, ReduceLROnPlateau
from purenn.optim import *
from purenn.progress import ProgressBar
from purenn.splits import split_indices, train_val_split
from purenn.summary import ModelSummary, summary
from purenn.training import EpochLog, History, StepLog, evaluate, fit, predict
from purenn.training_state import TrainingState
from purenn.tree import freeze, tree_leaves, tree_map, tree_paths
from purenn.version import __version__ as __version__  # re-exported

_NAMED = [
    # training
    "fit", "predict", "evaluate", "History", "EpochLog", "StepLog", "summary", "ModelSummary",
    "EarlyStopping", "ReduceLROnPlateau", "TrainingState", "ProgressBar", "lr_range_test",
    "LRRangeResult", "train_val_split", "split_indices",
    # checking, data, files
    "check_gradients", "check_loss_gradients", "GradientReport",
    "load_mnist", "load_idx_dataset", "read_idx", "Dataset",
    "save_checkpoint", "load_checkpoint", "read_checkpoint", "params_digest",
    "save_training_state", "load_training_state",
    # trees
    "tree_map", "tree_leaves", "tree_paths", "freeze",
    # experiments: a run function over seeds and a grid of settings (purenn.experiments.run)
    "experiments",
]

#: The modules whose whole ``__all__`` is re-exported: the kinds one adds to.
_KINDS = ("layers", "losses", "metrics", "optim", "errors")

# mypy reads only a literal ``__all__`` and learns the names from the imports above; the list
# built from the modules' own is for Python (``from purenn import *``).
if not TYPE_CHECKING:
    from importlib import import_module

    __all__ = [name for kind in _KINDS for name in import_module(f"{__name__}.{kind}").__all__] + _NAMED
