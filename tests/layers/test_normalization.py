"""BatchNorm and LayerNorm: against PyTorch's own numbers, and by their behaviour.

Gradients against finite differences are checked by the layer registry (tests/test_gradients.py);
here the values are pinned to PyTorch's (float64, ``rtol=1e-12``): ``torch.nn.BatchNorm1d`` over
three training steps (batches of 4, 2 and 5 rows: with 2 the unbiased variance is twice the
biased one) and then evaluation mode, ``torch.nn.BatchNorm2d`` on channels-last images (a batch of
one image in the second step: n counts every non-feature value), and ``torch.nn.LayerNorm``, each
with its outputs, dE/dX for a fixed dE/dY, the scale and shift gradients and the running mean and
variance after every step.

Provenance: ``TORCH_REFERENCE`` is the output of ``GENERATOR`` (the script below, which reads
``INPUTS`` as JSON on stdin and writes its results as JSON) run with torch 2.14.1 (CPU, float64);
torch is not a dependency of purenn. To regenerate the literal::

    python tests/layers/test_normalization.py /path/to/python-with-torch > reference.txt

and to confirm the literal is still what torch gives (skipped unless the variable is set)::

    PURENN_TORCH_PYTHON=/path/to/python-with-torch python -m pytest tests/layers/test_normalization.py
"""

from __future__ import annotations

import json
import os
import pprint
import subprocess
import sys

import numpy as np
import pytest

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.layers import BatchNorm, Dense, LayerNorm, Sequential
from purenn.tree import tree_leaves, tree_map

RNG = np.random.default_rng

GENERATOR = r'''
import json, sys
import torch

torch.set_default_dtype(torch.float64)
inp = json.load(sys.stdin)
out = {}


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def batchnorm(cfg, to_torch, from_torch):
    """cfg: features, momentum, eps, weight, bias, steps [{x, dy}], eval {x, dy}. x and dy are
    channels-last (purenn's layout); to_torch/from_torch move the feature axis for torch."""
    cls = torch.nn.BatchNorm1d if cfg["kind"] == "1d" else torch.nn.BatchNorm2d
    bn = cls(cfg["features"], momentum=cfg["momentum"], eps=cfg["eps"])
    with torch.no_grad():
        bn.weight.copy_(t(cfg["weight"]))
        bn.bias.copy_(t(cfg["bias"]))
    rec = {"steps": []}
    for mode, steps in (("train", cfg["steps"]), ("eval", [cfg["eval"]])):
        bn.train(mode == "train")
        for step in steps:
            bn.zero_grad()
            x = to_torch(t(step["x"])).detach().requires_grad_(True)
            y = bn(x)
            y.backward(to_torch(t(step["dy"])))
            r = {"y": from_torch(y).tolist(), "dx": from_torch(x.grad).tolist(),
                 "dscale": bn.weight.grad.tolist(), "dshift": bn.bias.grad.tolist(),
                 "mean": bn.running_mean.tolist(), "var": bn.running_var.tolist()}
            if mode == "train":
                rec["steps"].append(r)
            else:
                rec["eval"] = r
    return rec


out["bn1d"] = batchnorm(inp["bn1d"], lambda a: a, lambda a: a.detach())
# purenn is channels-last (N, H, W, C); torch's BatchNorm2d wants (N, C, H, W)
out["bn2d"] = batchnorm(inp["bn2d"], lambda a: a.permute(0, 3, 1, 2),
                        lambda a: a.detach().permute(0, 2, 3, 1))

out["layernorm"] = []
for cfg in inp["layernorm"]:
    ln = torch.nn.LayerNorm(cfg["features"], eps=cfg["eps"])
    with torch.no_grad():
        ln.weight.copy_(t(cfg["weight"]))
        ln.bias.copy_(t(cfg["bias"]))
    x = t(cfg["x"], grad=True)
    y = ln(x)
    y.backward(t(cfg["dy"]))
    out["layernorm"].append({"y": y.tolist(), "dx": x.grad.tolist(),
                             "dscale": ln.weight.grad.tolist(), "dshift": ln.bias.grad.tolist()})

json.dump({"torch": torch.__version__, **out}, sys.stdout)
'''

