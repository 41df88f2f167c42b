"""The `seed` preset (purenn.recipes.presets) is the tutorial's MNIST run: on real MNIST, purenn's
per-sample SGD gives the tutorial's own code's errors and weights (float64, same initial weights)."""

from __future__ import annotations

import attrs
import numpy as np
from _mnist import requires_mnist

import purenn as pn
from benchmarks.tutorial_code import tutorial_network
from purenn.recipes.presets import PRESETS

pytestmark = requires_mnist


def test_seed_preset_matches_the_tutorials_code_on_real_mnist():
    data = pn.load_mnist()
    n = 1500
    x, y = data.train.images[:n], pn.one_hot(data.train.labels[:n], 10)
    model = PRESETS["seed"].model
    model = attrs.evolve(model, layers=[
        attrs.evolve(layer, dtype="float64") if isinstance(layer, pn.Dense) else layer
        for layer in model.layers
    ])
    params = model.init(np.random.default_rng(0))
    net = tutorial_network(params, [0, 2, 4])
    errors = net.fit(x.reshape(n, 1, 784), y.reshape(n, 1, 10), 2, 0.1, verbose=False)

    params, history = pn.fit(model, params, x, y, loss=pn.mse, lr=0.1, epochs=2,
                             batch_size=1, shuffle=False)
    np.testing.assert_allclose(history.loss, errors, rtol=1e-9)
    for i, layer in zip((0, 2, 4), net.layers[::2]):
        np.testing.assert_allclose(params[i]["w"], layer.weights, rtol=1e-9, atol=1e-10)  # weights are O(0.5): rounding noise only
        np.testing.assert_allclose(params[i]["b"], layer.bias.ravel(), rtol=1e-9, atol=1e-10)  # weights are O(0.5): rounding noise only
