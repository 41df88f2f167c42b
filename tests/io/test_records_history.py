"""A run record's history entries hold what fit's EpochLog now has (the training accuracy, the
metrics, the averaged params' digest), checked like the other fields."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.io.records import check_record, make_record

X = np.random.default_rng(0).standard_normal((40, 3))
Y = (X[:, 0] > 0).astype(int)
MODEL = pn.Sequential([pn.Dense(3, 2, dtype="float64")])


def _record(**change):
    _params, history = pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, loss="softmax_cross_entropy",
                             lr=0.1, epochs=2, average=pn.EMA(0.5), metrics={"m": lambda p, t: 0.25},
                             digest=lambda p, s: pn.params_digest(p))
    entries = [{**attrs.asdict(e), **change} for e in history.epochs]
    return make_record(config={}, seed=0, digest=history.epochs[-1].digest, history=entries)


def test_the_new_fields_are_recorded():
    record = _record()
    entry = record["history"][0]
    assert 0 <= entry["accuracy"] <= 1 and entry["metrics"] == {"m": 0.25} and len(entry["average_digest"]) == 64


@pytest.mark.parametrize("change, match", [
    ({"accuracy": 1.5}, r"history\[0\]\.accuracy"),
    ({"metrics": [0.25]}, r"history\[0\]\.metrics"),
    ({"metrics": {"m": "high"}}, r"history\[0\]\.metrics"),
    ({"average_digest": "abc"}, r"history\[0\]\.average_digest"),
])
def test_bad_values_are_refused_naming_the_field(change, match):
    with pytest.raises(pn.RecordError, match=match):
        _record(**change)
    assert check_record(_record()) is None
