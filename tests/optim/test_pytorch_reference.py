"""The optimizers PyTorch has, against numbers recorded from it (PyTorch is not a dependency).

Recorded with torch 2.14.1 in float64, ``foreach=False``: one parameter p0 = [0.5, -1.0, 2.0]
given the gradients below, one ``opt.step()`` each; the rows are the parameter after each step.
"""

from __future__ import annotations

import numpy as np
import pytest

from purenn.optim.masking import decay_mask
from purenn.optim.optimizers import SGD, Adagrad, Adam, AdamW, MaskedAdamW, RMSProp

from registry_optim import OPTIMIZERS

P0 = np.array([0.5, -1.0, 2.0])
GRADS = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.2, -0.6], [1e-3, -2.0, 0.7]]

# (purenn optimizer, the torch.optim constructor the numbers came from, the numbers)
CASES = {
    "rmsprop_default": (RMSProp(0.01), "RMSprop(lr=0.01)", [
        [0.40000009999990005, -0.9000000499999751, 1.9000000333333222],
        [0.49704287266865177, -0.9929118010156807, 1.8834795737804584],
        [0.4532111545062486, -1.0279025060930336, 1.9728543804959826],
        [0.45299089236949425, -0.9317157209953857, 1.9005076391335565],
    ]),
    "rmsprop_wd_momentum": (
        RMSProp(0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.8),
        "RMSprop(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.8)", [
            [0.4683778900509286, -0.968377556728136, 1.9683774233970512],
            [0.47241115937285855, -0.9689136287442994, 1.9284818114098599],
            [0.4577764009328667, -0.9761439269761538, 1.9163590839981344],
            [0.44252884070785736, -0.9510234809479806, 1.8806582718344724],
        ]),
    "rmsprop_centered": (
        RMSProp(0.01, alpha=0.9, eps=1e-6, centered=True),
        "RMSprop(lr=0.01, alpha=0.9, eps=1e-6, centered=True)", [
            [0.466667777740742, -0.9666672222129631, 1.9666670370329218],
            [0.4983507572207409, -0.9967765981273812, 1.9608254416385862],
            [0.4838973646966398, -1.0088681140636258, 1.9899153557547735],
            [0.48382120441055787, -0.9773400279000063, 1.9661018094397527],
        ]),
    "rmsprop_centered_momentum": (
        RMSProp(0.05, alpha=0.95, eps=1e-8, centered=True, momentum=0.5),
        "RMSprop(lr=0.05, alpha=0.95, eps=1e-8, centered=True, momentum=0.5)", [
            [0.27058437139254793, -0.7705843187610052, 1.7705843012171523],
            [0.37617027696459754, -0.8659697668352592, 1.6169252392627216],
            [0.32911843938520247, -0.9951258737048624, 1.7424405532752036],
            [0.3050803660642195, -0.8409866025475276, 1.6403964343694344],
        ]),
    "adagrad_default": (Adagrad(0.1), "Adagrad(lr=0.1)", [
        [0.4000000001, -0.90000000005, 1.9000000000333332],
        [0.49701425009100375, -0.9928476691212845, 1.8835601013082028],
        [0.4533706720533291, -1.0276632003063635, 1.9727553988446032],
        [0.45315245468270526, -0.9315493340445399, 1.9006517304845856],
    ]),
    "adagrad_wd_init": (
        Adagrad(0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6),
        "Adagrad(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6)", [
            [0.479248594792112, -0.9609433775531443, 1.942265039747627],
            [0.5230375952508034, -1.0074850136671316, 1.9151228697788034],
            [0.49309708888398207, -1.0188475940761077, 1.9564600147880553],
            [0.48713752306789265, -0.9265042328319654, 1.8893038531031328],
        ]),
    "adam": (Adam(0.1), "Adam(lr=0.1)", [
        [0.400000009999999, -0.9000000049999998, 1.9000000033333333],
        [0.4559503574851284, -0.944221530217233, 1.821667272150606],
        [0.4669677234642677, -0.998515828128192, 1.851302413110194],
        [0.47586552755013106, -0.9549236611422945, 1.8262009552916922],
    ]),
    "adam_wd": (Adam(0.1, weight_decay=0.1), "Adam(lr=0.1, weight_decay=0.1)", [
        [0.40000000666666624, -0.9000000033333332, 1.900000002],
        [0.4429341513610014, -0.9205098564205757, 1.8073841626213918],
        [0.43713025893369384, -0.9493032297697915, 1.7888373703392126],
        [0.4267734621879527, -0.8985637438549963, 1.7338227219219007],
    ]),
    "adamw": (AdamW(0.1, weight_decay=0.1), "AdamW(lr=0.1, weight_decay=0.1)", [
        [0.395000009999999, -0.8900000049999998, 1.8800000033333333],
        [0.4470003573851284, -0.925321530167233, 1.7828672721172727],
        [0.45354771979041636, -0.9703626127765196, 1.7946737403556878],
        [0.4579100466783756, -0.917066819662857, 1.7516255451336291],
    ]),
    "sgd_nesterov_wd": (
        SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)", [
            [0.48005, -0.9601, 1.9392],
            [0.546632905, -1.03626581, 1.90009552],
            [0.5319509619805, -1.096710223961, 1.981536586512],
            [0.5360284760496871, -0.7519590863293741, 1.8657787128264272],
        ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_pytorch(name):
    opt, torch_call, expected = CASES[name]
    params = {"p": P0}
    state = opt.init(params)
    path = []
    for g in GRADS:
        params, state = opt.update({"p": np.array(g)}, state, params)
        path.append(params["p"])
    np.testing.assert_allclose(path, expected, rtol=1e-13, atol=1e-15,
                               err_msg=f"{opt!r} differs from torch.optim.{torch_call}")


# AdamW with a decay mask: PyTorch's AdamW with two parameter groups, the bias's without decay.
# Recorded with torch 2.13.0 (CPU) in float64 by this script:
#
#   import torch
#   torch.set_default_dtype(torch.float64)
#   w, b = torch.tensor(W0, requires_grad=True), torch.tensor(B0, requires_grad=True)
#   opt = torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
#                           lr=0.1, weight_decay=0.1, foreach=False)
#   for gw, gb in MASK_GRADS:
#       w.grad, b.grad = torch.tensor(gw), torch.tensor(gb)
#       opt.step()
#       print((w.tolist(), b.tolist()))
W0, B0 = [[0.5, -1.0], [2.0, 0.25]], [0.75, -0.5]
MASK_GRADS = [([[0.1, -0.2], [0.3, 0.05]], [0.4, -0.1]), ([[-0.4, 0.5], [0.05, -0.3]], [0.2, 0.2]),
              ([[0.2, 0.2], [-0.6, 0.1]], [-0.3, 0.6]), ([[1e-3, -2.0], [0.7, 0.0]], [0.0, 1.5])]
MASK_PATH = [
    ([[0.395000009999999, -0.8900000049999998], [1.8800000033333333, 0.147500019999996]],
     [0.6500000024999999, -0.400000009999999]),
    ([[0.4470003573851284, -0.925321530167233], [1.7828672721172727, 0.20841688354617846]],
     [0.5567820415671129, -0.4366103603884889]),
    ([[0.45354771979041636, -0.9703626127765196], [1.7946737403556878, 0.23218406971837593]],
     [0.532567574389013, -0.5063518410258327]),
    ([[0.4579100466783756, -0.917066819662857], [1.7516255451336291, 0.25103808585994475]],
     [0.5127325563800497, -0.5822210705993425]),
]
MASKED = {"decay_mask": AdamW(0.1, weight_decay=0.1, mask=decay_mask),
          "tree": AdamW(0.1, weight_decay=0.1, mask={"w": True, "b": False}),
          "function": MaskedAdamW(0.1, weight_decay=0.1, mask=lambda p: {"w": True, "b": False})}


@pytest.mark.parametrize("name", list(MASKED))
def test_adamw_with_a_mask_matches_pytorch_parameter_groups(name):
    opt = MASKED[name]
    params = {"w": np.array(W0), "b": np.array(B0)}
    state = opt.init(params)
    for (gw, gb), (w, b) in zip(MASK_GRADS, MASK_PATH, strict=True):
        params, state = opt.update({"w": np.array(gw), "b": np.array(gb)}, state, params)
        np.testing.assert_allclose(params["w"], w, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(params["b"], b, rtol=1e-13, atol=1e-15)


def test_every_optimizer_has_a_reference():
    """An optimizer without a rule in the registry (tests/registry_optim.py) is held to PyTorch's
    numbers here; one PyTorch does not have must give its paper's rule there."""
    recorded = {type(opt) for opt, _, _ in CASES.values()} | {type(o) for o in MASKED.values()}
    missing = sorted(cls.__name__ for cls, entry in OPTIMIZERS.items() if entry.rule is None and cls not in recorded)
    assert not missing, (f"optimizers with no reference: {missing}; write the published update rule in "
                         "NumPy as the `rule` of their entry in tests/registry_optim.py")
