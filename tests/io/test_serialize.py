"""Records as plain data (purenn.io.serialize): to_data/from_data round trips through JSON,
the registry of purenn's public records, user classes given as ``custom=``, and the errors for
data that cannot be rebuilt. Checkpoint files built on it are tested in test_checkpoints.py."""

from __future__ import annotations

import importlib
import json

import attrs
import numpy as np
import pytest

from purenn.io.serialize import _SOURCES, SerializeError, from_data, record_registry, to_data
from purenn.layers import Layer, Sequential
from purenn.optim import Adam, StepDecay

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
    for module_name, base_module, base_name in _SOURCES:
        module = importlib.import_module(module_name)
        base = getattr(importlib.import_module(base_module), base_name)
        assert base_name not in registry
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
                assert registry[name] is obj


def test_every_public_record_round_trips_with_defaults():
    # each registered class that can be built from its defaults alone must round-trip
    for cls in record_registry().values():
        try:
            record = cls()
        except TypeError:
            continue
        assert from_data(json.loads(json.dumps(to_data(record)))) == record


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