# Inputs in purenn's layout (channels last); GENERATOR moves the channel axis for BatchNorm2d.
INPUTS = {
    "bn1d": {
        "kind": "1d", "features": 3, "momentum": 0.1, "eps": 1e-5,
        "weight": [1.5, -0.5, 2.0], "bias": [0.1, 0.2, -0.3],
        "steps": [
            {"x": [[0.5, -1.2, 3.0], [1.5, 0.3, 2.5], [-0.7, 2.2, 4.1], [0.9, -0.4, 1.8]],
             "dy": [[0.3, -0.1, 0.7], [-0.6, 0.4, 0.2], [0.1, 0.9, -0.5], [1.2, -0.3, 0.05]]},
            {"x": [[2.0, -0.5, 1.0], [-1.0, 0.75, 3.5]],
             "dy": [[0.4, -0.2, 1.1], [-0.3, 0.6, 0.25]]},
            {"x": [[0.1, 0.2, 0.3], [1.1, -2.3, 0.7], [-0.4, 0.8, -1.6], [2.2, 1.4, 0.9],
                   [0.0, -0.6, 2.4]],
             "dy": [[1.0, 0.5, -0.5], [-0.2, 0.3, 0.8], [0.6, -0.9, 0.1], [-1.1, 0.2, 0.4],
                    [0.35, -0.45, -0.7]]},
        ],
        "eval": {"x": [[0.2, -0.1, 1.5], [3.0, 0.4, -2.0], [-1.3, 1.9, 0.6]],
                 "dy": [[0.5, -0.25, 0.75], [-1.0, 0.6, 0.3], [0.2, 0.1, -0.4]]},
    },
    "bn2d": {
        "kind": "2d", "features": 2, "momentum": 0.3, "eps": 1e-3,
        "weight": [0.8, -1.3], "bias": [0.5, 0.0],
        "steps": [
            {"x": [[[[0.4, 1.0], [-0.3, 2.1], [1.7, -0.8]], [[0.9, 0.2], [-1.4, 1.3], [0.6, 0.5]]],
                   [[[2.2, -0.6], [0.1, 0.7], [-0.9, 1.8]], [[1.2, -1.1], [0.3, 0.0], [-0.2, 2.6]]]],
             "dy": [[[[0.1, -0.4], [0.6, 0.2], [-0.3, 0.9]], [[0.5, 0.3], [-0.7, -0.1], [0.2, 0.4]]],
                    [[[-0.5, 0.8], [0.3, -0.6], [1.0, 0.1]], [[-0.2, -0.9], [0.4, 0.7], [0.0, -0.3]]]]},
            {"x": [[[[1.5, 0.3], [-2.0, 0.8]], [[0.7, -1.2], [0.4, 2.4]], [[-0.1, 0.6], [1.1, -0.5]]]],
             "dy": [[[[0.2, 0.5], [-0.4, 0.1]], [[0.9, -0.3], [0.0, 0.6]], [[-0.8, 0.2], [0.3, -0.7]]]]},
        ],
        "eval": {"x": [[[[0.3, -0.7], [1.9, 0.2]]], [[[-1.0, 1.4], [0.5, -0.1]]]],
                 "dy": [[[[0.6, -0.2], [0.1, 0.9]]], [[[-0.4, 0.3], [0.7, -0.5]]]]},
    },
    "layernorm": [
        {"features": 4, "eps": 1e-5, "weight": [1.2, -0.7, 0.5, 2.0], "bias": [0.0, 0.3, -0.1, 0.25],
         "x": [[0.3, -1.1, 2.4, 0.8], [1.0, 1.5, -0.2, 0.6], [-2.1, 0.4, 0.9, -0.3]],
         "dy": [[0.5, -0.2, 0.1, 0.8], [-0.6, 0.3, 0.9, -0.1], [0.2, 0.7, -0.4, 0.35]]},
        {"features": 3, "eps": 1e-2, "weight": [0.9, 1.1, -0.4], "bias": [0.2, -0.5, 0.1],
         "x": [[[0.1, 0.15, -0.05], [2.0, -1.0, 0.5]], [[1.3, 1.2, 1.25], [-0.4, 0.8, 0.0]]],
         "dy": [[[1.0, -0.5, 0.2], [0.3, 0.6, -0.9]], [[-0.7, 0.4, 0.1], [0.25, -0.35, 0.8]]]},
    ],
}

