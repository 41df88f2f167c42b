"""pn.summary: shapes, counts and sizes from the layers, without running anything; checked on every
layer of the registry (tests/registry_layers.py) and every preset."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies

import purenn as pn
from purenn.recipes.presets import PRESETS
from purenn.summary import MAX_SAMPLE_VALUES, check_sample_size, format_bytes, sample_values

from registry_layers import LAYERS


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=strategies.data())
def test_the_summary_of_every_layer_agrees_with_a_forward_pass(cls, data):
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assume(x.ndim >= 2)  # a summary describes samples of at least one axis
    s = pn.summary(layer, x.shape[1:])
    params, state = layer.init(np.random.default_rng(0)), layer.init_state()
    y = pn.apply_layer(layer, params, x, state=state, training=False)[0]
    assert s.output_shape == y.shape[1:]
    assert (s.params, s.param_bytes) == (sum(a.size for a in pn.tree_leaves(params)),
                                         sum(a.nbytes for a in pn.tree_leaves(params)))
    assert (s.state, s.state_bytes) == (sum(a.size for a in pn.tree_leaves(state)),
                                        sum(a.nbytes for a in pn.tree_leaves(state)))


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_summary_agrees_with_a_real_forward_pass(name):
    model = PRESETS[name].model
    s = pn.summary(model, (784,))
    params = model.init(np.random.default_rng(0))
    state = model.init_state()
    x = np.zeros((3, 784), np.float32)
    y = pn.predict(model, params, x, state=state if model.stateful else None)
    assert s.output_shape == y.shape[1:]
    assert s.params == sum(a.size for a in pn.tree_leaves(params))
    assert s.param_bytes == sum(a.nbytes for a in pn.tree_leaves(params))
    assert s.state == sum(a.size for a in pn.tree_leaves(state))
    assert s.state_bytes == sum(a.nbytes for a in pn.tree_leaves(state))
    assert [r.params for r in s.rows if r.depth == 0] == [
        sum(a.size for a in pn.tree_leaves(p)) for p in params]


def test_each_row_has_the_shape_its_layer_gives():
    model = pn.Sequential([pn.Reshape((6, 6, 1)), pn.Conv2D(1, 4, 3), pn.BatchNorm(4),
                           pn.Residual(pn.Sequential([pn.Conv2D(4, 4, 3, padding="same"), pn.ReLU()])),
                           pn.Parallel([pn.Identity(), pn.Conv2D(4, 2, 1)]), pn.MaxPool2D(2),
                           pn.Flatten(), pn.Dense(24, 5), pn.LayerNorm(5)])
    s = pn.summary(model, 36)
    params, state = model.init(np.random.default_rng(0)), model.init_state()
    x = np.random.default_rng(1).random((2, 36))
    shapes = []
    for layer, p, st in zip(model.layers, params, state):
        x, _, _ = pn.apply_layer(layer, p, x, state=st, training=False)
        shapes.append(x.shape[1:])
    assert [r.output_shape for r in s.rows if r.depth == 0] == shapes
    nested = [(r.depth, r.short_name, r.output_shape) for r in s.rows if r.depth > 0]
    assert nested == [
        (1, "Sequential()", (4, 4, 4)), (2, "Conv2D(4, 4, (3, 3))", (4, 4, 4)), (2, "ReLU()", (4, 4, 4)),
        (1, "Identity()", (4, 4, 4)), (1, "Conv2D(4, 2, (1, 1))", (4, 4, 2)),
    ]
    assert s.state == 8 and s.rows[2].state == 8


def test_the_text_table_names_layers_and_totals():
    model = PRESETS["resnet"].model
    s = pn.summary(model, (784,))
    text = str(s)
    assert "Conv2D(32, 32, (3, 3), padding='same', use_bias=False)" in text
    assert text.splitlines()[-1] == (f"output (10,); total {s.params:,} parameters "
                                     f"({format_bytes(s.param_bytes)}), {s.state:,} state values "
                                     f"({format_bytes(s.state_bytes)})")
    compact = s.compact()
    assert "padding" not in compact and len(compact.splitlines()) < len(text.splitlines())
    assert "Residual()" in compact


def test_a_model_too_big_to_allocate_is_still_described():
    huge = pn.Sequential([pn.Dense(2**20, 2**14), pn.ReLU(), pn.Dense(2**14, 10)])
    s = pn.summary(huge, 2**20)  # 2**34 weights: 64 GiB that are never allocated
    assert s.params == 2**34 + 2**14 + 2**14 * 10 + 10
    assert format_bytes(s.param_bytes).endswith("GiB")


def test_a_layer_that_cannot_take_its_input_is_named():
    model = PRESETS["cnn"].model
    with pytest.raises(pn.ShapeError, match=r"cannot take input of per-sample shape \(783,\).*Reshape"):
        pn.summary(model, (783,))
    bad = pn.Residual(pn.Dense(3, 4))
    with pytest.raises(pn.ShapeError, match=r"block gives shape \(1, 4\) but the input"):
        pn.summary(bad, 3)
    with pytest.raises(pn.ArgumentError, match="`input_shape` must be a non-empty tuple of positive integers"):
        pn.summary(model, (0, 3))


@attrs.frozen
class _Custom(pn.Layer):
    """A user's layer that does not say its output shape."""

    def forward(self, params: Any, x: Any):
        return np.asarray(x)[..., :2], None

    def backward(self, params: Any, cache: Any, dy: Any):  # pragma: no cover
        raise NotImplementedError


