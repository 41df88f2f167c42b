"""Updates: gradient transformations, the named optimizers built from them, and schedules.

    base.py          the contract (Transformation, Chain, Optimizer, State)
    apply.py         adding updates to params, array by array: apply_updates, sgd_step
    transforms.py    the building blocks: ScaleByAdam, Trace, AddDecayedWeights, ... (per-array math)
    optimizers.py    named compositions: SGD, Adam, AdamW (MaskedAdamW), RMSProp, Adagrad
    masking.py       parameter subsets: Masked, Partition, SetToZero, decay_mask
    accumulate.py    gradient accumulation: MultiSteps
    averaging.py     weight averages of the params: EMA
    schedules.py     learning rates as functions of the step: CosineDecay, WarmUp, ...

Each module's ``__all__`` names what it offers; this package re-exports exactly those, and
``purenn`` re-exports this package's. A new optimizer or transformation listed in its module's
``__all__`` needs no edit here; a new module, its star import and its name in ``_MODULES``.
"""

from typing import TYPE_CHECKING

from purenn.optim.accumulate import *
from purenn.optim.apply import *
from purenn.optim.averaging import *
from purenn.optim.base import *
from purenn.optim.masking import *
from purenn.optim.optimizers import *
from purenn.optim.schedules import *
from purenn.optim.transforms import *

_MODULES = ("apply", "base", "transforms", "masking", "accumulate", "optimizers", "averaging", "schedules")

# mypy reads only a literal ``__all__`` and learns the names from the star imports above; the list
# built from the modules' own is for Python (``import *``, purenn.io.serialize's registry).
if not TYPE_CHECKING:
    from importlib import import_module

    __all__ = [name for module in _MODULES for name in import_module(f"{__name__}.{module}").__all__]
