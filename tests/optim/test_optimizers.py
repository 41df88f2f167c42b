"""Named optimizers and gradient clipping.

Every example of the optimizer registry (``OPTIMIZERS``, tests/registry_optim.py) is put through
the same checks: convergence on an ill-conditioned quadratic, state structure and dtypes, purity,
read-only outputs, and its update rule, the registry's plain-NumPy writing of the published
algorithm. Then properties of Adam's first steps, argument checks, and clipping's properties.
(tests/optim/test_pytorch_reference.py holds them to numbers recorded from PyTorch.)
"""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenn.io.serialize import to_data
from purenn.optim.base import FromTransformation, State, as_optimizer, chain, sgd_step
from purenn.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSProp
from purenn.optim.schedules import Constant, CosineDecay, ExponentialDecay, StepDecay, WarmUp
from purenn.optim.transforms import (
    ClipByGlobalNorm, ScaleByAdam, ScaleByLearningRate, clip_by_global_norm, global_norm,
)
from purenn.tree import freeze, tree_leaves, tree_map, tree_structure

from registry_optim import OPTIMIZERS, adam_rule, sgd_rule

EXAMPLES = [pytest.param(opt, id=f"{cls.__name__}-{i}")
            for cls, entry in OPTIMIZERS.items() for i, opt in enumerate(entry.examples)]


# 0.5 * sum(a_i x_i^2) with curvatures a_i spread over [1, 10] (condition number 10)
CURVATURE = {"w": np.linspace(1.0, 10.0, 6).reshape(2, 3), "b": np.array([1.0, 4.0, 10.0])}
START = {"w": np.full((2, 3), 1.0), "b": np.array([1.0, -2.0, 0.5])}


def quadratic(x):
    return sum(0.5 * float(np.sum(CURVATURE[k] * x[k].astype(np.float64) ** 2)) for k in x)


def quadratic_grad(x):
    return {k: (CURVATURE[k] * x[k]).astype(x[k].dtype) for k in x}


def start(dtype):
    return freeze(tree_map(lambda a: a.astype(dtype), START))


def copy_tree(tree):
    return tree_map(lambda a: np.array(a, copy=True) if isinstance(a, np.ndarray) else a, tree)


def state_parts(state):
    """A named optimizer's state (one State per transformation of its chain; a combinator's
    State holds its parts') as a tree."""
    if isinstance(state, State):
        return {"step": np.array(state.step), **{k: state_parts(v) for k, v in state.slots.items()}}
    if isinstance(state, tuple):
        return [state_parts(s) for s in state]
    return state


def slot_arrays(state):
    """The arrays a state holds (its States' slots, at any depth; not their steps)."""
    if isinstance(state, State):
        return [a for v in state.slots.values() for a in slot_arrays(v)]
    if isinstance(state, (tuple, list, dict)):
        return [a for v in (state.values() if isinstance(state, dict) else state) for a in slot_arrays(v)]
    return [state]