def test_a_layer_without_output_shape_shows_unknown_from_there_on():
    s = pn.summary(pn.Sequential([pn.Dense(4, 3), _Custom(), pn.Tanh()]), 4)
    assert [r.output_shape for r in s.rows] == [(3,), None, None]
    assert s.output_shape is None and "?" in str(s)


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**40)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 TiB"]
    assert math.isclose(float(format_bytes(2**30 * 7 // 4).split()[0]), 1.8, abs_tol=0.05)


# --- what running a model costs, known before it runs -------------------------------------------


def test_sample_values_counts_every_layers_output():
    assert sample_values(pn.Sequential([pn.Dense(4, 3), pn.ReLU()]), 4) == 3 + 3
    assert sample_values(pn.Parallel([pn.Identity(), pn.Dense(4, 2)]), 4) == 6 + 4 + 2
    assert sample_values(pn.Residual(pn.Dense(4, 4)), 4) == 4 + 4
    assert sample_values(pn.Sequential([pn.Sequential([pn.Dense(4, 3)]), pn.Tanh()]), 4) == 3 + 3
    assert sample_values(pn.Sequential([pn.Dense(4, 3), _Custom(), pn.Tanh()]), 4) is None


@pytest.mark.parametrize("name", list(PRESETS))
def test_sample_values_of_a_preset_is_the_size_of_what_its_layers_give(name):
    """Run layer by layer (each container as its children's outputs plus its own)."""
    model = PRESETS[name].model
    params, state = model.init(np.random.default_rng(0)), model.init_state()
    x = np.zeros((1, 784), np.float32)

    def run(layer: Any, p: Any, st: Any, x: np.ndarray) -> tuple[np.ndarray, int]:
        if isinstance(layer, pn.Sequential):
            total = 0
            for child, cp, cs in zip(layer.layers, p, st):
                x, n = run(child, cp, cs, x)
                total += n
            return x, total
        y, _, _ = pn.apply_layer(layer, p, x, state=st, training=False)
        if isinstance(layer, pn.Residual):
            return y, y.size + run(layer.block, p["block"], st["block"], x)[1] + (
                0 if layer.projection is None else run(layer.projection, p["projection"], st["projection"], x)[1])
        if isinstance(layer, pn.Parallel):
            return y, y.size + sum(run(b, bp, bs, x)[1] for b, bp, bs in zip(layer.branches, p, st))
        return y, y.size

    assert sample_values(model, 784) == run(model, params, state, x)[1]
    assert MAX_SAMPLE_VALUES > 40 * sample_values(model, 784)


def test_a_model_of_max_sample_values_passes_the_check_one_more_value_is_refused():
    assert check_sample_size(pn.Identity(), MAX_SAMPLE_VALUES) == (MAX_SAMPLE_VALUES,)
    with pytest.raises(pn.ArgumentError, match=rf"computes {MAX_SAMPLE_VALUES + 1:,} values per sample "
                                               rf"of shape \({MAX_SAMPLE_VALUES + 1},\).*more than the "
                                               rf"{MAX_SAMPLE_VALUES:,} purenn runs \(MAX_SAMPLE_VALUES\)"):
        check_sample_size(pn.Identity(), MAX_SAMPLE_VALUES + 1)
    assert check_sample_size(pn.Dense(4, 3), 4, limit=3) == (3,)
    with pytest.raises(pn.ArgumentError, match="computes 6 values per sample"):
        check_sample_size(pn.Sequential([pn.Dense(4, 3), pn.ReLU()]), 4, limit=5)
    assert check_sample_size(pn.Sequential([pn.Dense(4, 3), _Custom()]), 4, limit=1) is None
    with pytest.raises(pn.ShapeError, match="Reshape"):
        check_sample_size(PRESETS["cnn"].model, 783)


def test_a_fan_out_model_is_refused_without_allocating():
    """Three Parallel blocks of 400 Identity branches: 784 x 400**3 values a sample."""
    model = pn.Sequential([pn.Parallel([pn.Identity()] * 400)] * 3)
    tracemalloc.start()
    try:
        with pytest.raises(pn.ArgumentError, match=r"computes 100,603,507,200 values per sample .*374\.8 GiB"):
            check_sample_size(model, 784)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak
