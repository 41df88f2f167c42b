"""Updates: gradient transformations, the named optimizers built from them, and schedules.

    base.py          the contract (Transformation, Chain, Optimizer, State), apply_updates, sgd_step
    transforms.py    the building blocks: ScaleByAdam, Trace, AddDecayedWeights, ... (per-array math)
    optimizers.py    named compositions: SGD, Adam, AdamW (MaskedAdamW), RMSProp, Adagrad
    masking.py       parameter subsets: Masked, Partition, SetToZero, decay_mask
    accumulate.py    gradient accumulation: MultiSteps
    averaging.py     weight averages of the params: EMA
    schedules.py     learning rates as functions of the step: CosineDecay, WarmUp, ...
"""

from purenn.optim.accumulate import MultiSteps
from purenn.optim.averaging import EMA, Average
from purenn.optim.base import (
    Chain, FromTransformation, Optimizer, State, Transformation, apply_updates, as_optimizer, chain,
    sgd_step,
)
from purenn.optim.masking import (
    MASK_RULES, Masked, Partition, SetToZero, decay_mask, masked, partition, resolve_masks,
)
from purenn.optim.optimizers import SGD, Adagrad, Adam, AdamW, MaskedAdamW, RMSProp
from purenn.optim.schedules import Constant, CosineDecay, ExponentialDecay, Schedule, StepDecay, WarmUp
from purenn.optim.transforms import (
    AddDecayedWeights, ClipByGlobalNorm, ScaleByAdagrad, ScaleByAdam, ScaleByLearningRate,
    ScaleByRMS, ScaleByStddev, Trace, clip_by_global_norm, global_norm,
)

__all__ = [
    # the contract
    "Transformation", "Chain", "chain", "State", "Optimizer", "FromTransformation",
    "as_optimizer", "apply_updates", "sgd_step",
    # transformations
    "ScaleByLearningRate", "AddDecayedWeights", "Trace", "ScaleByAdam", "ScaleByRMS",
    "ScaleByStddev", "ScaleByAdagrad", "ClipByGlobalNorm", "global_norm", "clip_by_global_norm",
    # parameter subsets, gradient accumulation
    "Masked", "masked", "Partition", "partition", "SetToZero", "decay_mask", "MASK_RULES",
    "resolve_masks", "MultiSteps",
    # optimizers
    "SGD", "Adam", "AdamW", "MaskedAdamW", "RMSProp", "Adagrad",
    # weight averages
    "Average", "EMA",
    # schedules
    "Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "WarmUp",
]