# The output of GENERATOR for INPUTS (see the module docstring); do not edit by hand.
TORCH_REFERENCE = {'torch': '2.14.1+cu130',
                   'bn1d': {'steps': [{'y': [[0.006795254824803032, 0.766496739643321, 0.057927444245909676],
                                             [1.8708901583287405, 0.1701843821240358, -1.1351640365737854],
                                             [-2.230118629379922, -0.5851446040670588, 2.682728702049238],
                                             [0.7524332162263782, 0.44846348229970223, -2.8054921097213583]],
                                       'dx': [[0.08276885379869028, -0.06216668992000939, 1.483720607188518],
                                              [-1.386198731824722, -0.05949779079571375, 0.01783540228423575],
                                              [-0.540511519938255, -0.003111642347669398,
                                               -0.7795527537926579],
                                              [1.8439413979642867, 0.12477612306339257, -0.7220032556800952]],
                                       'dscale': [-0.3603916813440946, 1.699490218929963,
                                                  -0.7665612764266536],
                                       'dshift': [1.0, 0.9000000000000001, 0.4499999999999999],
                                       'mean': [0.05500000000000001, 0.02250000000000001, 0.285],
                                       'var': [0.9863333333333334, 1.1109166666666668, 0.9936666666666667]},
                                      {'y': [[1.5999966666777778, 0.6999936001228775, -2.29999360003072],
                                             [-1.3999966666777777, -0.29999360012287735, 1.6999936000307199]],
                                       'dx': [[1.5555451851883832e-06, 8.191685437288139e-06,
                                               4.351958221298655e-06],
                                              [-1.5555451851883832e-06, -8.191685437288139e-06,
                                               -4.351958221298655e-06]],
                                       'dscale': [0.6999984444496297, 0.7999897601966038,
                                                  -0.8499972800130559],
                                       'dshift': [0.10000000000000003, 0.39999999999999997, 1.35],
                                       'mean': [0.0995, 0.03275000000000001, 0.48150000000000004],
                                       'var': [1.3377000000000001, 1.07795, 1.2068]},
                                      {'y': [[-0.697687294103392, 0.08315467584657768, -0.673633075001891],
                                             [0.8976872941033919, 1.0568657104584307, -0.05091128333207243],
                                             [-1.495374588206784, -0.15053597246026706, -3.6315615854335292],
                                             [2.652599341130854, -0.3842266207671117, 0.26044961250283694],
                                             [-0.8572247529240704, 0.3947422069223706, 2.595656331264656]],
                                       'dx': [[0.8158853673549394, -0.23327935242550055, -0.8604303591878054],
                                              [0.04561691027672379, -0.06143883187323511, 1.248235513767507],
                                              [-0.3943549923127363, 0.28945235388914103, -0.3292429093179878],
                                              [-0.13162106546246427, -0.16152697440807043,
                                               0.6679237471118895],
                                              [-0.3355262198564625, 0.1667928048176651, -0.7264859923736035]],
                                       'dscale': [-3.371558296410337, -0.6192802180131384,
                                                  -0.8749241172960948],
                                       'dshift': [0.6499999999999998, -0.35, 0.10000000000000009],
                                       'mean': [0.14955000000000002, 0.019475000000000013,
                                                0.48735000000000006],
                                       'var': [1.3144300000000002, 1.176155, 1.2924200000000003]}],
                            'eval': {'y': [[0.16600579196362852, 0.25508240799410364, 1.4815000855241345],
                                           [3.8293599544643193, 0.024563856020453727, -4.675859613616211],
                                           [-1.7965053665188846, -0.666991799900496, -0.10182097996909727]],
                                     'dx': [[0.6541703861608377, 0.11525927598682496, 1.3194342212443597],
                                            [-1.3083407723216753, -0.2766222623683799, 0.5277736884977439],
                                            [0.2616681544643351, -0.04610371039472999, -0.7036982513303252]],
                                     'dscale': [-2.7171054211908547, 0.4114629367526066,
                                                -0.02795221397706187],
                                     'dshift': [-0.3, 0.44999999999999996, 0.65],
                                     'mean': [0.14955000000000002, 0.019475000000000013, 0.48735000000000006],
                                     'var': [1.3144300000000002, 1.176155, 1.2924200000000003]}},
                   'bn2d': {'steps': [{'y': [[[[0.5134751953088433, -0.41443351936657136],
                                               [-0.05248300766257706, -1.6866480439337204],
                                               [1.564540429398624, 1.6673720662887634]],
                                              [[0.9177310545741436, 0.5108134075913552],
                                               [-0.9418458980462376, -0.7614011169757938],
                                               [0.6751775390149634, 0.16384580998213272]]],
                                             [[[1.9687962886639245, 1.4360603345492817],
                                               [0.27092167974966314, -0.06746592175734886],
                                               [-0.5375900387809375, -1.339680446324498]],
                                              [[1.1602845701333238, 2.014339663897986],
                                               [0.43262402345578327, 0.7421251393308368],
                                               [0.028368164190482978, -2.2649273732824247]]]],
                                       'dx': [[[[-0.011494785852456548, 0.5198252296287266],
                                                [0.30958387624459893, -0.3239640734611114],
                                                [-0.18042753566652778, -0.7384852137974429]],
                                               [[0.3713221852513872, -0.18078102573480984],
                                                [-0.8721883819667093, 0.1319883298727605],
                                                [0.0931212994772449, -0.33730619375129417]]],
                                              [[[-0.28271759568104443, -0.6500755493588646],
                                                [0.11456018763870149, 0.7920062635149517],
                                                [0.561693823226915, -0.167438905444627]],
                                               [[-0.1589886475050712, 1.3841896740046356],
                                                [0.21917627296840295, -0.6161582877826107],
                                                [-0.16364069813544077, 0.18619975230968686]]]],
                                       'dscale': [-1.7450377924952132, -1.5887853881977856],
                                       'dshift': [1.4, 1.1],
                                       'mean': [0.115, 0.19249999999999998],
                                       'var': [1.0200909090909092, 1.113159090909091]},
                                      {'y': [[[[1.371002738340445, 0.11561456734986268],
                                               [-1.1007617893824397, -0.46245826939945023]],
                                              [[0.8060279891466429, 1.8498330775978011],
                                               [0.5941624581989671, -2.3122913469972515]],
                                              [[0.24105323995284064, -0.23122913469972503],
                                               [1.088515363743544, 1.0405311061487632]]]],
                                       'dx': [[[[-0.11835533672445722, -0.5366592699580273],
                                                [0.12780908772295949, 0.10411305665120323]],
                                               [[0.5291165371270383, -0.14668490278846688],
                                                [-0.049060442600894844, 0.09664520297318656]],
                                               [[-0.5183358366028731, -0.08282713358257143],
                                                [0.028825991078227295, 0.5654130467046755]]]],
                                       'dscale': [1.842053088517293, 2.0810622122975264],
                                       'dshift': [0.19999999999999996, 0.4000000000000001],
                                       'mean': [0.1605, 0.25475000000000003],
                                       'var': [1.1756636363636364, 1.2340113636363634]}],
                            'eval': {'y': [[[[0.6028816755157999, 1.1168569279674052],
                                             [1.7828865559837557, 0.06404599822593922]]],
                                           [[[-0.35587228986441427, -1.3397019080960155],
                                             [0.7503822855742943, 0.41498297480642793]]]],
                                     'dx': [[[[0.44250183017548345, 0.23395798438699247],
                                              [0.07375030502924725, -1.052810929741466]]],
                                            [[[-0.295001220116989, -0.3509369765804887],
                                              [0.5162521352047307, 0.5848949609674812]]]],
                                     'dscale': [0.8845427209445341, 0.5962554207862726],
                                     'dshift': [0.9999999999999999, 0.49999999999999994],
                                     'mean': [0.1605, 0.25475000000000003],
                                     'var': [1.1756636363636364, 1.2340113636363634]}},
                   'layernorm': [{'y': [[-0.28776895672370584, 1.2512362736144724, 0.619422391809265,
                                         0.5697432852485624],
                                        [0.5305459381292643, -0.57218536798523, -0.8435681708629843,
                                         -0.15192874100701886],
                                        [-1.926780254252888, -0.11570943841757514, 0.4168873969742337,
                                         0.20600958323623558]],
                                  'dx': [[0.0016919342783240365, -0.36744299627842636, -0.43580985415709306,
                                          0.8015609161571954],
                                         [-0.6694019630682227, 0.5411531543083095, 0.27413537911130903,
                                          -0.145886570351396],
                                         [-0.16115527564675775, -0.3687287094961834, -0.02664696208604161,
                                          0.5565309472289829]],
                                  'dscale': [-0.7063067434083243, 1.0612849600153802, -1.6080481467709058,
                                             0.14029542821611715],
                                  'dshift': [0.10000000000000003, 0.7999999999999999, 0.6, 1.05]},
                                 {'y': [[[0.42860022860034286, 0.19850069850104768, 0.45560035560053347],
                                         [1.2986144193410654, -1.8427509569724132, 0.1]],
                                        [[0.6166190448976485, -1.0092010548749037, 0.1],
                                         [-0.7433753661958025, 0.9412679205769205, 0.20481948513286696]]],
                                  'dx': [[[6.204161042873823, -4.796917700145905, -1.4072433427279174],
                                          [0.027431677186392056, 0.0295335149275891, -0.0569651921139811]],
                                         [[-4.415280142486715, 4.075812772570114, 0.3394673699166013],
                                          [0.3058968853280649, 0.12125376331424047, -0.42715064864230534]]],
                                  'dscale': [0.034119312694841475, -1.6936591978053226, -0.38743914806600055],
                                  'dshift': [0.8500000000000001, 0.15000000000000002, 0.20000000000000007]}]}


