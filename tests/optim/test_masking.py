"""Parameter subsets (purenn.optim.masking) against their definitions: ``masked`` and
``partition`` are their inner transformations run on the subsets alone (optax's ``masked`` and
``multi_transform``), ``SetToZero`` keeps params bit for bit, ``decay_mask`` picks the weights,
``AdamW(mask=)``; masks resolved once at init; records that serialize once resolved."""

from __future__ import annotations

import copy
import inspect
import json
import pickle

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError, SerializeError
from purenn.io.serialize import from_data, to_data
from purenn.optim.accumulate import MultiSteps
from purenn.optim.base import Chain, FromTransformation, State, apply_updates, as_optimizer, chain
from purenn.optim.masking import (
    Masked, Partition, SetToZero, decay_mask, masked, partition, resolve_masks,
)
from purenn.optim.optimizers import SGD, Adam, AdamW, MaskedAdamW
from purenn.optim.transforms import (
    AddDecayedWeights, ClipByGlobalNorm, ScaleByAdam, ScaleByLearningRate, Trace,
)
from purenn.tree import freeze, tree_leaves, tree_map, tree_paths

PARAMS = freeze({"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.25, -0.75])})
GRADS = [{"w": np.array([[0.1, 0.2], [-0.3, 0.4]]), "b": np.array([1.0, -1.0])},
         {"w": np.array([[-0.5, 0.0], [0.2, 0.1]]), "b": np.array([0.3, 0.6])},
         {"w": np.array([[0.7, -0.1], [0.0, 0.25]]), "b": np.array([-0.2, 0.05])}]
W_ONLY = {"w": True, "b": False}


def _run(opt, params, grads):
    state = opt.init(params)
    for g in grads:
        params, state = opt.update(g, state, params)
    return params, state


def _same(a, b):
    for x, y in zip(tree_leaves(a), tree_leaves(b), strict=True):
        assert x.tobytes() == y.tobytes() and x.dtype == y.dtype and x.shape == y.shape


# --- decay_mask ---------------------------------------------------------------------------------


def test_decay_mask_selects_the_weights_and_skips_biases_and_normalisation():
    model = pn.Sequential([pn.Conv2D(1, 2, 3), pn.Flatten(), pn.Dense(8, 3), pn.BatchNorm(3),
                           pn.LayerNorm(3), pn.Residual(pn.Dense(3, 3, use_bias=False)), pn.Tanh()])
    params = model.init(np.random.default_rng(0))
    mask = decay_mask(params)
    chosen = dict(zip(tree_paths(params), tree_leaves(mask), strict=True))
    assert chosen == {path: path.endswith("['w']") for path in tree_paths(params)}
    assert sum(chosen.values()) == 3 and len(chosen) == 9
    assert all(type(m) is bool for m in tree_leaves(mask))


# --- masked -----------------------------------------------------------------------------------


def test_masked_is_inner_on_the_selected_arrays_and_passes_the_others_through():
    t = masked(AddDecayedWeights(0.5), W_ONLY)
    u, state = t.update(GRADS[0], t.init(PARAMS), PARAMS)
    np.testing.assert_array_equal(u["w"], GRADS[0]["w"] + 0.5 * PARAMS["w"])
    assert u["b"] is GRADS[0]["b"]
    assert state.step == 1 and state.slots["inner"] == State(1)


def test_masked_adam_is_adam_run_on_its_subset_alone():
    opt = as_optimizer(masked(Adam(0.1), W_ONLY))
    alone, _ = _run(Adam(0.1), {"w": PARAMS["w"]}, [{"w": g["w"]} for g in GRADS])
    together, state = _run(opt, PARAMS, GRADS)
    _same(together["w"], alone["w"])
    b = PARAMS["b"]
    for g in GRADS:  # the gradients themselves are the unselected array's updates
        b = b + g["b"]
    np.testing.assert_array_equal(together["b"], b)
    adam_state = state.slots["inner"][0]
    assert adam_state.slots["mu"]["b"] == () and adam_state.slots["mu"]["w"].shape == (2, 2)


def test_a_transformation_inside_a_mask_sees_only_its_subset():
    """optax's semantics: a global norm taken inside a mask is the norm of the subset."""
    clip = masked(ClipByGlobalNorm(1.0), {"w": False, "b": True})
    grads = {"w": np.array([[30.0, 40.0], [0.0, 0.0]]), "b": np.array([3.0, 4.0])}
    u, _ = clip.update(grads, clip.init(PARAMS), PARAMS)
    np.testing.assert_allclose(u["b"], [0.6, 0.8], rtol=1e-15)
    assert u["w"] is grads["w"]


def test_prefix_masks_stand_for_whole_subtrees():
    params = freeze((dict(PARAMS), {}, {"w": np.ones(3)}))
    grads = ({k: np.ones_like(v) for k, v in PARAMS.items()}, {}, {"w": np.ones(3)})
    for mask, scaled in [((True, {}, False), [1, 1, 0]), (True, [1, 1, 1]), (False, [0, 0, 0]),
                         (({"w": False, "b": True}, {}, True), [0, 1, 1])]:
        t = masked(ScaleByLearningRate(2.0), mask)
        u, _ = t.update(grads, t.init(params), params)
        got = [float(leaf.flat[0]) for leaf in tree_leaves(u)]
        assert got == [-2.0 if s else 1.0 for s in scaled], mask


def test_a_mask_function_is_called_once_at_init_and_its_tree_kept_in_the_state():
    calls = []

    def weights(params):
        calls.append(1)
        return W_ONLY

    t = masked(Trace(0.5), weights)
    state = t.init(PARAMS)
    for g in GRADS:
        _, state = t.update(g, state, PARAMS)
    assert calls == [1]
    mask = state.slots["mask"]
    assert {k: (v.shape, v.dtype, bool(v), v.flags.writeable) for k, v in mask.items()} == {
        "w": ((), np.bool_, True, False), "b": ((), np.bool_, False, False)}


def test_a_mask_given_as_a_rule_function_is_kept_by_its_name():
    assert masked(Trace(), decay_mask).mask == "decay_mask" == masked(Trace(), "decay_mask").mask
    assert masked(Trace(), decay_mask) == masked(Trace(), "decay_mask")
    assert masked(Trace(), [True, np.True_]).mask == (True, True)  # lists as JSON gives them back


@pytest.mark.parametrize("make, error, message", [
    (lambda: masked(Trace(), {"w": 1, "b": True}), ArgumentTypeError,
     r"`mask` must be True, False or a tree of them shaped like the params .*; got 1 of type int at mask\['w'\]"),
    (lambda: masked(Trace(), "weights"), ArgumentError,
     r"`mask` 'weights' is not a mask rule; the rules are \('decay_mask',\)"),
    (lambda: masked(Trace(), None), ArgumentTypeError, r"`mask` must be True, False .* got None"),
    (lambda: masked(Trace(), {"w": True}).init(PARAMS), ArgumentError,
     (r"`mask` is a dict with keys \['w'\] where the params have a dict with keys \['b', 'w'\]; `mask` "
      r"must have the params' structure, or a prefix of it")),
    (lambda: masked(Trace(), {"w": (True,), "b": True}).init(PARAMS), ArgumentError,
     r"`mask`\['w'\] is a tuple of 1 where the params have an array of shape \(2, 2\)"),
    (lambda: masked(Trace(), lambda p: {"w": "yes", "b": True}).init(PARAMS), ArgumentTypeError,
     r"`mask \(as <lambda> gives it\)` must be True, False .*; got 'yes' of type str"),
    (lambda: masked("adam", True), ArgumentTypeError, r"`inner` must be a transformation \(e.g. ScaleByAdam\(\)\)"),
    (lambda: partition({}, "a"), ArgumentTypeError, r"`transforms` must be a non-empty dict \{label: transformation\}"),
    (lambda: partition({"a": Adam()}, {"w": "a", "b": "c"}).init(PARAMS), ArgumentError,
     r"`labels` names \['c'\], which `transforms` does not have; its labels are \['a'\]"),
    (lambda: partition({"$step": Adam()}, "$step"), ArgumentTypeError,
     r"`transforms`: labels must be non-empty strings that do not start with '\$', got '\$step'"),
    (lambda: partition({"a": Adam()}, {"w": "a", "b": 3}), ArgumentTypeError, r"got 3 of type int at labels\['b'\]"),
    (lambda: partition({"a": "adam"}, "a"), ArgumentTypeError, r"`transforms\['a'\]` must be a transformation"),
    (lambda: masked(Trace(), True).update(GRADS[0], State(0), PARAMS), ArgumentTypeError,
     r"Masked\(.*\)\.update needs the state made by its own init\(params\), got State with slots \[\]"),
    (lambda: masked(Trace(), True).update({"w": GRADS[0]["w"]}, masked(Trace(), True).init(PARAMS), PARAMS),
     ArgumentError, (r"the updates have a dict with keys \['w'\] at updates, where the params given to "
                     r"init had a dict with keys \['b', 'w'\]")),
])
def test_bad_masks_and_labels_are_refused_saying_where(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- partition ------------------------------------------------------------------------------------


def test_partition_is_each_group_run_alone():
    labels = {"w": "adam", "b": "momentum"}
    opt = as_optimizer(partition({"adam": Adam(0.1), "momentum": SGD(0.5, momentum=0.9)}, labels))
    together, state = _run(opt, PARAMS, GRADS)
    w, _ = _run(Adam(0.1), {"w": PARAMS["w"]}, [{"w": g["w"]} for g in GRADS])
    b, _ = _run(SGD(0.5, momentum=0.9), {"b": PARAMS["b"]}, [{"b": g["b"]} for g in GRADS])
    _same(together, {"w": w["w"], "b": b["b"]})
    assert state.step == 3 and list(state.slots) == ["adam", "momentum"]
    assert not opt.fresh_updates  # momentum's update is its trace


def test_partition_labels_from_a_function_are_resolved_at_init():
    opt = partition({"decay": AddDecayedWeights(0.5), "keep": AddDecayedWeights(0.0)},
                    lambda p: tree_map(lambda a: "decay" if a.ndim > 1 else "keep", p))
    u, _ = opt.update(GRADS[0], opt.init(PARAMS), PARAMS)
    np.testing.assert_array_equal(u["w"], GRADS[0]["w"] + 0.5 * PARAMS["w"])
    np.testing.assert_array_equal(u["b"], GRADS[0]["b"])


# --- freezing ---------------------------------------------------------------------------------------

ODD = np.array([-0.0, 0.0, 5e-324, -1e300, np.inf, np.nan])


@pytest.mark.parametrize("how", ["partition", "chain-last"])
def test_frozen_params_stay_bit_for_bit_what_they_were(how):
    """SetToZero's negative zeros leave every value as it is, -0.0 and NaN included (positive zeros
    would turn -0.0 into 0.0), also under a plateau's lr_scale."""
    params = freeze({"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": ODD})
    grads = [{"w": g["w"], "b": np.linspace(-1, 1, 6) * (i + 1)} for i, g in enumerate(GRADS)]
    if how == "partition":
        opt = as_optimizer(partition({"train": Adam(0.1), "frozen": SetToZero()}, {"w": "train", "b": "frozen"}))
    else:
        opt = as_optimizer(chain(Adam(0.1), masked(SetToZero(), {"w": False, "b": True})))
    p, state = params, opt.init(params)
    for scale in (1.0, 0.5, 1.0):
        for g in grads:
            p, state = opt.update(g, state, p, lr_scale=scale, donate=True)
    assert p["b"].tobytes() == ODD.tobytes()
    assert not np.array_equal(p["w"], params["w"])


def test_set_to_zero_updates_are_negative_zeros_of_the_params_dtype():
    params = freeze({"a": np.ones((2, 3), np.float32)})
    u, _ = SetToZero().update({"a": np.ones((2, 3), np.float32)}, SetToZero().init(params), params)
    assert u["a"].dtype == np.float32 and np.all(u["a"] == 0) and np.all(np.signbit(u["a"]))
    assert apply_updates(params, u)["a"].tobytes() == params["a"].tobytes()


# --- AdamW's mask -----------------------------------------------------------------------------------

ADAMW_REPR = "AdamW(lr=0.001, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.01)"
ADAMW_DATA = {"type": "AdamW", "fields": {"lr": 0.001, "b1": 0.9, "b2": 0.999, "eps": 1e-08,
                                          "weight_decay": 0.01}}


def test_adamw_without_a_mask_keeps_its_record():
    """Recorded before masks existed: AdamW's repr (which fit's settings compare on resume) and
    serialized record (run records, reproduce) must not change."""
    for opt in (AdamW(), AdamW(mask=None), attrs.evolve(AdamW(0.5), lr=0.001)):
        assert type(opt) is AdamW and repr(opt) == ADAMW_REPR
        assert json.loads(json.dumps(to_data(opt))) == ADAMW_DATA and from_data(ADAMW_DATA) == opt
        assert opt.transformation() == Chain((ScaleByAdam(), AddDecayedWeights(0.01), ScaleByLearningRate(0.001)))
    assert [a.name for a in attrs.fields(AdamW)] == ["lr", "b1", "b2", "eps", "weight_decay"]


def test_adamw_with_a_mask_is_adamw_with_its_decay_masked():
    opt = AdamW(0.1, mask=decay_mask)
    assert type(opt) is MaskedAdamW and isinstance(opt, AdamW) and opt.mask == "decay_mask"
    assert repr(opt) == "MaskedAdamW(lr=0.1, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.01, mask='decay_mask')"
    assert opt.transformation() == chain(ScaleByAdam(), Masked(AddDecayedWeights(0.01), "decay_mask"),
                                         ScaleByLearningRate(0.1))
    assert AdamW(0.1, weight_decay=0.0, mask=W_ONLY).transformation() == chain(ScaleByAdam(), ScaleByLearningRate(0.1))
    assert from_data(json.loads(json.dumps(to_data(opt)))) == opt
    assert attrs.evolve(opt, lr=0.2) == AdamW(0.2, mask="decay_mask")
    with pytest.raises(ArgumentTypeError, match=r"`mask` must be True, False .* got None"):
        MaskedAdamW(mask=None)


def test_adamw_records_pickle_and_copy_as_themselves():
    """Experiments send optimizers to worker processes by pickle (which rebuilds through __new__)."""
    for opt in (AdamW(0.1), AdamW(0.1, mask=decay_mask), MaskedAdamW(mask=W_ONLY)):
        for back in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
            assert type(back) is type(opt) and back == opt and repr(back) == repr(opt)


def test_adamw_signature_shows_its_fields_defaults():
    shown = {n: p.default for n, p in inspect.signature(AdamW).parameters.items() if n != "mask"}
    assert shown == {a.name: a.default for a in attrs.fields(AdamW)}


# --- resolving for records ----------------------------------------------------------------------


def test_resolve_masks_replaces_every_function_by_the_tree_it_gives():
    def weights(p):
        return W_ONLY

    inner = partition({"a": AdamW(0.1, mask=weights), "b": masked(SetToZero(), weights)},
                      lambda p: {"w": "a", "b": "b"})
    opt = FromTransformation(chain(MultiSteps(inner, 2), ClipByGlobalNorm(1.0)))
    with pytest.raises(SerializeError, match="a value of type function"):
        to_data(opt)
    resolved = resolve_masks(opt, PARAMS)
    assert "function" not in repr(resolved) and "lambda" not in repr(resolved)
    assert from_data(json.loads(json.dumps(to_data(resolved)))) == resolved
    part = resolved.transform.transformations[0].inner
    assert part.labels == {"w": "a", "b": "b"} and part.transforms["a"].mask == W_ONLY
    a, b = _run(opt, PARAMS, GRADS), _run(resolved, PARAMS, GRADS)
    _same(a[0], b[0])
    for record in (AdamW(mask=decay_mask), Adam(), masked(Trace(), W_ONLY), opt.transform.transformations[1]):
        assert resolve_masks(record, PARAMS) is record  # nothing to resolve: the record itself


def test_records_of_every_kind_round_trip():
    for record in (masked(Trace(0.5), {"w": True, "b": False}), masked(Adam(), "decay_mask"),
                   partition({"x": SGD(0.1), "y": SetToZero()}, ({"w": "x", "b": "y"}, "x")),
                   MultiSteps(Adam(0.1), 4), AdamW(mask=[True, {"a": False}])):
        assert from_data(json.loads(json.dumps(to_data(record)))) == record, record


def test_partition_of_optimizers_and_isinstance_checks():
    p = Partition({"a": Adam(0.1)}, "a")
    assert p.transforms["a"] == Adam(0.1)  # kept as given: its repr names the optimizer
    assert repr(p) == ("Partition(transforms={'a': Adam(lr=0.1, b1=0.9, b2=0.999, eps=1e-08, "
                       "weight_decay=0.0)}, labels='a')")
