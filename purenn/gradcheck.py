"""Gradient checking: verify a layer's or a loss's ``backward`` against finite differences.

This is how you check a layer you wrote::

    purenn.check_gradients(MyLayer(...), x)          # raises GradientCheckError on a mismatch

Everything runs in float64. For a layer, the scalar checked is E = sum(Y * R) for a fixed random R
(so dE/dY = R); each input element and each parameter is nudged by +-eps and the central difference
(E(+eps) - E(-eps)) / 2 eps is compared with what ``backward`` returned. The check also confirms
that ``forward`` and ``backward`` leave their inputs, ``dy`` and params untouched, that ``grads`` has the
structure of ``params``, and, for layers that offer ``param_grads``, that it returns exactly
``backward``'s grads. A layer that declares ``fresh_grads`` is held to it: no grad array may share
memory with the params, ``x``, ``dy``, the cache, the state, another grad, or the grads of a second
call (memory it would keep and reuse). A stateful layer (BatchNorm) is checked in the mode asked for, training by
default: there the gradient runs through the batch statistics, and the check also confirms that
the state passed in is left untouched and the new state has its structure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import GradientCheckError
from purenn.tree import tree_leaves, tree_map, tree_paths, tree_structure, tree_unflatten


@attrs.frozen
class GradientCheck:
    """One array's check: ``max_abs_error`` = max |backward - finite differences| and
    ``max_rel_error`` = the same divided by max(|finite differences|, atol)."""

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float


@attrs.frozen
class GradientReport:
    """What :func:`check_gradients` checked, returned when every array passed; prints as a table."""

    who: str
    checks: tuple[GradientCheck, ...]

    def __str__(self) -> str:
        width = max([len(c.name) for c in self.checks] + [5])
        rows = [f"gradient check of {self.who}: all {len(self.checks)} arrays agree",
                f"  {'array':<{width}}  {'shape':<14} {'max abs err':>11}  {'max rel err':>11}"]
        rows += [f"  {c.name:<{width}}  {c.shape!s:<14} {c.max_abs_error:>11.2e}  "
                 f"{c.max_rel_error:>11.2e}" for c in self.checks]
        return "\n".join(rows)


def _to64(tree: Any) -> Any:
    return tree_map(lambda a: np.array(a, dtype=np.float64), tree)


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, rtol: float, atol: float,
             who: str) -> GradientCheck:
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise GradientCheckError(
            f"{who}: gradient for {name} has shape {analytic.shape}, expected {numeric.shape}"
        )
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if bad.any():
        i = np.unravel_index(np.argmax(err), err.shape)
        raise GradientCheckError(
            f"{who}: gradient for {name} disagrees with finite differences at {bad.sum()} of "
            f"{bad.size} entries; worst at index {tuple(int(j) for j in i)}: backward gave "
            f"{analytic[i]:.6g}, finite differences {numeric[i]:.6g}"
        )
    rel = err / np.maximum(np.abs(numeric), atol)
    return GradientCheck(name, tuple(numeric.shape), float(err.max(initial=0.0)),
                         float(rel.max(initial=0.0)))


def _numeric_grad(f: Callable[[], float], a: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of f() with respect to every element of ``a`` (nudged in place)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def check_gradients(
    layer: Any,
    x: Any,
    params: Any = None,
    *,
    rng_seed: int | None = None,
    state: Any = None,
    training: bool = True,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> GradientReport:
    """Check ``layer.backward`` against float64 central differences, for ``x`` and every param.

    ``params``: defaults to ``layer.init(np.random.default_rng(0))``; cast to float64 either way.
    ``rng_seed``: for stochastic layers, every forward call gets ``default_rng(rng_seed)`` so the
    random mask stays fixed; without it they are checked in evaluation mode.
    ``state``, ``training``: for stateful layers (BatchNorm), the state (default
    ``layer.init_state()``, cast to float64) and the mode (default training: the gradient through
    the batch statistics); ignored for other layers.
    Returns a :class:`GradientReport` (print it: the largest errors per array); raises
    :class:`GradientCheckError` naming the layer, the array and the worst entry.
    """
    who = repr(layer)
    params = _to64(layer.init(np.random.default_rng(0)) if params is None else params)
    x = np.array(x, dtype=np.float64)
    if getattr(layer, "stateful", False):
        state = _to64(layer.init_state() if state is None else state)
    forward = _Forward(layer, rng_seed, state, training)
    before = _Copies(x, params, forward.state)
    y, cache = forward(params, x)
    r = np.random.default_rng(1).standard_normal(np.shape(y))  # dE/dY of E = sum(Y * R)
    r_before = r.copy()
    dx, grads = layer.backward(params, cache, r)
    if not np.array_equal(r, r_before):
        raise GradientCheckError(f"{who}: backward modified the dy it was given")
    before.check_kept(who, x, params, forward)
    _check_structures(who, grads, params, forward)
    if callable(getattr(layer, "param_grads", None)):
        _check_param_grads(layer, who, forward, params, x, r, grads)
    if getattr(layer, "fresh_grads", False):
        _, again = layer.backward(params, cache, r)
        _check_fresh(layer, who, "backward", grads,
                     [params, x, r, cache, forward.state, forward.new_states, dx, again])
    checks = _finite_differences(who, forward, params, x, r, (dx, grads), eps, rtol, atol)
    return GradientReport(who, tuple(checks))


class _Forward:
    """``layer.forward`` as the check calls it: a stochastic layer with a fixed generator
    (``default_rng(rng_seed)`` every call, so its mask stays fixed; evaluation mode without a
    seed), a stateful one with ``state`` in the mode asked for, keeping the new states it
    returns in ``new_states``."""

    def __init__(self, layer: Any, rng_seed: int | None, state: Any, training: bool) -> None:
        self.layer, self.rng_seed, self.training = layer, rng_seed, training
        self.stochastic = getattr(layer, "stochastic", False) and rng_seed is not None
        self.stateful = getattr(layer, "stateful", False)
        self.state = state if self.stateful else None
        self.new_states: list[Any] = []

    def __call__(self, params: Any, x: np.ndarray) -> tuple[Any, Any]:
        rng = {"rng": np.random.default_rng(self.rng_seed)} if self.stochastic else {}
        if self.stateful:
            out, cache, new_state = self.layer.forward(params, x, state=self.state,
                                                       training=self.training, **rng)
            self.new_states.append(new_state)
            return out, cache
        return self.layer.forward(params, x, **rng)


class _Copies:
    """Copies of what ``forward`` and ``backward`` must leave untouched: ``x``, the params and
    the state (None for a layer without one)."""

    def __init__(self, x: np.ndarray, params: Any, state: Any) -> None:
        self.x, self.params = x.copy(), tree_map(np.copy, params)
        self.state = None if state is None else tree_map(np.copy, state)

    def check_kept(self, who: str, x: np.ndarray, params: Any, forward: _Forward) -> None:
        if not np.array_equal(x, self.x):
            raise GradientCheckError(f"{who}: forward or backward modified its input x")
        for a, b in zip(tree_leaves(params), tree_leaves(self.params)):
            if not np.array_equal(a, b):
                raise GradientCheckError(f"{who}: forward or backward modified the params")
        if forward.stateful and not all(np.array_equal(a, b) for a, b in
                                        zip(tree_leaves(forward.state), tree_leaves(self.state))):
            raise GradientCheckError(f"{who}: forward modified the state it was given")


def _check_structures(who: str, grads: Any, params: Any, forward: _Forward) -> None:
    """The new state has the state's structure, and the grads the params'."""
    if forward.stateful and tree_structure(forward.new_states[0]) != tree_structure(forward.state):
        raise GradientCheckError(f"{who}: the new state's structure {tree_structure(forward.new_states[0])} "
                                 f"differs from the state's {tree_structure(forward.state)}")
    if tree_structure(grads) != tree_structure(params):
        raise GradientCheckError(
            f"{who}: grads structure {tree_structure(grads)} differs from params {tree_structure(params)}"
        )


def _check_param_grads(layer: Any, who: str, forward: _Forward, params: Any, x: np.ndarray,
                       r: np.ndarray, grads: Any) -> None:
    """``param_grads`` returns exactly ``backward``'s grads (in memory of their own, when the
    layer declares ``fresh_grads``)."""
    _, cache = forward(params, x)
    alone = layer.param_grads(params, cache, r)
    if tree_structure(alone) != tree_structure(grads) or not all(
        np.array_equal(a, b) for a, b in zip(tree_leaves(alone), tree_leaves(grads))
    ):
        raise GradientCheckError(f"{who}: param_grads differs from the grads backward returns")
    _check_fresh(layer, who, "param_grads", alone, [params, x, r, cache, forward.state, forward.new_states, grads])


def _finite_differences(who: str, forward: _Forward, params: Any, x: np.ndarray, r: np.ndarray,
                        backward: tuple[np.ndarray, Any], eps: float, rtol: float,
                        atol: float) -> list[GradientCheck]:
    """``backward``'s ``(dx, grads)`` compared with central differences of E = sum(Y * R), on
    private, writable copies that the differences nudge one element at a time."""
    leaves = [np.array(a) for a in tree_leaves(params)]
    structure = tree_structure(params)
    xw = x.copy()

    def energy() -> float:
        out, _ = forward(tree_unflatten(structure, leaves), xw)
        return float(np.sum(np.asarray(out, dtype=np.float64) * r))

    dx, grads = backward
    checks = [_compare("input x", dx, _numeric_grad(energy, xw, eps), rtol, atol, who)]
    for path, leaf, g in zip(tree_paths(params), leaves, tree_leaves(grads)):
        checks.append(_compare(f"params{path}", g, _numeric_grad(energy, leaf, eps), rtol, atol, who))
    return checks


def _check_fresh(layer: Any, who: str, method: str, grads: Any, others: list[Any]) -> None:
    """A layer declaring ``fresh_grads``: every grad array is memory of its own (see the module's
    docstring); ``others`` are the trees it may not share memory with."""
    if not getattr(layer, "fresh_grads", False):
        return
    mine = [a for a in tree_leaves(grads) if isinstance(a, np.ndarray)]
    theirs = [a for t in others for a in _arrays_in(t)]
    for i, g in enumerate(mine):
        for other in mine[i + 1:] + theirs:
            if np.shares_memory(g, other):
                raise GradientCheckError(
                    f"{who}: declares fresh_grads, but a grad array from {method} shares memory "
                    f"with {'another grad' if any(other is m for m in mine) else 'an array it was given or keeps'}; "
                    "fit would write the new params into it: return new arrays, or do not declare "
                    "fresh_grads")


def _arrays_in(tree: Any) -> list[np.ndarray]:
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, (dict, tuple, list)):
        return [a for v in (tree.values() if isinstance(tree, dict) else tree) for a in _arrays_in(v)]
    return []


def check_loss_gradients(
    loss: Callable[[Any, Any], tuple[float, np.ndarray]],
    y_pred: Any,
    y_true: Any,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> GradientReport:
    """Check a loss's dE/dY against float64 central differences of its value; return the
    :class:`GradientReport`, or raise :class:`GradientCheckError`."""
    who = getattr(loss, "__name__", repr(loss))
    y_pred = np.array(y_pred, dtype=np.float64)
    y_true = np.array(y_true)
    if y_true.dtype.kind == "f":
        y_true = y_true.astype(np.float64)
    before = y_pred.copy(), y_true.copy()
    _, grad = loss(y_pred, y_true)
    if not (np.array_equal(y_pred, before[0]) and np.array_equal(y_true, before[1])):
        raise GradientCheckError(f"{who}: the loss modified its inputs")
    yw = y_pred.copy()
    check = _compare("y_pred", grad, _numeric_grad(lambda: loss(yw, y_true)[0], yw, eps), rtol, atol, who)
    return GradientReport(who, (check,))