def describe(tree):
    """Structure, leaf types and dtypes of a tree, for comparing before and after an update."""
    return tree_structure(tree), [(type(a).__name__, getattr(a, "dtype", None)) for a in tree_leaves(tree)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", EXAMPLES)
def test_optimizer_drives_ill_conditioned_quadratic_down(opt, dtype):
    x = start(dtype)
    state = opt.init(x)
    for _ in range(100):
        x, state = opt.update(quadratic_grad(x), state, x)
    assert quadratic(x) < 1e-3 * quadratic(start(dtype)), f"{opt!r} did not converge"


@pytest.mark.parametrize("grad_dtype", ["float32", "float64"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", EXAMPLES)
def test_update_is_pure_keeps_structure_and_dtype_and_returns_readonly(opt, dtype, grad_dtype):
    x = start(dtype)
    x, state = opt.update(quadratic_grad(x), opt.init(x), x)  # a state with nonzero buffers
    grads = tree_map(lambda a: a.astype(grad_dtype), quadratic_grad(x))
    before = (copy_tree(x), copy_tree(grads), copy_tree(state_parts(state)))

    new_x, new_state = opt.update(grads, state, x)

    for held, copy in zip((x, grads, state_parts(state)), before):
        assert describe(held) == describe(copy)
        for a, b in zip(tree_leaves(held), tree_leaves(copy)):
            np.testing.assert_array_equal(a, b)
    assert type(new_state) is type(state)
    assert describe(new_x) == describe(x)
    assert describe(state_parts(new_state)) == describe(state_parts(state))
    assert [s.step for s in new_state] == [s.step + 1 for s in state]
    arrays = tree_leaves(new_x) + slot_arrays(new_state)
    masks = [a for a in arrays if a.dtype == bool]  # a mask's booleans
    arrays = [a for a in arrays if a.dtype != bool]
    assert arrays and all(not a.flags.writeable for a in arrays + masks)
    assert all(a.dtype == np.dtype(dtype) for a in arrays)
    assert all(a.shape == () for a in masks)
    assert all(not np.shares_memory(a, b) for a in arrays for b in tree_leaves((x, grads)))


def test_sgd_state_has_a_momentum_buffer_only_with_momentum():
    x = start("float64")
    assert SGD(0.1).init(x) == (State(0),)
    trace, lr = SGD(0.1, momentum=0.5).init(x)
    assert lr == State(0) and list(trace.slots) == ["trace"]
    v = trace.slots["trace"]
    assert describe(v) == describe(x) and all(np.all(a == 0) for a in tree_leaves(v))


def test_update_rejects_a_state_from_another_optimizer():
    x = start("float64")
    with pytest.raises(TypeError, match=r"needs the tuple of 1 states its init\(params\) makes, got tuple of 2"):
        SGD(0.1).update(quadratic_grad(x), Adam().init(x), x)
    with pytest.raises(TypeError, match=r"ScaleByLearningRate.*needs the state made by its own init"):
        SGD(0.1).update(quadratic_grad(x), (Adam().init(x)[0],), x)
    with pytest.raises(TypeError, match=r"needs the tuple of 2 states its init\(params\) makes, got State"):
        SGD(0.1, momentum=0.9).update(quadratic_grad(x), State(0), x)


def test_update_rejects_gradient_of_wrong_shape_or_structure():
    x = start("float64")
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\) for a parameter of shape \(2, 3\)"):
        Adam().update({"w": np.ones(3), "b": np.ones(3)}, Adam().init(x), x)
    with pytest.raises(ValueError, match="tree structures differ"):
        SGD(0.1).update({"w": np.ones((2, 3))}, SGD(0.1).init(x), x)


def test_plain_sgd_is_sgd_step_exactly():
    x = start("float32")
    g = quadratic_grad(x)
    new, _ = SGD(0.1).update(g, SGD(0.1).init(x), x)
    for a, b in zip(tree_leaves(new), tree_leaves(sgd_step(x, g, 0.1))):
        np.testing.assert_array_equal(a, b)


def test_grads_in_nested_trees_are_matched_by_key_not_order():
    x = freeze(({"w": np.ones(2), "b": np.zeros(1)}, {}))
    g = ({"b": np.array([2.0]), "w": np.array([1.0, 3.0])}, {})
    new, (state, _) = Adam(0.1).update(g, Adam(0.1).init(x), x)
    mu = state.slots["mu"]
    assert new[1] == {} and mu[1] == {}
    np.testing.assert_allclose(mu[0]["b"], [0.2])
    np.testing.assert_allclose(mu[0]["w"], [0.1, 0.3])


# --- update rules against their definitions ---------------------------------------------------

RNG_SEED = 20240611


def hand_inputs(steps=3):
    rng = np.random.default_rng(RNG_SEED)
    x0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(steps)]  # different gradients each step
    return x0, grads


def run(opt, x0, grads):
    x = {"x": x0}
    state = opt.init(x)
    path = []
    for g in grads:
        x, state = opt.update({"x": g}, state, x)
        path.append(x["x"])
    return path


RULED = [pytest.param(opt, entry.rule, id=f"{cls.__name__}-{i}")
         for cls, entry in OPTIMIZERS.items() if entry.rule is not None for i, opt in enumerate(entry.examples)]


@pytest.mark.parametrize("opt, rule", RULED)
def test_every_optimizer_follows_its_update_rule(opt, rule):
    """60 steps of random gradients (past every schedule's first change) against the registry's
    NumPy writing of the algorithm, to float64 rounding."""
    x0, grads = hand_inputs(60)
    np.testing.assert_allclose(run(opt, x0, grads), rule(opt, x0, grads), rtol=1e-12, atol=1e-12)


def test_the_rules_catch_what_a_formula_gets_wrong():
    """The registry's rules tell the variants apart: L2 in the gradient is not decoupled decay,
    Nesterov is not plain momentum (so the test above could fail)."""
    x0, grads = hand_inputs(5)
    assert not np.allclose(adam_rule(Adam(0.1, weight_decay=0.5), x0, grads),
                           adam_rule(AdamW(0.1, weight_decay=0.5), x0, grads))
    assert not np.allclose(sgd_rule(SGD(0.1, momentum=0.9, nesterov=True), x0, grads),
                           sgd_rule(SGD(0.1, momentum=0.9), x0, grads))
    assert not np.allclose(run(Adam(0.1, weight_decay=0.5), x0, grads),
                           adam_rule(AdamW(0.1, weight_decay=0.5), x0, grads))


ADAM_FIRST_STEPS = {  # everything whose first update should be Adam's bias-corrected step
    "Adam": lambda lr: Adam(lr),
    "Adam-b1-b2": lambda lr: Adam(lr, b1=0.5, b2=0.9),
    "AdamW-no-decay": lambda lr: AdamW(lr, weight_decay=0.0),
    "chain(ScaleByAdam, ScaleByLearningRate)": lambda lr: FromTransformation(
        chain(ScaleByAdam(), ScaleByLearningRate(lr))),
    "clip-adam": lambda lr: as_optimizer(chain(ClipByGlobalNorm(1e9), Adam(lr))),
}


@pytest.mark.parametrize("grad_scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("name", list(ADAM_FIRST_STEPS))
def test_adam_first_step_moves_each_coordinate_by_lr_whatever_the_gradient_scale(name, grad_scale):
    """With bias correction, m^_1 = g and v^_1 = g^2, so the first step is lr * g / (|g| + eps):
    lr per coordinate against the gradient's sign, for gradients of any size. Without the
    correction it would be lr (1-b1) / sqrt(1-b2) (3.2 lr with the defaults)."""
    lr, eps = 0.01, 1e-8
    x0, (g, *_) = hand_inputs()
    g = g * grad_scale
    opt = ADAM_FIRST_STEPS[name](lr)
    new, _ = opt.update({"x": g}, opt.init({"x": x0}), {"x": x0})
    step = new["x"] - x0
    np.testing.assert_allclose(step, -lr * g / (np.abs(g) + eps), rtol=1e-9, atol=0)
    np.testing.assert_allclose(np.abs(step), lr, rtol=1e-3)  # eps is < 1e-3 of every |g|


def test_adam_bias_correction_fades_over_steps():
    """Under a constant gradient m^_t = g and v^_t = g^2 at every step t (bias correction divides
    out exactly what the zero start took away), so every step is lr * sign(g)."""
    lr, g = 0.01, np.array([3.0, -0.02, 400.0])
    for opt in (Adam(lr, b1=0.9, b2=0.999, eps=1e-12), AdamW(lr, eps=1e-12, weight_decay=0.0)):
        x = {"x": np.zeros(3)}
        state = opt.init(x)
        for t in range(1, 51):
            new, state = opt.update({"x": g}, state, x)
            np.testing.assert_allclose(new["x"] - x["x"], -lr * np.sign(g), rtol=1e-9, err_msg=f"step {t}")
            x = new


def test_optimizer_uses_lr_of_the_step_count():
    schedule = StepDecay(0.1, step_size=2, gamma=0.5)
    opt = SGD(schedule)
    x = {"x": np.zeros(1)}
    state = opt.init(x)
    for t in range(5):
        assert state == (State(t),)
        new, state = opt.update({"x": np.ones(1)}, state, x)
        np.testing.assert_allclose(x["x"] - new["x"], [schedule(t)], rtol=1e-15)
        x = new
    assert schedule(3) == 0.05


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: SGD(0.0), ValueError, "`lr` must be a positive number or a purenn.optim.schedules.Schedule"),
        (lambda: SGD(-0.1), ValueError, r"got -0\.1"),
        (lambda: Adam(float("nan")), ValueError, "`lr` must be a positive number"),
        (lambda: SGD("0.1"), TypeError, "`lr` must be a positive number"),
        (lambda: SGD(lambda step: 0.1), TypeError, "Schedule"),
        (lambda: SGD(0.1, momentum=1.0), ValueError, r"`momentum` must be a real number in \[0, 1\), got 1.0"),
        (lambda: SGD(0.1, momentum=-0.5), ValueError, r"`momentum` must be a real number in \[0, 1\)"),
        (lambda: SGD(0.1, nesterov=True), ValueError, "`nesterov=True` needs `momentum` > 0"),
        (lambda: SGD(0.1, weight_decay=-1e-4), ValueError, r"`weight_decay` must be a non-negative number, got -0.0001"),
        (lambda: Adam(b1=1.0), ValueError, r"`b1` must be a real number in \[0, 1\), got 1.0"),
        (lambda: Adam(b2=-0.1), ValueError, "`b2` must be a real number in"),
        (lambda: AdamW(eps=0.0), ValueError, "`eps` must be a positive number, got 0.0"),
        (lambda: AdamW(weight_decay=-0.01), ValueError, "`weight_decay`"),
        (lambda: RMSProp(alpha=1.0), ValueError, r"`alpha` must be a real number in \[0, 1\), got 1.0"),
        (lambda: RMSProp(centered="yes"), TypeError, "`centered` must be"),
        (lambda: Adagrad(initial_accumulator_value=-1), ValueError, "`initial_accumulator_value` must be a non-negative number"),
        (lambda: ClipByGlobalNorm(0.0), ValueError, "`max_norm` must be a positive number, got 0.0"),
        (lambda: chain(ClipByGlobalNorm(1.0), sgd_step), TypeError, "item 1 .* is not a transformation"),
        (lambda: StepDecay(0.1, step_size=0), ValueError, "`step_size` must be a positive integer, got 0"),
        (lambda: StepDecay(0.1, step_size=2.5), TypeError, "`step_size` must be a positive integer, got 2.5 of type float"),
        (lambda: CosineDecay(0.1, 100, final_lr=0.2), ValueError, r"`final_lr` \(0.2\) must not exceed `lr`"),
        (lambda: Constant(0.0), ValueError, "`lr` must be a positive number, got 0.0"),
        (lambda: WarmUp("fast", 10), TypeError, "`schedule` must be a positive number or a purenn.optim.schedules"),
        (lambda: ExponentialDecay(0.1, gamma=1.5), ValueError, r"`gamma` must be a real number in \(0, 1\], got 1.5"),
    ],
)
def test_bad_hyperparameters_are_refused_clearly(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numpy_scalars_become_python_floats_and_float32_stays_float32():
    opt = Adam(np.float64(0.1), b1=np.float32(0.9))
    assert type(opt.lr) is float and type(opt.b1) is float
    x = start("float32")
    new, _ = opt.update(quadratic_grad(x), opt.init(x), x)
    assert all(a.dtype == np.float32 for a in tree_leaves(new))


def test_optimizers_and_schedules_serialise_to_json():
    opt = AdamW(WarmUp(CosineDecay(0.1, 90), 10))
    record = json.loads(json.dumps(attrs.asdict(opt)))
    assert record["lr"] == {
        "schedule": {"lr": 0.1, "total_steps": 90, "final_lr": 0.0}, "warmup_steps": 10,
    }
    assert attrs.evolve(opt, b1=0.8).b1 == 0.8


def test_adam_and_adamw_share_fields_but_stay_distinct_records():
    assert [a.name for a in attrs.fields(Adam)] == [a.name for a in attrs.fields(AdamW)] == [
        "lr", "b1", "b2", "eps", "weight_decay"]
    assert Adam().weight_decay == 0.0 and AdamW().weight_decay == 0.01
    assert not isinstance(Adam(), AdamW) and not isinstance(AdamW(), Adam)
    assert Adam(0.1, weight_decay=0.01) != AdamW(0.1, weight_decay=0.01)
    assert to_data(AdamW(0.1))["type"] == "AdamW" and to_data(Adam(0.1))["type"] == "Adam"
    assert repr(AdamW(0.1)).startswith("AdamW(lr=0.1,")


# --- clipping ----------------------------------------------------------------------------------


def test_global_norm_of_a_tree():
    tree = {"a": np.array([3.0, 0.0]), "b": ({"c": np.array([[4.0]], dtype=np.float32)}, {})}
    assert global_norm(tree) == 5.0
    assert global_norm({}) == 0.0


def test_clipping_a_norm_10_tree_to_1_keeps_direction():
    grads = {"a": np.array([6.0, 0.0]), "b": np.array([[0.0, -8.0]], dtype=np.float32)}
    assert global_norm(grads) == 10.0
    clipped = clip_by_global_norm(grads, 1.0)
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(clipped["b"], [[0.0, -0.8]], rtol=1e-6)
    assert clipped["b"].dtype == np.float32 and not clipped["a"].flags.writeable
    assert grads["a"][0] == 6.0  # the caller's arrays are untouched


def test_clipping_below_the_bound_and_zero_gradients_leave_grads_unchanged():
    grads = {"a": np.array([0.3, -0.4])}
    assert clip_by_global_norm(grads, 1.0) is grads
    zeros = {"a": np.zeros(3), "b": np.zeros((2, 2), dtype=np.float32)}
    clipped = clip_by_global_norm(zeros, 1.0)
    assert all(np.all(np.isfinite(a)) and np.all(a == 0) for a in tree_leaves(clipped))
    with pytest.raises(ValueError, match="`max_norm` must be a positive number, got 0.0"):
        clip_by_global_norm(grads, 0.0)


def test_clipping_chained_before_an_optimizer_clips_its_gradients():
    x = {"x": np.zeros(2)}
    g = {"x": np.array([30.0, 40.0])}
    opt = as_optimizer(chain(ClipByGlobalNorm(5.0), SGD(0.1)))
    new, state = opt.update(g, opt.init(x), x)
    np.testing.assert_allclose(new["x"], [-0.3, -0.4], rtol=1e-15)
    assert state == (State(1), State(1))
    inner_new, _ = SGD(0.1).update(clip_by_global_norm(g, 5.0), SGD(0.1).init(x), x)
    np.testing.assert_array_equal(new["x"], inner_new["x"])


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60)
@given(
    a=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=5), elements=finite),
    b=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=5), elements=finite),
    max_norm=st.floats(1e-3, 1e3),
)
def test_clipping_never_increases_the_norm_and_keeps_direction(a, b, max_norm):
    grads = {"a": a, "b": [b]}
    norm = global_norm(grads)
    clipped = clip_by_global_norm(grads, max_norm)
    new_norm = global_norm(clipped)
    assert new_norm <= norm * (1 + 1e-12)
    assert new_norm <= max_norm * (1 + 1e-12)
    if norm > max_norm:
        assert new_norm == pytest.approx(max_norm, rel=1e-9)
        scale = max_norm / norm
        for g, c in zip(tree_leaves(grads), tree_leaves(clipped)):
            np.testing.assert_allclose(c, g * scale, rtol=1e-12, atol=0)
