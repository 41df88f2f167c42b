"""Optimizer.update runs a composition of per-array transformations in one pass over the params
(purenn.optim.base._update_in_one_pass): the numbers and states must be those of running the
transformations one after the other and then apply_updates, bit for bit, for every optimizer and
transformation of the registry (tests/registry_optim.py), with and without a plateau's lr_scale
and donated grads."""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.optim.base import Transformation, apply_updates, as_optimizer
from purenn.tree import readonly, tree_leaves

from registry_optim import OPTIMIZERS, TRANSFORMATIONS

EXAMPLES = [pytest.param(as_optimizer(record), id=f"{cls.__name__}-{i}")
            for registry in (OPTIMIZERS, TRANSFORMATIONS)
            for cls, entry in registry.items() for i, record in enumerate(entry.examples)]


def _params(dtype):
    rng = np.random.default_rng(3)
    return ({"w": readonly(rng.normal(size=(4, 3)).astype(dtype)),
             "b": readonly(rng.normal(size=3).astype(dtype))}, {"s": readonly(np.asarray(0.7, dtype))})


def _grads(step, dtype):
    rng = np.random.default_rng(100 + step)  # values whose products round differently by order
    return ({"w": rng.normal(size=(4, 3)).astype(dtype) * 3.1, "b": rng.normal(size=3).astype(dtype)},
            {"s": np.asarray(rng.normal(), dtype)})


def _open(state):
    if isinstance(state, pn.State):
        return [np.asarray(state.step), {k: _open(v) for k, v in sorted(state.slots.items())}]
    if isinstance(state, (tuple, list)):
        return [_open(v) for v in state]
    return state


def _two_passes(opt, grads, state, params, lr_scale):
    """The reference: the composition's own update, then apply_updates, never donated."""
    updates, state = opt.transformation().update(grads, state, params)
    return apply_updates(params, updates, lr_scale), state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr_scale", [1.0, 0.3])
@pytest.mark.parametrize("donate", [False, True])
@pytest.mark.parametrize("opt", EXAMPLES)
def test_one_pass_equals_the_transformations_one_after_the_other(opt, donate, lr_scale, dtype):
    params = want = _params(dtype)
    state = want_state = opt.init(params)
    for step in range(3):
        want, want_state = _two_passes(opt, _grads(step, dtype), want_state, want, lr_scale)
        params, state = opt.update(_grads(step, dtype), state, params, lr_scale=lr_scale, donate=donate)
        for a, b in zip(tree_leaves(want) + tree_leaves(_open(want_state)),
                        tree_leaves(params) + tree_leaves(_open(state)), strict=True):
            assert a.dtype == b.dtype
            assert a.tobytes() == b.tobytes(), f"step {step + 1}"
    assert all(not a.flags.writeable for a in tree_leaves(params))


@pytest.mark.parametrize("opt", [pn.SGD(0.1), pn.SGD(0.1, momentum=0.9, weight_decay=1e-3),
                                 pn.Adam(1e-3), pn.AdamW(1e-3), pn.RMSProp(1e-3), pn.Adagrad(0.1)])
def test_the_named_optimizers_take_the_one_pass(opt):
    """The path checked above is the one they run (a composition of per-array parts)."""
    assert opt._per_array is not None


def test_a_composition_with_a_whole_tree_part_takes_two_passes():
    opt = as_optimizer(pn.chain(pn.ClipByGlobalNorm(1.0), pn.SGD(0.1)))
    assert opt._per_array is None


@attrs.frozen
class KeepsItsInput(Transformation):
    """Not fresh: its update is the very array it was given, which its state keeps too."""

    slots: ClassVar[tuple[str, ...]] = ("last",)

    def leaf(self, u, p, last):
        return u, u


@attrs.frozen
class WarmLR(pn.ScaleByLearningRate):
    """A subclass with a schedule of its own in constants: not the parent's u * (-lr)."""

    def constants(self, step):
        return {"scale": -self.lr * 0.1 * (step + 1)}


@attrs.frozen
class ClippedLR(pn.ScaleByLearningRate):
    """A subclass with a leaf of its own."""

    def leaf(self, u, p, *, scale):
        return np.clip(u, -0.5, 0.5) * scale


CUSTOM = [pytest.param(as_optimizer(pn.chain(KeepsItsInput(), pn.ScaleByLearningRate(0.1))), id="keeps-first"),
          pytest.param(as_optimizer(pn.chain(pn.AddDecayedWeights(0.1), KeepsItsInput(),
                                             pn.ScaleByLearningRate(0.1))), id="keeps-after-a-fresh-part"),
          pytest.param(as_optimizer(pn.chain(pn.ScaleByAdam(), WarmLR(0.1))), id="subclass-constants"),
          pytest.param(as_optimizer(pn.chain(pn.ScaleByAdam(), ClippedLR(0.1))), id="subclass-leaf"),
          pytest.param(as_optimizer(ClippedLR(0.1)), id="subclass-alone"),
          pytest.param(as_optimizer(pn.chain()), id="empty-chain")]


@pytest.mark.parametrize("lr_scale", [1.0, 0.5])
@pytest.mark.parametrize("donate", [False, True])
@pytest.mark.parametrize("opt", CUSTOM)
def test_transformations_of_your_own_get_the_numbers_of_their_own_update(opt, donate, lr_scale):
    """A part that keeps its input in its state is never written into (it does not declare its
    updates fresh); a subclass of ScaleByLearningRate with its own leaf or constants is run by
    them; a chain of nothing adds the grads. All as the two-pass path does, byte for byte."""
    test_one_pass_equals_the_transformations_one_after_the_other(opt, donate, lr_scale, np.float64)
    params, state = _params(np.float64), opt.init(_params(np.float64))
    new, state = opt.update(_grads(0, np.float64), state, params, lr_scale=lr_scale, donate=donate)
    kept = [a for a in tree_leaves(_open(state)) if isinstance(a, np.ndarray) and a.ndim]
    assert not any(np.shares_memory(a, b) for a in tree_leaves(new) for b in kept)
