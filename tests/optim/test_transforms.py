"""The transformation contract: every example of the transformation registry (``TRANSFORMATIONS``,
tests/registry_optim.py) pure, returning read-only arrays and a new state, and taking array-like
gradients; per-array math lifted to trees, Chain, apply_updates, and the fused learning-rate step
of named optimizers; a new optimizer written in a dozen lines."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

import purenn as pn
import purenn.optim.transforms as transforms
from purenn.optim.base import (
    Chain, FromTransformation, State, Transformation, apply_updates, as_optimizer, chain,
    map_leaves, sgd_step,
)
from purenn.optim.optimizers import SGD, Adam, AdamW
from purenn.optim.schedules import CosineDecay
from purenn.optim.transforms import AddDecayedWeights, ClipByGlobalNorm, ScaleByAdam, ScaleByLearningRate, Trace
from purenn.tree import freeze, tree_leaves

from registry_optim import TRANSFORMATIONS

PARAMS = freeze({"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.25, -0.75])})
GRADS = [{"w": np.array([[0.1, 0.2], [-0.3, 0.4]]), "b": np.array([1.0, -1.0])},
         {"w": np.array([[-0.5, 0.0], [0.2, 0.1]]), "b": np.array([0.3, 0.6])}]

EXAMPLES = [pytest.param(t, id=f"{cls.__name__}-{i}")
            for cls, entry in TRANSFORMATIONS.items() for i, t in enumerate(entry.examples)]


def _states(state):
    """Every State in a state (combinators nest them), outermost first."""
    if isinstance(state, State):
        return [state] + [s for v in state.slots.values() for s in _states(v)]
    if isinstance(state, (tuple, list)):
        return [s for v in state for s in _states(v)]
    return []


def _outer(state):
    """A transformation's own State, or a Chain's tuple of them."""
    return list(state) if isinstance(state, tuple) else [state]


def _arrays(tree):
    """The arrays of updates or of a state, States opened."""
    return [a for s in _states(tree) for a in _arrays(s.slots)] if isinstance(tree, State) else [
        a for leaf in tree_leaves(tree) for a in (_arrays(leaf) if isinstance(leaf, State) else [leaf])]


@pytest.mark.parametrize("t", EXAMPLES)
def test_transformation_is_pure_and_returns_readonly_arrays_and_a_new_state(t):
    state = t.init(PARAMS)
    grads = {k: v.copy() for k, v in GRADS[0].items()}
    u1, s1 = t.update(grads, state, PARAMS)
    u2, s2 = t.update(GRADS[1], s1, PARAMS)
    np.testing.assert_array_equal(grads["w"], GRADS[0]["w"])       # inputs untouched
    again, s2_again = t.update(GRADS[1], s1, PARAMS)                # the old state is still valid
    for a, b in zip(_arrays((u2, s2)), _arrays((again, s2_again)), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and np.signbit(a).tolist() == np.signbit(b).tolist()
    for s, s_before in zip(_outer(s2), _outer(state), strict=True):  # a Chain keeps one per part
        assert type(s) is State and s.step == 2 and s.slots.keys() == s_before.slots.keys()
    given = tree_leaves(GRADS[1])
    for a in tree_leaves(u2):  # new read-only arrays, or the very updates given (passed through)
        assert any(a is g for g in given) or (
            not a.flags.writeable and not any(np.shares_memory(a, g) for g in tree_leaves((GRADS, PARAMS))))
        assert a.dtype == np.float64
    for a in _arrays(s2):  # masks are bools; everything else the params' dtype
        assert not a.flags.writeable and a.dtype in (np.float64, np.bool_)
        assert not any(np.shares_memory(a, g) for g in tree_leaves(GRADS))


def test_formulas_of_the_simple_transformations():
    g = GRADS[0]
    u, _ = ScaleByLearningRate(0.1).update(g, State(0), PARAMS)
    np.testing.assert_array_equal(u["w"], -0.1 * g["w"])
    u, _ = AddDecayedWeights(0.5).update(g, State(0), PARAMS)
    np.testing.assert_array_equal(u["b"], g["b"] + 0.5 * PARAMS["b"])
    t = Trace(0.5)
    u1, s = t.update(g, t.init(PARAMS), PARAMS)
    u2, s = t.update(g, s, PARAMS)
    np.testing.assert_array_equal(u2["w"], 1.5 * g["w"])           # b = 0.5 g + g
    u, _ = ClipByGlobalNorm(1.0).update({"a": np.array([3.0, 4.0])}, State(0), {"a": np.zeros(2)})
    np.testing.assert_allclose(u["a"], [0.6, 0.8], rtol=1e-15)


def test_chain_runs_in_order_and_keeps_one_state_per_transformation():
    c = chain(AddDecayedWeights(0.1), ScaleByLearningRate(0.5))
    assert c == Chain((AddDecayedWeights(0.1), ScaleByLearningRate(0.5)))
    state = c.init(PARAMS)
    assert state == (State(0), State(0))
    u, state = c.update(GRADS[0], state, PARAMS)
    np.testing.assert_allclose(u["w"], -0.5 * (GRADS[0]["w"] + 0.1 * PARAMS["w"]), rtol=1e-15)
    assert state == (State(1), State(1))
    with pytest.raises(TypeError, match=r"needs the tuple of 2 states"):
        c.update(GRADS[0], State(0), PARAMS)
    with pytest.raises(TypeError, match=r"Chain: item 1 \('adam'\) is not a transformation"):
        chain(ScaleByAdam(), "adam")


def test_apply_updates_and_sgd_step():
    new = apply_updates(PARAMS, GRADS[0])
    np.testing.assert_array_equal(new["w"], PARAMS["w"] + GRADS[0]["w"])
    assert not new["w"].flags.writeable and PARAMS["w"][0, 0] == 1.0
    scaled = apply_updates(PARAMS, GRADS[0], -0.1)
    np.testing.assert_array_equal(scaled["b"], PARAMS["b"] + (-0.1 * GRADS[0]["b"]))
    for a, b in zip(tree_leaves(scaled), tree_leaves(sgd_step(PARAMS, GRADS[0], 0.1))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"`lr` must be a positive number, got -1.0"):
        sgd_step(PARAMS, GRADS[0], -1)


def test_map_leaves_walks_lists_and_nested_trees_and_returns_several_trees():
    tree = [{"a": np.ones(2)}, (np.zeros(1),)]
    doubled, negated = map_leaves(lambda x: (2 * x, -x), tree, n_out=2)
    assert isinstance(doubled, list) and isinstance(doubled[1], tuple)
    np.testing.assert_array_equal(doubled[0]["a"], [2.0, 2.0])
    np.testing.assert_array_equal(negated[0]["a"], [-1.0, -1.0])
    with pytest.raises(ValueError, match="tree structures differ"):
        map_leaves(lambda a, b: a, {"a": np.ones(1)}, {"b": np.ones(1)})


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(CosineDecay(0.1, 5), momentum=0.9, weight_decay=0.1),
                                 Adam(0.01), AdamW(0.01)], ids=repr)
def test_an_optimizer_step_is_running_its_chain_then_applying(opt):
    chain_ = opt.transformation()
    x, fused_state = PARAMS, opt.init(PARAMS)
    y, plain_state = PARAMS, chain_.init(PARAMS)
    for g in GRADS:
        x, fused_state = opt.update(g, fused_state, x)
        u, plain_state = chain_.update(g, plain_state, y)
        y = apply_updates(y, u)
        for a, b in zip(tree_leaves(x), tree_leaves(y)):
            np.testing.assert_array_equal(a, b)
    assert [s.step for s in fused_state] == [s.step for s in plain_state] == [2] * len(plain_state)
    for a, b in zip(tree_leaves([s.slots for s in fused_state]), tree_leaves([s.slots for s in plain_state])):
        np.testing.assert_array_equal(a, b)


def test_adam_is_the_optax_composition_bit_for_bit():
    optax_style = FromTransformation(chain(ScaleByAdam(), ScaleByLearningRate(0.01)))
    a, sa = PARAMS, Adam(0.01).init(PARAMS)
    b, sb = PARAMS, optax_style.init(PARAMS)
    for g in GRADS:
        a, sa = Adam(0.01).update(g, sa, a)
        b, sb = optax_style.update(g, sb, b)
    for x, y in zip(tree_leaves(a), tree_leaves(b)):
        np.testing.assert_array_equal(x, y)


@attrs.frozen
class ScaleByLion(Transformation):
    """Lion (Chen et al. 2023): u <- sign(b1 m + (1-b1) u);  m <- b2 m + (1-b2) u."""

    slots: ClassVar[tuple[str, ...]] = ("mu",)
    b1: float = 0.9
    b2: float = 0.99

    def leaf(self, u: np.ndarray, p: np.ndarray, m: np.ndarray) -> Any:
        return np.sign(self.b1 * m + (1 - self.b1) * u), self.b2 * m + (1 - self.b2) * u


def test_a_new_optimizer_is_a_dozen_lines_and_trains_with_fit():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = pn.Sequential([pn.Dense(2, 8), pn.Tanh(), pn.Dense(8, 1)])
    params = model.init(np.random.default_rng(0))
    lion = chain(ScaleByLion(), ScaleByLearningRate(0.01))
    before = pn.evaluate(model, params, x, y, loss=pn.mse)["loss"]
    trained, history = pn.fit(model, params, x, y, optimizer=lion, epochs=300, batch_size=4)
    assert history.loss[-1] < 0.05 < before
    assert pn.evaluate(model, trained, x, y, loss=pn.mse)["loss"] < 0.05


def test_as_optimizer_wraps_transformations_and_refuses_other_things():
    assert as_optimizer(ScaleByAdam()) == FromTransformation(ScaleByAdam())
    adam = Adam()
    assert as_optimizer(adam) is adam
    with pytest.raises(TypeError, match=r"`optimizer` must have init\(params\) and update"):
        as_optimizer("adam")


@pytest.mark.parametrize("t", EXAMPLES)
def test_gradients_may_be_array_likes_for_every_transformation(t):
    listed = {"w": GRADS[0]["w"].tolist(), "b": GRADS[0]["b"].tolist()}
    u, _ = t.update(listed, t.init(PARAMS), PARAMS)
    v, _ = t.update(GRADS[0], t.init(PARAMS), PARAMS)
    for a, b in zip(tree_leaves(u), tree_leaves(v), strict=True):
        np.testing.assert_array_equal(a, b)


def test_adam_on_large_arrays_block_by_block_is_the_same_as_in_one_pass(monkeypatch):
    """Arrays larger than the block size are updated block by block (in the CPU's cache); the
    numbers must not depend on it. A scalar parameter (a 0-d array) works too."""
    rng = np.random.default_rng(0)
    adam = transforms.ScaleByAdam()
    for shape in [(3, 70001), (transforms._BLOCK * 2 + 7,), ()]:
        u, p, m = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
        v = np.abs(rng.standard_normal(shape)).astype(np.float32)
        blocks = adam.leaf(u, p, m, v, factor=-0.01, v_scale=1.3)
        with monkeypatch.context() as patch:
            patch.setattr(transforms, "_BLOCK", 1 << 40)  # everything in one pass
            whole = adam.leaf(u, p, m, v, factor=-0.01, v_scale=1.3)
        for a, b in zip(blocks, whole, strict=True):
            assert a.shape == shape and a.dtype == np.float32
            np.testing.assert_array_equal(a, b)
        m_want = 0.9 * m + 0.1 * u
        np.testing.assert_allclose(blocks[1], m_want, rtol=1e-5, atol=1e-6)


def test_flush_subnormals_zeroes_only_subnormal_values():
    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        a = np.array([0.0, tiny, -tiny, tiny / 2, -tiny / 4, 1e-3, -2.0, np.inf], dtype=dtype)
        transforms.flush_subnormals(a)
        np.testing.assert_array_equal(a, np.array([0, tiny, -tiny, 0, 0, 1e-3, -2.0, np.inf], dtype=dtype))


def test_adams_moments_never_stay_subnormal():
    """A parameter whose gradient stops (a dead unit) has moments decaying by b1 and b2 each step;
    in float32 they would sink below the smallest normal number after a few hundred steps and
    make every later step many times slower. Adam flushes them every FLUSH_EVERY steps."""
    opt = Adam(1e-3)
    params = ({"w": np.ones(1000, np.float32)},)
    state = opt.init(params)
    grads_on = ({"w": np.full(1000, 1e-3, np.float32)},)
    grads_off = ({"w": np.zeros(1000, np.float32)},)
    params, state = opt.update(grads_on, state, params)
    tiny = np.finfo(np.float32).tiny
    run, longest, seen = 0, 0, 0
    for _ in range(1200):
        params, state = opt.update(grads_off, state, params)
        mu = state[0].slots["mu"][0]["w"]
        if np.any((mu != 0) & (np.abs(mu) < tiny)):
            run, seen = run + 1, seen + 1
            longest = max(longest, run)
        else:
            run = 0
    # unflushed, 1e-4 would take ~150 steps of * 0.9 to fall through the subnormal range
    assert 0 < seen and longest < transforms.FLUSH_EVERY
    assert np.all(state[0].slots["mu"][0]["w"] == 0)