def close(got, want, what: str) -> None:
    """float64 agreement to rtol 1e-12; the absolute floor (1e-12 of the array's largest value,
    at least 1e-12) is for entries that are sums cancelling to near zero (dE/dX of a feature with
    two values is ~1e-6, the rest of its terms ~1)."""
    got, want = np.asarray(got), np.asarray(want, dtype=np.float64)
    assert got.dtype == np.float64, f"{what}: {got.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    atol = 1e-12 * max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=atol, err_msg=what)


def affine(cfg) -> dict[str, np.ndarray]:
    return {"scale": np.array(cfg["weight"]), "shift": np.array(cfg["bias"])}


def check_step(layer, params, cache, y, dy, ref, what: str) -> None:
    dx, grads = layer.backward(params, cache, np.array(dy))
    close(y, ref["y"], f"{what}: output")
    close(dx, ref["dx"], f"{what}: dE/dX")
    close(grads["scale"], ref["dscale"], f"{what}: dE/dscale")
    close(grads["shift"], ref["dshift"], f"{what}: dE/dshift")


@pytest.mark.parametrize("name", ["bn1d", "bn2d"])
def test_batchnorm_matches_torch_over_training_steps_and_evaluation(name):
    cfg, ref = INPUTS[name], TORCH_REFERENCE[name]
    bn = BatchNorm(cfg["features"], momentum=cfg["momentum"], eps=cfg["eps"], dtype="float64")
    params = affine(cfg)
    state = bn.init_state()
    assert len(cfg["steps"]) == len(ref["steps"]) >= 2
    for k, (step, want) in enumerate(zip(cfg["steps"], ref["steps"])):
        y, cache, state = bn.forward(params, np.array(step["x"]), state=state, training=True)
        check_step(bn, params, cache, y, step["dy"], want, f"{name} training step {k}")
        close(state["mean"], want["mean"], f"{name} step {k}: running mean")
        close(state["var"], want["var"], f"{name} step {k}: running variance (unbiased)")
    y, cache, same = bn.forward(params, np.array(cfg["eval"]["x"]), state=state, training=False)
    check_step(bn, params, cache, y, cfg["eval"]["dy"], ref["eval"], f"{name} evaluation")
    assert same is state  # evaluation hands the state back as it is
    close(same["mean"], ref["eval"]["mean"], f"{name} evaluation: running mean unchanged")
    close(same["var"], ref["eval"]["var"], f"{name} evaluation: running variance unchanged")


