"""Normalisation over the last axis: BatchNorm (with running statistics as explicit state) and
LayerNorm (stateless)."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.layers.base import MISSING, ShapePreserving, require_mode, shape_error
from purenn.tree import readonly
from purenn.validation import array_size, as_float_array, float_dtype, positive_number, real, to_float, to_int

__all__ = ["BatchNorm", "LayerNorm"]

_momentum = attrs.evolve(real(0.0, 1.0, high_open=False),
                         what="the weight of the newest batch in the running statistics, a real number in [0, 1]")


def _features(layer: Any, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = as_float_array(x, layer, dtype)
    if x.ndim < 1 or x.shape[-1] != layer.features:
        raise shape_error(layer, f"(batch, ..., {layer.features})", x.shape)
    return x


def _feature_shape(layer: Any, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``output_shape`` of a layer normalising over a last axis of ``features``: the input's."""
    if len(input_shape) < 1 or input_shape[-1] != layer.features:
        raise shape_error(layer, f"(batch, ..., {layer.features})", input_shape)
    return tuple(input_shape)


def _scale_and_shift(layer: Any) -> dict[str, np.ndarray]:
    return {"scale": readonly(np.ones(layer.features, dtype=layer.dtype)),
            "shift": readonly(np.zeros(layer.features, dtype=layer.dtype))}


