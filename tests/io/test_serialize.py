"""Records as plain data (purenn.io.serialize): to_data/from_data round trips through JSON,
the registry of purenn's public records, user classes given as ``custom=``, and the errors for
data that cannot be rebuilt. Checkpoint files built on it are tested in test_checkpoints.py."""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.io.serialize import (
    MAX_DEPTH, REGISTERED, SerializeError, from_data, record_registry, to_data, tree_from_data,
    tree_to_data,
)
from purenn.layers import Layer, Sequential
from purenn.optim import Adam, FromTransformation, StepDecay

from _models import Scale, mixed_model as _model


def test_record_json_round_trip():
    model = _model()
    data = json.loads(json.dumps(to_data(model), allow_nan=False))
    assert data["type"] == "Sequential"
    assert data["fields"]["layers"][0] == {"type": "Reshape", "fields": {"shape": [2, 6]}}
    rebuilt = from_data(data)
    assert rebuilt == model
    assert isinstance(rebuilt.layers[0].shape, tuple)


def test_special_values_round_trip():
    # built-in records refuse non-finite hyperparameters; a user's record may hold them
    model = Sequential([Scale(3, float("inf")), Scale(3, -float("inf")), Scale(3, 0.5, ("a", "b"))])
    data = json.loads(json.dumps(to_data(model), allow_nan=False))
    assert from_data(data, custom=[Scale]) == model
    nan_model = Scale(2, float("nan"))
    assert np.isnan(from_data(json.loads(json.dumps(to_data(nan_model))), custom=[Scale]).factor)


def test_registry_has_every_public_record():
    registry = record_registry()
    for module, base in REGISTERED:
        assert base.__name__ not in registry
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
                assert registry[name] is obj


