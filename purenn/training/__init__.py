"""Training built from the pure pieces: ``fit``, ``predict`` and ``evaluate``.

``fit`` is a loop over epochs and minibatches of: forward, loss, backward, update. Nothing in it
prints; progress goes to the optional callbacks. With ``batch_size=1, shuffle=False`` it is exactly
the tutorial's per-sample SGD. The same ``seed`` gives bit-identical params and history.

Models with state (``BatchNorm``'s running statistics; ``model.stateful``) take it explicitly:
``fit(..., state=model.init_state())`` trains in training mode and returns
``(params, state, history)``; ``predict`` and ``evaluate`` take ``state=`` and run in evaluation
mode, as ``fit``'s validation pass does. Forgetting the state is an error, never a silent
evaluation-mode run.

A run can stop and continue: ``fit`` hands a :class:`~purenn.training_state.TrainingState` to its
``checkpoint`` callback after every epoch (and every ``checkpoint_every`` steps), stops when its
``stop`` callback says so (raising :class:`~purenn.errors.TrainingInterrupted` with the state),
and continues from one with ``resume=``: the result is bit for bit that of an uninterrupted run.

The modules, by purpose: :mod:`~purenn.training.loop` (``fit``), :mod:`~purenn.training.run`
(the variables a run keeps between steps: each step and each epoch's close), :mod:`~purenn.training.checks` (``fit``'s arguments checked before any step),
:mod:`~purenn.training.evaluation` (``predict``, ``evaluate``), :mod:`~purenn.training.history`
(``StepLog``, ``EpochLog``, ``History``), :mod:`~purenn.training.weights` (sample and class
weights), :mod:`~purenn.training.updates` (steps and updates under gradient accumulation).
"""

from purenn.training.evaluation import PREDICT_BYTES, evaluate, predict
from purenn.training.history import EpochLog, History, StepLog
from purenn.training.loop import fit
from purenn.training.updates import update_count

__all__ = ["PREDICT_BYTES", "EpochLog", "History", "StepLog", "evaluate", "fit", "predict", "update_count"]
