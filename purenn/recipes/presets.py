"""Named MNIST training recipes: the tutorial's run and modern ones.

A :class:`Preset` is a frozen record of everything a run needs besides the data: the model, the
loss, the update rule and the loop's settings. ``RunConfig`` is one run of a preset (its overrides,
the seed, the sample limit); it is what a run record stores, so the run can be repeated exactly.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import attrs
import numpy as np

from purenn.layers import (
    Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Reshape, Sequential, Tanh,
)
from purenn.losses import mse, one_hot, softmax_cross_entropy
from purenn.optim.optimizers import Adam
from purenn.optim.schedules import CosineDecay
from purenn.training import History, fit

LOSSES: dict[str, Callable[[Any, Any], tuple[float, np.ndarray]]] = {
    "mse": mse,
    "softmax_cross_entropy": softmax_cross_entropy,
}


@attrs.frozen
class Preset:
    """A training recipe. ``optimizer``: ``"sgd"`` (plain :func:`sgd_step`) or ``"adam"`` with a
    cosine decay of ``lr`` to 0 over the run. ``one_hot_targets``: train on one-hot rows (MSE)
    instead of integer labels."""

    name: str
    description: str
    model: Sequential
    loss: str = attrs.field(validator=attrs.validators.in_(LOSSES))
    optimizer: str = attrs.field(validator=attrs.validators.in_(("sgd", "adam")))
    lr: float
    epochs: int
    batch_size: int
    shuffle: bool
    one_hot_targets: bool = False


def _tutorial_mnist() -> Sequential:
    return Sequential([
        Dense(784, 100, initializer="uniform"), Tanh(),
        Dense(100, 50, initializer="uniform"), Tanh(),
        Dense(50, 10, initializer="uniform"), Tanh(),
    ])


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="seed",
            description="the tutorial's run: 784-100-50-10 tanh, uniform init, MSE on one-hot "
            "targets, plain SGD lr 0.1, one sample per step, in order",
            model=_tutorial_mnist(), loss="mse", optimizer="sgd", lr=0.1, epochs=10,
            batch_size=1, shuffle=False, one_hot_targets=True,
        ),
        Preset(
            name="mlp",
            description="a modern MLP: 784-512-256-10 ReLU, He init, softmax cross-entropy, "
            "Adam with cosine decay, minibatches of 128, shuffled",
            model=Sequential([
                Dense(784, 512, initializer="he"), ReLU(),
                Dense(512, 256, initializer="he"), ReLU(),
                Dense(256, 10),
            ]),
            loss="softmax_cross_entropy", optimizer="adam", lr=2e-3, epochs=10,
            batch_size=128, shuffle=True,
        ),
        Preset(
            name="cnn",
            description="a small CNN: conv 5x5x32 - pool - conv 5x5x64 - pool - dense 128 - "
            "dropout 0.25 - 10, Adam with cosine decay, minibatches of 128, shuffled",
            model=Sequential([
                Reshape((28, 28, 1)),
                # pooling before ReLU: the same function (max and ReLU commute), on 4x fewer values
                Conv2D(1, 32, 5), MaxPool2D(2), ReLU(),
                Conv2D(32, 64, 5), MaxPool2D(2), ReLU(),
                Flatten(), Dense(4 * 4 * 64, 128, initializer="he"), ReLU(), Dropout(0.25),
                Dense(128, 10),
            ]),
            loss="softmax_cross_entropy", optimizer="adam", lr=2e-3, epochs=3,
            batch_size=128, shuffle=True,
        ),
    )
}


def _known_preset(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; choose one of: {', '.join(PRESETS)}")


def _optional(check: Callable[[Any], bool], what: str):
    """attrs validator: ``None`` or a value passing ``check``; the message names field and value."""

    def validate(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and not check(value):
            raise ValueError(f"`{attribute.name}` must be {what} or None, got {value!r}")

    return validate


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _non_negative_int(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not _is_int(value) or value < 0:
        raise ValueError(f"`{attribute.name}` must be a non-negative integer, got {value!r}")


_positive_int = _optional(lambda v: _is_int(v) and v > 0, "a positive integer")
_positive_number = _optional(
    lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
    "a positive number",
)


@attrs.frozen
class RunConfig:
    """One run of a preset: its overrides (``None`` keeps the preset's value), seed and limit."""

    preset: str = attrs.field(validator=_known_preset)
    seed: int = attrs.field(default=0, validator=_non_negative_int)
    epochs: int | None = attrs.field(default=None, validator=_positive_int)
    batch_size: int | None = attrs.field(default=None, validator=_positive_int)
    lr: float | None = attrs.field(default=None, validator=_positive_number)
    limit: int | None = attrs.field(default=None, validator=_positive_int)
    dataset: str = attrs.field(default="mnist", validator=attrs.validators.instance_of(str))

    def resolved(self) -> dict[str, Any]:
        """The settings actually used: the preset's, with this run's overrides applied."""
        p = PRESETS[self.preset]
        return {
            "preset": self.preset, "dataset": self.dataset, "seed": self.seed, "limit": self.limit,
            "epochs": p.epochs if self.epochs is None else self.epochs,
            "batch_size": p.batch_size if self.batch_size is None else self.batch_size,
            "lr": p.lr if self.lr is None else self.lr,
            "loss": p.loss, "optimizer": p.optimizer, "shuffle": p.shuffle,
        }

    def update_rule(self, n_train: int) -> dict[str, Any]:
        """``fit``'s update argument for ``n_train`` samples: ``{"lr": ...}`` for plain SGD, or
        ``{"optimizer": Adam(CosineDecay(lr, total steps))}``."""
        s = self.resolved()
        if PRESETS[self.preset].optimizer == "sgd":
            return {"lr": s["lr"]}
        steps = s["epochs"] * math.ceil(n_train / s["batch_size"])
        return {"optimizer": Adam(CosineDecay(s["lr"], max(steps, 1)))}


def train_preset(
    config: RunConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    callback: Callable[..., None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Sequential, Any, History]:
    """Train ``config``'s preset on ``(x_train, y_train)`` (integer labels); return
    ``(model, params, history)``. Pure given its inputs: the same config gives the same params."""
    preset = PRESETS[config.preset]
    s = config.resolved()
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    targets = one_hot(y_train, 10) if preset.one_hot_targets else y_train
    if validation is not None and preset.one_hot_targets:
        validation = (validation[0], one_hot(validation[1], 10))
    init_rng, train_rng = np.random.default_rng(config.seed).spawn(2)
    params = preset.model.init(init_rng)
    params, history = fit(
        preset.model, params, x_train, targets, loss=LOSSES[preset.loss], epochs=s["epochs"],
        batch_size=s["batch_size"], shuffle=preset.shuffle, seed=train_rng,
        validation=validation, callback=callback, on_batch=on_batch,
        **config.update_rule(len(x_train)),
    )
    return preset.model, params, history