def _affine_shapes(layer: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    return {"scale": ((layer.features,), layer.dtype), "shift": ((layer.features,), layer.dtype)}


def _normalised_backward(xhat: np.ndarray, inv_std: np.ndarray, dxhat: np.ndarray, axes: Any,
                         n: int) -> np.ndarray:
    """dE/dX of xhat = (x - mean) * inv_std when mean and variance are those of x over ``axes``
    (n values each): inv_std / n * (n dxhat - sum(dxhat) - xhat sum(dxhat xhat))."""
    total = dxhat.sum(axis=axes, keepdims=True)
    along = (dxhat * xhat).sum(axis=axes, keepdims=True)
    return (inv_std / n) * (n * dxhat - total - xhat * along)


@attrs.frozen
class _ScaleAndShift(ShapePreserving):
    """What both normalisations share: params ``scale`` (ones) and ``shift`` (zeros) of shape
    ``(features,)``, and an input whose last axis has ``features`` values (subclasses define the
    ``features`` and ``dtype`` fields)."""

    fresh_grads: ClassVar[bool] = True

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return _scale_and_shift(self)

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return _affine_shapes(self)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return _feature_shape(self, input_shape)


@attrs.frozen
class BatchNorm(_ScaleAndShift):
    """Batch normalisation over the last axis, with running statistics as explicit state.

    For ``x`` of shape ``(batch, features)`` (after a Dense layer) or ``(batch, h, w, features)``
    (a channels-last convolution), each feature is normalised over all the other axes::

        training:    Y = (X - mean_B) / sqrt(var_B + eps) * scale + shift
        evaluation:  Y = (X - running_mean) / sqrt(running_var + eps) * scale + shift

    where ``mean_B`` and ``var_B`` are the batch's mean and *biased* variance (divided by n, the
    number of values per feature). Params: ``scale`` (ones) and ``shift`` (zeros). State:
    ``mean`` (zeros) and ``var`` (ones), updated in training as PyTorch's ``BatchNorm1d/2d`` do::

        mean <- (1 - momentum) * mean + momentum * mean_B
        var  <- (1 - momentum) * var  + momentum * var_B * n / (n - 1)     (the unbiased variance)

    so ``momentum=0.1`` and ``eps=1e-5`` (the defaults) match PyTorch's. Keras' ``momentum=0.99``
    is PyTorch's 0.01 here.

    Call it with the mode and the state, both explicitly (see :mod:`purenn.layers.base`)::

        state = bn.init_state()
        y, cache, state = bn.forward(params, x, state=state, training=True)
        y, cache, _ = bn.forward(params, x, state=state, training=False)

    Backward in training is the full gradient through the batch statistics:
    with xhat the normalised input, dxhat = dE/dY * scale and the sums over a feature's n values,
    dE/dX = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var_B + eps);
    dE/dscale = sum(dE/dY xhat); dE/dshift = sum(dE/dY). In evaluation mode the statistics are
    constants: dE/dX = dE/dY * scale / sqrt(running_var + eps).
    """

    features: int = attrs.field(converter=to_int, validator=array_size)
    momentum: float = attrs.field(default=0.1, converter=to_float, validator=_momentum)
    eps: float = attrs.field(default=1e-5, converter=to_float, validator=positive_number)
    dtype: str = attrs.field(default="float32", validator=float_dtype)

    stateful = True

    def init_state(self) -> dict[str, np.ndarray]:
        """Running mean zeros and running variance ones (as PyTorch: a variance of zero would
        blow evaluation up by 1/sqrt(eps) before the first update)."""
        return {"mean": readonly(np.zeros(self.features, dtype=self.dtype)),
                "var": readonly(np.ones(self.features, dtype=self.dtype))}

    def state_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"mean": ((self.features,), self.dtype), "var": ((self.features,), self.dtype)}

    def state_problem(self, state: dict[str, np.ndarray]) -> str | None:
        """Running statistics a training run can give: finite, the variance not below zero."""
        if not (np.isfinite(state["mean"]).all() and np.isfinite(state["var"]).all()):
            return f"{self!r}: its running statistics hold NaN or infinite values"
        if (state["var"] < 0).any():
            return f"{self!r}: its running variance holds negative values (at least {state['var'].min():.3g})"
        return None

    def forward(self, params: dict[str, np.ndarray], x: Any, *, state: Any = MISSING,  # type: ignore[override]
                training: Any = MISSING) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        require_mode(self, state, training)
        scale, shift = params["scale"], params["shift"]
        x = _features(self, x, scale.dtype)
        if not training:
            inv_std = 1.0 / np.sqrt(state["var"] + scale.dtype.type(self.eps))
            xhat = (x - state["mean"]) * inv_std
            return xhat * scale + shift, (False, xhat, inv_std, scale), state
        axes = tuple(range(x.ndim - 1))
        n = x.size // self.features
        if n < 2:
            raise ShapeError(
                f"{self!r}: training needs more than one value per feature to estimate a variance, "
                f"got input of shape {x.shape}; use batches of two or more samples"
            )
        mean = x.mean(axis=axes)
        centred = x - mean
        var = np.square(centred).mean(axis=axes)
        inv_std = 1.0 / np.sqrt(var + scale.dtype.type(self.eps))
        xhat = centred * inv_std
        m = scale.dtype.type(self.momentum)
        new_state = {
            "mean": readonly((1 - m) * state["mean"] + m * mean),
            "var": readonly((1 - m) * state["var"] + m * (var * scale.dtype.type(n / (n - 1)))),
        }
        return xhat * scale + shift, (True, xhat, inv_std, scale), new_state

    def backward(self, params: dict[str, np.ndarray], cache: Any, dy: np.ndarray):
        training, xhat, inv_std, scale = cache
        axes = tuple(range(dy.ndim - 1))
        grads = {"scale": (dy * xhat).sum(axis=axes), "shift": dy.sum(axis=axes)}
        if not training:
            return dy * (scale * inv_std), grads
        return _normalised_backward(xhat, inv_std, dy * scale, axes, xhat.size // self.features), grads


@attrs.frozen
class LayerNorm(_ScaleAndShift):
    """Layer normalisation: each sample normalised over its last axis (no state, the same in
    training and evaluation)::

        Y = (X - mean) / sqrt(var + eps) * scale + shift,   mean, var over the last axis (biased)

    Params: ``scale`` (ones) and ``shift`` (zeros), of shape ``(features,)``; ``eps=1e-5`` as
    PyTorch's ``LayerNorm``. Backward: with xhat the normalised input and dxhat = dE/dY * scale,
    dE/dX = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps), means over the last
    axis; dE/dscale and dE/dshift sum dE/dY xhat and dE/dY over all other axes.
    """

    features: int = attrs.field(converter=to_int, validator=array_size)
    eps: float = attrs.field(default=1e-5, converter=to_float, validator=positive_number)
    dtype: str = attrs.field(default="float32", validator=float_dtype)

    def forward(self, params: dict[str, np.ndarray], x: Any):
        scale, shift = params["scale"], params["shift"]
        x = _features(self, x, scale.dtype)
        centred = x - x.mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(np.square(centred).mean(axis=-1, keepdims=True) + scale.dtype.type(self.eps))
        xhat = centred * inv_std
        return xhat * scale + shift, (xhat, inv_std, scale)

    def backward(self, params: dict[str, np.ndarray], cache: Any, dy: np.ndarray):
        xhat, inv_std, scale = cache
        axes = tuple(range(dy.ndim - 1))
        grads = {"scale": (dy * xhat).sum(axis=axes), "shift": dy.sum(axis=axes)}
        return _normalised_backward(xhat, inv_std, dy * scale, -1, self.features), grads