@pytest.mark.parametrize("k", range(len(INPUTS["layernorm"])))
def test_layernorm_matches_torch(k):
    cfg, want = INPUTS["layernorm"][k], TORCH_REFERENCE["layernorm"][k]
    ln = LayerNorm(cfg["features"], eps=cfg["eps"], dtype="float64")
    params = affine(cfg)
    y, cache = ln.forward(params, np.array(cfg["x"]))
    check_step(ln, params, cache, y, cfg["dy"], want, f"LayerNorm case {k}")


def test_the_reference_inputs_exercise_what_they_claim():
    """The references would prove less if the inputs drifted: a 2-row batch (unbiased variance
    twice the biased one), a 4-D batch of one image, non-default momentum and eps, and params
    away from ones and zeros."""
    bn1, bn2 = INPUTS["bn1d"], INPUTS["bn2d"]
    assert [np.shape(s["x"])[0] for s in bn1["steps"]] == [4, 2, 5]
    assert np.ndim(bn2["steps"][0]["x"]) == 4 and np.shape(bn2["steps"][1]["x"])[0] == 1
    assert (bn2["momentum"], bn2["eps"]) != (0.1, 1e-5) and INPUTS["layernorm"][1]["eps"] != 1e-5
    assert np.ndim(INPUTS["layernorm"][1]["x"]) == 3
    for cfg in (bn1, bn2, *INPUTS["layernorm"]):
        assert not np.allclose(cfg["weight"], 1.0) and not np.allclose(cfg["bias"], 0.0)
    assert TORCH_REFERENCE["torch"].startswith("2.")


