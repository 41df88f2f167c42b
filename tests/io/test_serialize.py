"""Records as plain data (purenn.io.serialize): to_data/from_data round trips through JSON of every
layer, optimizer, transformation, schedule and average of the registries (tests/registry_*.py),
the registry of purenn's public records, user classes given as ``custom=``, and the errors for
data that cannot be rebuilt. Checkpoint files built on it are tested in test_checkpoints.py."""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.io.serialize import (
    MAX_DEPTH, REGISTERED, SerializeError, from_data, record_registry, to_data, tree_from_data,
    tree_to_data,
)
from purenn.layers import Layer, Sequential
from purenn.optim import Adam, StepDecay, resolve_masks

from _models import Scale, mixed_model as _model
from registry_layers import LAYERS
from registry_optim import AVERAGES, OPTIMIZERS, PARAMS, SCHEDULES, TRANSFORMATIONS


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


OPTIM_REGISTRIES = (TRANSFORMATIONS, OPTIMIZERS, SCHEDULES, AVERAGES)


def _round_trip(record: Any) -> Any:
    data = json.loads(json.dumps(to_data(record), allow_nan=False))
    assert data["type"] == type(record).__name__
    return from_data(data)


def test_every_registered_record_has_examples_in_a_registry():
    """The records purenn can rebuild are exactly the classes the registries hold (a new class
    joins the round trips below by its registry entry)."""
    covered = set(LAYERS).union(*OPTIM_REGISTRIES)
    registry = set(record_registry().values())
    assert registry == covered, (f"records without a registry entry: {sorted(c.__name__ for c in registry - covered)}; "
                                 f"registered classes that are not records: {sorted(c.__name__ for c in covered - registry)}")


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_every_layer_round_trips_through_json(cls, data):
    layer, _ = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assert _round_trip(layer) == layer


@pytest.mark.parametrize("record", [
    pytest.param(record, id=f"{cls.__name__}-{i}")
    for registry in OPTIM_REGISTRIES for cls, entry in registry.items() for i, record in enumerate(entry.examples)])
def test_every_optimizer_schedule_and_average_round_trips_through_json(record):
    """Masks and labels given as functions are resolved first: the record one writes down."""
    resolved = resolve_masks(record, PARAMS)
    back = _round_trip(resolved)
    assert back == resolved and type(back) is type(record)


def test_masks_and_labels_given_as_trees_round_trip():
    """Trees of any container (dicts, tuples, lists) and prefixes, as a user writes them."""
    for record in (pn.masked(pn.Adam(1e-3), ({"w": True, "b": False}, True, [False])),
                   pn.partition({"train": pn.Adam(1e-3), "frozen": pn.SetToZero()},
                                ({"w": "train", "b": "frozen"}, "train")),
                   pn.MaskedAdamW(0.1, mask=({"w": True, "b": False}, {}))):
        assert _round_trip(record) == record


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