def _record_examples() -> dict[str, list[Any]]:
    """Every registered record class by name, built with valid arguments (non-defaults included)."""
    dense = pn.Dense(4, 3, initializer="he", use_bias=False, dtype="float64")
    adam = pn.Adam(pn.ExponentialDecay(1e-3, 0.5, decay_steps=10))
    return {
        "Dense": [pn.Dense(2, 3), dense],
        "Tanh": [pn.Tanh()], "Sigmoid": [pn.Sigmoid()], "ReLU": [pn.ReLU()],
        "LeakyReLU": [pn.LeakyReLU(0.3)], "GELU": [pn.GELU()], "Softmax": [pn.Softmax(axis=1)],
        "Flatten": [pn.Flatten()], "Reshape": [pn.Reshape((2, 3, 1))],
        "Sequential": [pn.Sequential([dense, pn.Tanh(), pn.Sequential([pn.Dense(3, 1)])])],
        "Conv2D": [pn.Conv2D(3, 8, (3, 5), stride=(1, 2), padding="same", use_bias=False,
                             initializer="glorot", dtype="float64"), pn.Conv2D(1, 2, 3, padding=(1, 2))],
        "MaxPool2D": [pn.MaxPool2D((2, 3), stride=1)], "AvgPool2D": [pn.AvgPool2D(2)],
        "Dropout": [pn.Dropout(0.25)],
        "BatchNorm": [pn.BatchNorm(8), pn.BatchNorm(3, momentum=0.01, eps=1e-3, dtype="float64")],
        "LayerNorm": [pn.LayerNorm(5, eps=1e-6)], "Identity": [pn.Identity()],
        "Residual": [pn.Residual(pn.Sequential([dense, pn.BatchNorm(3)]), projection=pn.Dense(4, 3)),
                     pn.Residual(pn.Tanh())],
        "Parallel": [pn.Parallel([pn.Identity(), dense]), pn.Parallel([pn.Tanh(), pn.ReLU()], merge="sum")],
        "FromTransformation": [FromTransformation(pn.chain(pn.Trace(0.9), pn.ScaleByLearningRate(0.1)))],
        "SGD": [pn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4), pn.SGD(pn.Constant(0.5))],
        "Adam": [pn.Adam(), adam],
        "AdamW": [pn.AdamW(lr=pn.CosineDecay(1e-3, 100, final_lr=1e-5), weight_decay=0.05)],
        "MaskedAdamW": [pn.AdamW(mask=pn.decay_mask), pn.MaskedAdamW(0.1, mask=({"w": True, "b": False}, {}))],
        "RMSProp": [pn.RMSProp(lr=0.01, alpha=0.9, momentum=0.5, centered=True)],
        "Adagrad": [pn.Adagrad(lr=0.1, initial_accumulator_value=0.1)],
        "Chain": [pn.chain(pn.ClipByGlobalNorm(1.0), pn.ScaleByAdam(), pn.ScaleByLearningRate(1e-3))],
        "ScaleByLearningRate": [pn.ScaleByLearningRate(pn.StepDecay(0.1, 10))],
        "AddDecayedWeights": [pn.AddDecayedWeights(1e-4)],
        "Trace": [pn.Trace(0.8, nesterov=True)],
        "ScaleByAdam": [pn.ScaleByAdam(b1=0.8, b2=0.99, eps=1e-6)],
        "ScaleByRMS": [pn.ScaleByRMS(alpha=0.95, eps=1e-7)],
        "ScaleByStddev": [pn.ScaleByStddev(alpha=0.95)],
        "ScaleByAdagrad": [pn.ScaleByAdagrad(eps=1e-8, initial_accumulator_value=0.2)],
        "ClipByGlobalNorm": [pn.ClipByGlobalNorm(5.0)],
        "SetToZero": [pn.SetToZero()],
        "Masked": [pn.masked(pn.AddDecayedWeights(1e-4), "decay_mask"),
                   pn.masked(pn.Adam(1e-3), ({"w": True, "b": False}, True, [False]))],
        "Partition": [pn.partition({"train": pn.Adam(1e-3), "frozen": pn.SetToZero()},
                                   ({"w": "train", "b": "frozen"}, "train"))],
        "MultiSteps": [pn.MultiSteps(pn.chain(pn.ClipByGlobalNorm(1.0), pn.SGD(0.1)), 4)],
        "EMA": [pn.EMA(0.999), pn.EMA(0.9, warmup=True)],
        "Constant": [pn.Constant(0.01)],
        "StepDecay": [pn.StepDecay(0.1, step_size=30, gamma=0.5)],
        "ExponentialDecay": [pn.ExponentialDecay(0.1, 0.9), pn.ExponentialDecay(0.1, 1.0, decay_steps=7)],
        "CosineDecay": [pn.CosineDecay(0.1, total_steps=1000, final_lr=0.001)],
        "WarmUp": [pn.WarmUp(pn.CosineDecay(0.1, 1000), warmup_steps=50)],
    }


def test_every_registered_record_round_trips_through_json():
    examples = _record_examples()
    registry = record_registry()
    assert set(examples) == set(registry), "add an example of each new record class here"
    for name, records in examples.items():
        for record in records:
            assert type(record) is registry[name]
            data = json.loads(json.dumps(to_data(record), allow_nan=False))
            assert data["type"] == name
            assert from_data(data) == record, name


def test_weight_averages_are_registered_records():
    assert record_registry().get("EMA") is pn.EMA
    assert from_data(json.loads(json.dumps(to_data(pn.EMA(0.999, warmup=True))))) == pn.EMA(0.999, warmup=True)


@pytest.mark.parametrize("schedule", [
    pn.Constant(0.01), pn.ExponentialDecay(0.1, 0.9), pn.ExponentialDecay(0.5, 0.25, decay_steps=4),
], ids=repr)
def test_constant_and_exponential_decay_round_trip(schedule):
    data = json.loads(json.dumps(to_data(schedule), allow_nan=False))
    fields = {a.name: getattr(schedule, a.name) for a in attrs.fields(type(schedule))}
    assert data == {"type": type(schedule).__name__, "fields": fields}
    rebuilt = from_data(data)
    assert rebuilt == schedule and type(rebuilt) is type(schedule)
    assert [rebuilt(step) for step in (0, 1, 5, 1000)] == [schedule(step) for step in (0, 1, 5, 1000)]
    opt = pn.Adam(lr=schedule)  # and inside an optimizer, as a run record stores it
    assert from_data(json.loads(json.dumps(to_data(opt)))) == opt