def run_generator(python: str) -> dict:
    done = subprocess.run([python, "-c", GENERATOR], input=json.dumps(INPUTS), capture_output=True,
                          text=True, check=True, timeout=300)
    return json.loads(done.stdout)


@pytest.mark.skipif(not os.environ.get("PURENN_TORCH_PYTHON"),
                    reason="set PURENN_TORCH_PYTHON to a Python with torch to re-derive the reference")
def test_torch_reference_is_what_the_generator_gives():
    fresh = run_generator(os.environ["PURENN_TORCH_PYTHON"])
    assert fresh.keys() == TORCH_REFERENCE.keys()
    for a, b in zip(tree_leaves(_numbers(fresh)), tree_leaves(_numbers(TORCH_REFERENCE)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


def _numbers(ref: dict) -> dict:
    return {k: v for k, v in ref.items() if k != "torch"}


# ---------------------------------------------------------------- BatchNorm's behaviour


def bn_and_params(features: int = 3, **fields):
    bn = BatchNorm(features, **fields)
    rng = RNG(7)
    params = {"scale": (1.0 + rng.standard_normal(features)).astype(bn.dtype),
              "shift": rng.standard_normal(features).astype(bn.dtype)}
    return bn, params


X = RNG(0).standard_normal((6, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]


@pytest.mark.parametrize("kwargs, missing", [
    ({}, "state and training"),
    ({"training": True}, "state"),
    ({"training": False}, "state"),
    ({"state": "STATE"}, "training"),
    ({"state": "STATE", "training": None}, "training"),
])
def test_batchnorm_refuses_a_call_without_state_or_mode(kwargs, missing):
    bn, params = bn_and_params()
    kwargs = {k: bn.init_state() if v == "STATE" else v for k, v in kwargs.items()}
    with pytest.raises(ArgumentError, match=rf"BatchNorm.* carries state .* called without {missing}: "
                                            r".*state=state, training=True.*init_state\(\)"):
        bn.forward(params, X, **kwargs)


def test_batchnorm_training_must_be_a_bool():
    bn, params = bn_and_params()
    with pytest.raises(ArgumentTypeError, match="`training` must be True or False, got 'yes'"):
        bn.forward(params, X, state=bn.init_state(), training="yes")


def test_batchnorm_called_with_state_none_raises_argument_error():
    bn, params = bn_and_params()
    with pytest.raises(ArgumentError, match="without state"):
        bn.forward(params, X, state=None, training=True)


def test_init_state_is_zero_mean_unit_variance_read_only_in_the_layers_dtype():
    for dtype in ("float32", "float64"):
        bn = BatchNorm(4, dtype=dtype)
        state = bn.init_state()
        assert set(state) == {"mean", "var"}
        np.testing.assert_array_equal(state["mean"], np.zeros(4))
        np.testing.assert_array_equal(state["var"], np.ones(4))  # ones, as torch: not zeros
        assert all(a.dtype == dtype and not a.flags.writeable for a in state.values())
        assert bn.state_shapes() == {"mean": ((4,), dtype), "var": ((4,), dtype)}
        assert bn.param_shapes() == {"scale": ((4,), dtype), "shift": ((4,), dtype)}
        params = bn.init(RNG(0))
        np.testing.assert_array_equal(params["scale"], np.ones(4))
        np.testing.assert_array_equal(params["shift"], np.zeros(4))


def test_a_training_step_returns_a_new_read_only_state_and_leaves_the_old_one_valid():
    bn, params = bn_and_params(dtype="float64")
    old = bn.init_state()
    kept = tree_map(np.copy, old)
    y1, _, new = bn.forward(params, X, state=old, training=True)
    assert new is not old and all(not a.flags.writeable for a in new.values())
    with pytest.raises(ValueError, match="read-only"):
        new["mean"][0] = 1.0
    for key in ("mean", "var"):
        assert not np.shares_memory(new[key], old[key])
        np.testing.assert_array_equal(old[key], kept[key])  # untouched
        assert not np.allclose(new[key], kept[key])  # and the step did move it
    # the old state still works, and gives exactly what it gave the first time
    y2, _, again = bn.forward(params, X, state=old, training=True)
    np.testing.assert_array_equal(y2, y1)
    for key in ("mean", "var"):
        np.testing.assert_array_equal(again[key], new[key])
    # both states are usable in evaluation mode, and they differ
    eval_old = bn.forward(params, X, state=old, training=False)[0]
    eval_new = bn.forward(params, X, state=new, training=False)[0]
    assert not np.allclose(eval_old, eval_new)


def test_running_statistics_follow_the_documented_update():
    """mean <- (1 - m) mean + m mean_B, var <- (1 - m) var + m var_B n / (n - 1), over all but
    the last axis; m = 0 keeps the state, m = 1 replaces it by the batch's."""
    x = RNG(1).standard_normal((2, 3, 2, 4)) * 2 + 1
    flat = x.reshape(-1, 4)
    mean_b, var_unbiased = flat.mean(axis=0), flat.var(axis=0, ddof=1)
    start = {"mean": np.full(4, 0.5), "var": np.full(4, 2.0)}
    for m in (0.0, 0.1, 0.35, 1.0):
        bn = BatchNorm(4, momentum=m, dtype="float64")
        _, _, state = bn.forward(bn.init(RNG(0)), x, state=start, training=True)
        np.testing.assert_allclose(state["mean"], (1 - m) * 0.5 + m * mean_b, rtol=1e-13)
        np.testing.assert_allclose(state["var"], (1 - m) * 2.0 + m * var_unbiased, rtol=1e-13)


def test_training_output_uses_the_batch_statistics_with_the_biased_variance():
    bn, params = bn_and_params(eps=1e-3, dtype="float64")
    y, _, _ = bn.forward(params, X, state=bn.init_state(), training=True)
    want = (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + 1e-3) * params["scale"] + params["shift"]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_evaluation_uses_the_running_statistics_so_each_sample_is_on_its_own():
    bn, params = bn_and_params(dtype="float64")
    state = {"mean": np.array([0.3, -1.0, 2.0]), "var": np.array([0.5, 4.0, 1.5])}
    y, _, same = bn.forward(params, X, state=state, training=False)
    want = (X - state["mean"]) / np.sqrt(state["var"] + 1e-5) * params["scale"] + params["shift"]
    np.testing.assert_allclose(y, want, rtol=1e-13)
    assert same is state
    for i in range(len(X)):  # alone, or beside other samples: the same output
        alone = bn.forward(params, X[i : i + 1], state=state, training=False)[0]
        np.testing.assert_array_equal(alone[0], y[i])
        other = np.concatenate([X[i : i + 1], 10 * X[::-1]])
        np.testing.assert_array_equal(bn.forward(params, other, state=state, training=False)[0][0], y[i])
    # while in training the other samples change each output
    mixed = bn.forward(params, np.concatenate([X[:1], 10 * X[::-1]]), state=state, training=True)[0]
    assert not np.allclose(mixed[0], y[0])


@pytest.mark.parametrize("shape", [(1, 3), (1, 1, 1, 3), (3,)])
def test_training_with_one_value_per_feature_is_a_shape_error(shape):
    bn, params = bn_and_params()
    x = np.ones(shape)
    with pytest.raises(ShapeError, match=r"BatchNorm.*training needs more than one value per feature.*"
                                         rf"got input of shape {re_shape(shape)}"):
        bn.forward(params, x, state=bn.init_state(), training=True)
    y, _, _ = bn.forward(params, x, state=bn.init_state(), training=False)  # evaluation can
    assert y.shape == shape


def re_shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_one_image_with_two_pixels_is_enough_to_train():
    bn, params = bn_and_params()
    x = RNG(0).standard_normal((1, 2, 1, 3))
    y, _, state = bn.forward(params, x, state=bn.init_state(), training=True)
    assert y.shape == (1, 2, 1, 3) and np.isfinite(y).all() and np.isfinite(state["var"]).all()


def test_a_batch_of_one_inside_a_sequential_says_which_layer():
    model = Sequential([Dense(2, 3), BatchNorm(3)])
    with pytest.raises(ShapeError, match=r"^layer 1 of Sequential: BatchNorm.*more than one value"):
        model.forward(model.init(RNG(0)), np.ones((1, 2)), state=model.init_state(), training=True)


@pytest.mark.parametrize("layer", [BatchNorm(3), LayerNorm(3)], ids=["BatchNorm", "LayerNorm"])
def test_normalisation_output_shape_and_feature_mismatch(layer):
    assert layer.output_shape((5, 3)) == (5, 3)
    assert layer.output_shape((2, 4, 4, 3)) == (2, 4, 4, 3)
    for bad in [(5, 4), (2, 3, 3, 1), ()]:
        expected = rf"expected input of shape \(batch, \.\.\., 3\), got {re_shape(bad)}"
        with pytest.raises(ShapeError, match=expected):
            layer.output_shape(bad)
    params = layer.init(RNG(0))
    mode = {"state": layer.init_state(), "training": False} if layer.stateful else {}
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, \.\.\., 3\), got \(5, 4\)"):
        layer.forward(params, np.zeros((5, 4)), **mode)


def test_batchnorm_float32_layer_keeps_float32_and_float64_input_is_converted():
    bn = BatchNorm(3)
    params = bn.init(RNG(0))
    y, cache, state = bn.forward(params, X, state=bn.init_state(), training=True)
    dx, grads = bn.backward(params, cache, np.ones_like(y))
    assert {y.dtype, dx.dtype, *(g.dtype for g in grads.values()), *(s.dtype for s in state.values())} \
        == {np.dtype(np.float32)}


@pytest.mark.parametrize("make, match", [
    (lambda: BatchNorm(3, momentum=1.5), "momentum"),
    (lambda: BatchNorm(3, momentum=-0.1), "momentum"),
    (lambda: BatchNorm(3, eps=0.0), "eps"),
    (lambda: BatchNorm(0), "features"),
    (lambda: BatchNorm(3, dtype="float16"), "dtype"),
    (lambda: LayerNorm(3, eps=-1e-5), "eps"),
    (lambda: LayerNorm(-2), "features"),
])
def test_normalisation_fields_are_validated(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


# ---------------------------------------------------------------- LayerNorm's behaviour


def test_layernorm_has_no_state_and_normalises_each_sample_on_its_own():
    ln = LayerNorm(3, dtype="float64")
    assert not ln.stateful and ln.init_state() == {} and ln.state_shapes() == {}
    params = {"scale": np.array([1.5, -0.5, 2.0]), "shift": np.array([0.1, 0.0, -0.2])}
    y, _ = ln.forward(params, X)
    want = (X - X.mean(axis=1, keepdims=True)) / np.sqrt(X.var(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, want * params["scale"] + params["shift"], rtol=1e-12)
    for i in range(len(X)):
        np.testing.assert_array_equal(ln.forward(params, X[i : i + 1])[0][0], y[i])
    # the same through apply_layer in either mode; the state passes through
    for training in (True, False):
        y2, _, state = pn.apply_layer(ln, params, X, state={}, training=training)
        np.testing.assert_array_equal(y2, y)
        assert state == {}


if __name__ == "__main__":  # regenerate TORCH_REFERENCE: python test_normalization.py PYTHON_WITH_TORCH
    print("TORCH_REFERENCE = " + pprint.pformat(run_generator(sys.argv[1]), width=92, compact=True,
                                                sort_dicts=False).replace("\n", "\n" + " " * 18))
