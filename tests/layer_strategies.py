"""The building blocks of the layer registry's strategies (tests/registry_layers.py), and the
params and states its tests run layers at.

Inputs are float64: ``normal`` (standard normal, optionally kept ``margin`` away from 0, where
ReLU-like kinks are) and ``spread`` (distinct values evenly spaced, for normalisation). Sizes are
small (1 to 4) so finite differences stay cheap.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from hypothesis import strategies as st

from purenn.layers import GELU, Parallel, Residual, Sequential, Sigmoid, Softmax, Tanh
from purenn.tree import tree_leaves, tree_map, tree_paths, tree_structure, tree_unflatten

seeds = st.integers(0, 2**32 - 1)
sizes = st.integers(1, 4)
shapes = st.lists(sizes, min_size=1, max_size=3).map(tuple)
DTYPES = st.sampled_from(["float32", "float64"])
SCALES, OFFSETS = st.sampled_from([1.0, 0.5, 3.0]), st.sampled_from([0.0, 1.5, -1.0])


def normal(seed: int, shape: tuple[int, ...], margin: float = 0.0) -> np.ndarray:
    """Standard normal float64; with ``margin``, every value at least that far from 0 (kinks)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + np.sign(x) * margin if margin else x



def spread(seed: int, shape: tuple[int, ...], scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Distinct float64 values evenly spaced over [offset - 2 scale, offset + 2 scale], in random
    order: every group of values (a feature's over a batch, a sample's over its features) has a
    spread far above normalisation's eps, so no float32 rounding is blown up by 1/sqrt(var + eps)
    and no finite difference crosses a near-constant group."""
    size = int(np.prod(shape))
    order = np.random.default_rng(seed).permutation(size).reshape(shape)
    return offset + scale * (4.0 * order / max(size - 1, 1) - 2.0)


SCALES, OFFSETS = st.sampled_from([1.0, 0.5, 3.0]), st.sampled_from([0.0, 1.5, -1.0])


# Inside random stacks and blocks only smooth activations: a hidden ReLU's input can land within
# eps of its kink, where finite differences are meaningless. ReLU and LeakyReLU have their own
# registry entries, with inputs kept away from 0.
SMOOTH_ACTIVATIONS = st.one_of(
    st.builds(Tanh), st.builds(Sigmoid), st.builds(GELU), st.builds(Softmax),
)


def random_params(layer: Any, seed: int) -> Any:
    """``layer.init`` params moved by random amounts: BatchNorm's and LayerNorm's scale starts at
    ones and shift at zeros, where a backward that forgets the scale would still pass."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: np.asarray(a, dtype=np.float64) + 0.5 * rng.standard_normal(np.shape(a)),
                    layer.init(np.random.default_rng(seed)))


def trained_state(layer: Any, params: Any, x: np.ndarray, seed: int) -> Any:
    """A state far from ``init_state()``: one training step on another batch of x's shape, then
    each running mean moved and each running variance scaled at random (momentum 0 would leave
    the step's state at ``init_state()``)."""
    state = tree_map(lambda a: np.asarray(a, dtype=np.float64), layer.init_state())
    _, _, state = layer.forward(params, 2.0 * np.asarray(x)[::-1] + 0.5, state=state, training=True)
    rng = np.random.default_rng(seed)
    leaves = [a * np.exp(0.5 * rng.standard_normal(a.shape)) if path.endswith("['var']")
              else a + 0.5 * rng.standard_normal(a.shape)
              for path, a in zip(tree_paths(state), tree_leaves(state))]
    return tree_unflatten(tree_structure(state), leaves)


def with_dtype(layer: Any, dtype: str) -> Any:
    """``layer`` with every ``dtype`` field in it (inside Sequential, Residual and Parallel
    containers too, at any depth) set to ``dtype``."""
    if isinstance(layer, Sequential):
        return attrs.evolve(layer, layers=tuple(with_dtype(child, dtype) for child in layer.layers))
    if isinstance(layer, Residual):
        projection = None if layer.projection is None else with_dtype(layer.projection, dtype)
        return attrs.evolve(layer, block=with_dtype(layer.block, dtype), projection=projection)
    if isinstance(layer, Parallel):
        return attrs.evolve(layer, branches=tuple(with_dtype(b, dtype) for b in layer.branches))
    if "dtype" in attrs.fields_dict(type(layer)):
        return attrs.evolve(layer, dtype=dtype)
    return layer
