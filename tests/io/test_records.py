"""Run records (purenn.io.records): params digests, environment, and record files."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import purenn
from purenn.layers import Dense, Sequential, Tanh
from purenn.io.records import (
    RECORD_FORMAT, REQUIRED_KEYS, RecordError, environment, make_record, params_digest,
    read_record, write_record,
)
from purenn.tree import tree_map


def _params(seed: int = 0):
    return Sequential([Dense(4, 3), Tanh(), Dense(3, 2, dtype="float64")]).init(np.random.default_rng(seed))


# ---------------------------------------------------------------- digest


def test_digest_is_stable_and_hex():
    d = params_digest(_params())
    assert d == params_digest(_params())  # same seed, freshly built arrays
    assert d == params_digest(tree_map(np.copy, _params()))
    assert re.fullmatch(r"[0-9a-f]{64}", d), d
    assert d != params_digest(_params(seed=1))


def test_digest_is_sha256_of_the_documented_byte_layout():
    # tag, then the structure as canonical JSON (keys sorted, tuple/list told apart, leaves as
    # little-endian dtype and shape), then each leaf's little-endian C-order bytes in that order
    w = [[0.5, -1.25, 3.0], [0.0, 2.5, -8.0]]
    params = ({"w": np.array(w, np.float32), "b": np.array([-0.0, 1.5], ">f8")}, {}, [np.int64(3)])
    structure = ('{"tuple":[{"dict":[["b",{"dtype":"<f8","shape":[2]}],'
                 '["w",{"dtype":"<f4","shape":[2,3]}]]},{"dict":[]},'
                 '{"list":[{"dtype":"<i8","shape":[]}]}]}')
    payload = (b"purenn.params_digest/1\0" + structure.encode() + struct.pack("<2d", -0.0, 1.5)
               + struct.pack("<6f", *w[0], *w[1]) + struct.pack("<q", 3))
    assert params_digest(params) == hashlib.sha256(payload).hexdigest()


def test_digest_ignores_layout_and_dict_order():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    f = np.asfortranarray(a)
    assert params_digest({"w": a, "b": a[0]}) == params_digest({"b": a[0], "w": f})
    big = a.astype(">f4")
    assert params_digest(a) == params_digest(big)


@settings(max_examples=50, deadline=None)
@given(a=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=3, max_side=4),
                    elements=st.floats(-1e3, 1e3, width=32)),
       data=st.data())
def test_digest_changes_with_any_element(a, data):
    params = ({"w": a, "b": np.zeros(2)}, {})
    base = params_digest(params)
    i = data.draw(st.integers(0, a.size - 1))
    flat = a.copy().reshape(-1)
    flat[i] = np.nextafter(flat[i], np.inf)  # the smallest possible change
    assert params_digest(({"w": flat.reshape(a.shape), "b": np.zeros(2)}, {})) != base


def test_digest_changes_with_dtype_shape_and_structure():
    a = np.zeros((2, 3), dtype=np.float32)
    base = params_digest({"w": a})
    others = [
        {"w": a.astype(np.float64)},
        {"w": a.view(np.int32)},  # same bytes, same shape, other dtype
        {"w": a.reshape(3, 2)},
        {"w": a.reshape(6)},
        {"v": a},
        [{"w": a}],
        ({"w": a},),
        {"w": a, "b": np.zeros(0, dtype=np.float32)},
    ]
    digests = {params_digest(o) for o in others}
    assert base not in digests and len(digests) == len(others)
    assert params_digest(np.float32(0.0)) != params_digest(np.float32(-0.0))


def test_digest_refuses_non_numeric():
    with pytest.raises(TypeError, match="numeric"):
        params_digest({"w": np.array(["a"])})


# ---------------------------------------------------------------- environment


def test_environment():
    env = environment()
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__
    assert env["purenn"] == purenn.__version__
    assert env["platform"]
    json.dumps(env)


# ---------------------------------------------------------------- record files


def _record(**extra):
    return make_record(
        config={"model": "mlp", "lr": 0.1, "epochs": 2}, seed=42, digest=params_digest(_params()),
        history=[{"epoch": 1, "loss": np.float32(0.5)}, {"epoch": 2, "loss": float("nan")}],
        metrics={"test_accuracy": np.float64(0.97), "confusion": np.eye(2, dtype=np.int64)},
        **extra,
    )


def test_write_read_round_trip(tmp_path):
    path = tmp_path / "run.json"
    record = _record(note="hello")
    write_record(path, record)
    text = path.read_text()
    assert text.endswith("}\n")
    assert list(json.loads(text)) == sorted(record)  # keys written sorted
    assert text.splitlines()[1].startswith('  "')  # indent 2
    back = read_record(path)
    assert back["format"] == RECORD_FORMAT and back["seed"] == 42 and back["note"] == "hello"
    assert back["digest"] == record["digest"]
    assert back["versions"] == environment()
    assert back["history"][0] == {"epoch": 1, "loss": 0.5}
    assert np.isnan(back["history"][1]["loss"])
    assert back["metrics"] == {"test_accuracy": 0.97, "confusion": [[1, 0], [0, 1]]}
    assert os.listdir(tmp_path) == ["run.json"]


def test_read_errors(tmp_path):
    with pytest.raises(RecordError, match=r"not found: .*absent\.json"):
        read_record(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(RecordError, match=r"bad\.json.*not valid JSON"):
        read_record(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(RecordError, match=r"bad\.json.*must be a JSON object"):
        read_record(bad)
    for key in REQUIRED_KEYS:
        record = _record()
        del record[key]
        bad.write_text(json.dumps(record, default=lambda v: v.tolist()))
        with pytest.raises(RecordError, match=rf"bad\.json.*lacks required key\(s\) \['{key}'\]"):
            read_record(bad)
    bad.write_text(json.dumps({**_record(), "format": "other/9"}, default=lambda v: v.tolist()))
    with pytest.raises(RecordError, match="has format 'other/9'"):
        read_record(bad)


@pytest.mark.parametrize("key, value, should", [
    ("seed", "42", "an integer"),
    ("seed", True, "an integer"),
    ("digest", "abc", "64 lowercase hex"),
    ("config", [1], "a JSON object"),
    ("history", {}, "a list"),
    ("metrics", 3, "a JSON object"),
])
def test_write_refuses_bad_fields(tmp_path, key, value, should):
    record = {**_record(), key: value}
    with pytest.raises(RecordError, match=rf"`{key}` must be {should}"):
        write_record(tmp_path / "r.json", record)
    assert not os.listdir(tmp_path)


def test_write_refuses_non_json(tmp_path):
    with pytest.raises(RecordError, match=r"r\.json.*not plain JSON"):
        write_record(tmp_path / "r.json", _record(extra=object()))
    assert not os.listdir(tmp_path)