def test_nesting_is_bounded_both_ways():
    data: dict[str, Any] = {"type": "Dense", "fields": {"in_features": 2, "out_features": 2}}
    for _ in range(300):
        data = {"type": "Sequential", "fields": {"layers": [data]}}
    with pytest.raises(SerializeError, match=f"nested more than {MAX_DEPTH} levels"):
        from_data(data)
    deep: Any = 1
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(SerializeError, match="nested more than"):
        from_data({"type": "Reshape", "fields": {"shape": deep}})
    model: Any = pn.Dense(2, 2)
    for _ in range(MAX_DEPTH):
        model = pn.Sequential([model])
    with pytest.raises(SerializeError, match="nested more than"):
        to_data(model)
    params: Any = np.zeros(1)
    for _ in range(MAX_DEPTH):
        params = (params,)
    with pytest.raises(SerializeError, match="nested more than"):
        tree_to_data(params)
    structure, _ = tree_to_data((np.zeros(1),))
    for _ in range(MAX_DEPTH):
        structure = {"tuple": [structure]}
    with pytest.raises(SerializeError, match="nested more than"):
        tree_from_data(structure, [np.zeros(1)])


def test_hostile_values_give_serialize_errors():
    for bad in [
        {"type": "Dense", "fields": {"in_features": 10**400, "out_features": float("inf")}},
        {"type": ["Dense"], "fields": {}},
        {"float": ["nan"]},
        {"type": "Sequential", "fields": {"layers": "abc"}},
        {"type": "Sequential", "fields": {"layers": 5}},
        {"type": "Reshape", "fields": {"shape": [1.5, None]}},
        {"type": "Dropout", "fields": {"rate": {"float": "nan"}}},
    ]:
        with pytest.raises(SerializeError):
            from_data(bad)


def test_optimizer_with_schedule_round_trips():
    opt = Adam(lr=StepDecay(0.01, step_size=100, gamma=0.5))
    assert from_data(json.loads(json.dumps(to_data(opt)))) == opt


def test_custom_name_clashing_with_builtin_is_refused():
    @attrs.frozen
    class Dense(Layer):  # noqa: F811 - deliberately shadows the built-in's name
        n: int = 1

    with pytest.raises(SerializeError, match="same name as the built-in Dense"):
        to_data(Sequential([Dense()]))
    with pytest.raises(SerializeError, match="already the built-in"):
        record_registry(custom=[Dense])
    data = to_data(Sequential([Dense()]), custom={"MyDense": Dense})
    assert data["fields"]["layers"][0]["type"] == "MyDense"
    assert from_data(data, custom={"MyDense": Dense}) == Sequential([Dense()])


def test_bad_data_errors():
    with pytest.raises(SerializeError, match="Dense has no field.*'width'"):
        from_data({"type": "Dense", "fields": {"width": 3}})
    with pytest.raises(SerializeError, match="could not rebuild Dense"):
        from_data({"type": "Dense", "fields": {"in_features": -1, "out_features": 2}})
    with pytest.raises(SerializeError, match="expected .*'type'"):
        from_data({"kind": "Dense"})
    with pytest.raises(SerializeError, match="cannot be saved"):
        to_data(Scale(2, tags=(object(),)))
    with pytest.raises(SerializeError, match="unknown type 'Mystery'") as info:
        from_data({"type": "Mystery", "fields": {}})
    assert "custom=" not in info.value.message  # Python advice goes to the hint alone
    assert info.value.hint == "if it is your own class, pass it when loading, e.g. custom=[Mystery]"
