"""Run records (purenn.io.records): params digests, environment, and record files; a preset run's
record (purenn.recipes.records) for the record files, its ``config`` checked too."""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import re
import struct
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import purenn.io.records as records
from purenn.io.records import (
    RECORD_FORMAT, REQUIRED_KEYS, RecordError, check_agreement, check_record, check_schema,
    environment, make_record, params_digest, read_record, write_record,
)
from purenn.io.serialize import to_data
from purenn.layers import Conv2D, Dense, Sequential, Tanh
from purenn.optim import SGD
from purenn.recipes.records import (
    CONFIG, RESOLVED, RUN, check_run_record, config_schema, read_run_record, setting_copies,
    write_run_record,
)
from purenn.recipes.runs import RunConfig, run_record, train_preset
from purenn.tree import tree_map
from purenn.validation import optional, positive_number


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


_DTYPES = ["<f4", ">f4", "<f8", ">f8", "<f2", "<i4", ">i8", "|u1", "|i1", "|b1", "<c8", ">c16"]


@st.composite
def _trees_and_hashed_parts(draw, depth=0):
    """A params tree, built together with what the documented layout hashes for it: its outline
    (dict keys sorted, tuple and list told apart, leaves as little-endian dtype and shape) and
    each leaf's little-endian C-order bytes, in that order."""
    kind = draw(st.sampled_from(["leaf"] if depth >= 3 else ["leaf", "dict", "tuple", "list"]))
    if kind == "leaf":
        dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
        a = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
        if draw(st.booleans()) and a.ndim == 2:
            a = np.asfortranarray(a)
        little = a.astype(dtype.newbyteorder("<"))
        raw = little.tobytes(order="C") if little.flags.c_contiguous else np.ascontiguousarray(little).tobytes()
        return a, {"dtype": little.dtype.str, "shape": list(a.shape)}, [raw]
    if kind == "dict":
        keys = draw(st.lists(st.text(max_size=3), max_size=3, unique=True))
        children = {k: draw(_trees_and_hashed_parts(depth + 1)) for k in keys}
        tree = {k: children[k][0] for k in keys}  # insertion order as drawn
        ordered = sorted(keys)
        return (tree, {"dict": [[k, children[k][1]] for k in ordered]},
                [b for k in ordered for b in children[k][2]])
    items = draw(st.lists(_trees_and_hashed_parts(depth + 1), max_size=3))
    tree = [t for t, _, _ in items]
    return ((tuple(tree) if kind == "tuple" else tree), {kind: [o for _, o, _ in items]},
            [b for _, _, bs in items for b in bs])


@settings(max_examples=100, deadline=None)
@given(case=_trees_and_hashed_parts())
def test_digest_is_an_independent_sha256_of_every_leaf(case):
    tree, outline, leaf_bytes = case
    h = hashlib.sha256(b"purenn.params_digest/1\0")
    h.update(json.dumps(outline, sort_keys=True, separators=(",", ":")).encode())
    for raw in leaf_bytes:  # a digest that skipped, reordered or truncated one would differ
        h.update(raw)
    assert params_digest(tree) == h.hexdigest()


def test_digest_of_a_real_models_params_covers_every_leaf():
    params = Sequential([Conv2D(1, 2, 2), Tanh(), Dense(3, 2, dtype="float64")]).init(np.random.default_rng(0))
    outline = ('{"tuple":[{"dict":[["b",{"dtype":"<f4","shape":[2]}],["w",{"dtype":"<f4","shape":[2,2,1,2]}]]},'
               '{"dict":[]},'
               '{"dict":[["b",{"dtype":"<f8","shape":[2]}],["w",{"dtype":"<f8","shape":[3,2]}]]}]}')
    conv, _, dense = params
    payload = b"".join([
        struct.pack("<2f", *conv["b"].tolist()), struct.pack("<8f", *conv["w"].ravel().tolist()),
        struct.pack("<2d", *dense["b"].tolist()), struct.pack("<6d", *dense["w"].ravel().tolist()),
    ])
    expected = hashlib.sha256(b"purenn.params_digest/1\0" + outline.encode() + payload).hexdigest()
    assert params_digest(params) == expected


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


def test_environment_reports_independently_obtained_versions():
    env = environment()
    assert env["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert env["numpy"] == importlib.metadata.version("numpy")  # the installed distribution
    assert env["purenn"] == importlib.metadata.version("purenn")
    uname = os.uname()
    assert uname.sysname in env["platform"] and uname.release in env["platform"]
    assert uname.machine in env["platform"]
    assert json.loads(json.dumps(env)) == env


# ---------------------------------------------------------------- record files


_CONFIG = {
    "run": {"preset": "mlp", "seed": 42, "epochs": 2, "batch_size": None, "lr": None,
            "limit": 500, "dataset": "mnist"},
    "resolved": {"preset": "mlp", "dataset": "mnist", "seed": 42, "limit": 500, "epochs": 2,
                 "batch_size": 128, "lr": 0.002, "loss": "softmax_cross_entropy",
                 "optimizer": "adam", "shuffle": True},
    "model": to_data(Sequential([Dense(784, 10)])),
    "update": to_data(SGD(0.1)),
    "train_samples": 500,
}


def _record(**extra):
    return make_record(
        config=copy.deepcopy(_CONFIG), seed=42, digest=params_digest(_params()),
        history=[{"epoch": 1, "epochs": 2, "loss": np.float32(0.5)},
                 {"epoch": 2, "epochs": 2, "loss": 0.25, "val_loss": float("nan")}],
        metrics={"test_accuracy": np.float64(0.97), "confusion": np.eye(2, dtype=np.int64)},
        **extra,
    )


def test_write_read_round_trip(tmp_path):
    path = tmp_path / "run.json"
    record = _record(note="hello")
    write_run_record(path, record)
    text = path.read_text()
    assert text.endswith("}\n")
    assert list(json.loads(text)) == sorted(record)  # keys written sorted
    assert text.splitlines()[1].startswith('  "')  # indent 2
    back = read_run_record(path)
    assert back["format"] == RECORD_FORMAT and back["seed"] == 42 and back["note"] == "hello"
    assert back["digest"] == record["digest"]
    assert back["versions"] == environment()
    assert back["history"][0] == {"epoch": 1, "epochs": 2, "loss": 0.5}
    assert np.isnan(back["history"][1]["val_loss"])  # a test forward that overflowed: kept as it was
    assert back["metrics"] == {"test_accuracy": 0.97, "confusion": [[1, 0], [0, 1]]}
    assert os.listdir(tmp_path) == ["run.json"]


def test_read_errors(tmp_path):
    with pytest.raises(RecordError, match=r"not found: .*absent\.json"):
        read_run_record(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(RecordError, match=r"bad\.json.*not valid JSON"):
        read_run_record(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(RecordError, match=r"bad\.json.*must be a JSON object"):
        read_run_record(bad)
    for key in REQUIRED_KEYS:
        record = _record()
        del record[key]
        bad.write_text(json.dumps(record, default=lambda v: v.tolist()))
        with pytest.raises(RecordError, match=rf"bad\.json.*lacks required key\(s\) \['{key}'\]"):
            read_run_record(bad)
    bad.write_text(json.dumps({**_record(), "format": "other/9"}, default=lambda v: v.tolist()))
    with pytest.raises(RecordError, match="has format 'other/9'"):
        read_run_record(bad)


def _set(record, path, value):
    """A copy of ``record`` with the value at dotted ``path`` (``history.0.loss``) replaced."""
    record = copy.deepcopy(record)
    *parents, last = path.split(".")
    node = record
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return record


# (dotted path, a bad value, the message's "must be ...", how the value is shown)
BAD_FIELDS = [
    ("seed", "42", "a non-negative integer", "'42' of type str"),
    ("seed", True, "a non-negative integer", "True of type bool"),
    ("seed", -1, "a non-negative integer", "-1 of type int"),
    ("digest", "abc", r"64 lowercase hex characters \(params_digest\)", "'abc' of type str"),
    ("digest", None, r"64 lowercase hex characters \(params_digest\)", "None"),
    ("digest", "a" * 64 + "b", r"64 lowercase hex characters \(params_digest\)", "'aaaa.*' of type str"),
    ("digest", "a" * 64 + "\n", r"64 lowercase hex characters \(params_digest\)", "'aaaa.*' of type str"),
    ("digest", "a" * 64 + " ", r"64 lowercase hex characters \(params_digest\)", "'aaaa.*' of type str"),
    ("digest", "A" * 64, r"64 lowercase hex characters \(params_digest\)", "'AAAA.*' of type str"),
    ("digest", "a" * 63, r"64 lowercase hex characters \(params_digest\)", "'aaaa.*' of type str"),
    ("config", [1], "a JSON object", r"\[1\]"),
    ("history", {}, "a list", r"\{\}"),
    ("history.0", 3, "a JSON object", "3"),
    ("history.0.loss", "low", "a finite number >= 0", "'low' of type str"),
    ("history.0.loss", float("nan"), "a finite number >= 0", "nan of type float"),
    ("history.0.loss", float("inf"), "a finite number >= 0", "inf of type float"),
    ("history.0.loss", -0.5, "a finite number >= 0", "-0.5 of type float"),
    ("history.0.loss", 10**400, "a finite number >= 0", "1000.* of type int"),
    ("history.0.epoch", 0, "a positive integer", "0 of type int"),
    ("history.0.val_accuracy", 1.5, r"a real number in \[0, 1\] or None", "1.5 of type float"),
    ("history.0.val_accuracy", float("nan"), r"a real number in \[0, 1\] or None", "nan of type float"),
    ("history.0.val_loss", -1.0, "a number >= 0, inf or nan .* or None", "-1.0 of type float"),
    ("history.0.lr_scale", 2.0, r"a real number in \[0, 1\] or None", "2.0 of type float"),
    ("history.0.digest", "0" * 64 + "0", r"64 lowercase hex characters \(params_digest\) or None", "'0000.*' of type str"),
    ("metrics", 3, "a JSON object", "3"),
    ("metrics.test_accuracy", "97%", r"a real number in \[0, 1\]", "'97%' of type str"),
    ("metrics.test_accuracy", 1.0000001, r"a real number in \[0, 1\]", "1.0000001 of type float"),
    ("metrics.test_accuracy", -0.25, r"a real number in \[0, 1\]", "-0.25 of type float"),
    ("metrics.train_seconds", -1.0, "a finite number >= 0", "-1.0 of type float"),
    ("metrics.train_seconds", float("inf"), "a finite number >= 0", "inf of type float"),
    ("versions.numpy", 2, "a string or None", "2 of type int"),
    ("versions.blas_threads", "2", "a non-negative integer or None", "'2' of type str"),
    ("versions", "new", "a JSON object", "'new'"),
    ("config.train_samples", "500", "a non-negative integer", "'500' of type str"),
    ("config.train_samples", None, "a non-negative integer", "None"),
    ("config.train_samples", [500], "a non-negative integer", r"\[500\] of type list"),
    ("config.train_samples", 5.0, "a non-negative integer", "5.0 of type float"),
    ("config.run", "mlp", "a JSON object", "'mlp'"),
    ("config.run.epochs", "2", "a positive integer or None", "'2' of type str"),
    ("config.run.lr", 10**400, "a positive number or None", "1000.* of type int"),
    ("config.run.dataset", 7, "a dataset name", "7 of type int"),
    ("config.resolved.shuffle", "yes", "True or False", "'yes' of type str"),
    ("config.resolved.batch_size", 0, "a positive integer", "0 of type int"),
    ("config.model", "mlp", "a JSON object", "'mlp'"),
    ("config.update", None, "a JSON object", "None"),
]


@pytest.mark.parametrize("path, value, should, shown", BAD_FIELDS)
def test_write_and_read_refuse_bad_fields_naming_path_type_and_value(tmp_path, path, value, should, shown):
    record = _set(_record(), path, value)
    message = rf"`{re.escape(path.replace('.0', '[0]'))}` must be {should}, got {shown}"
    with pytest.raises(RecordError, match=rf"r\.json.*{message}"):
        write_run_record(tmp_path / "r.json", record)
    assert not os.listdir(tmp_path)
    (tmp_path / "r.json").write_text(json.dumps(record, default=lambda v: v.tolist()))
    with pytest.raises(RecordError, match=rf"r\.json.*{message}"):
        read_run_record(tmp_path / "r.json")
    with pytest.raises(RecordError, match=message):
        check_run_record(json.loads((tmp_path / "r.json").read_text()))


def test_a_run_needs_its_preset():
    record = _record()
    del record["config"]["run"]["preset"]
    with pytest.raises(RecordError, match=r"`config\.run` lacks required key\(s\) \['preset'\]"):
        check_run_record(record)


def test_optional_fields_may_be_absent_and_extra_keys_are_kept(tmp_path):
    record = make_record(config={}, seed=0, digest="0" * 64, note={"anything": [1, "x"]})
    del record["versions"], record["history"], record["metrics"]
    write_run_record(tmp_path / "r.json", record)
    assert read_run_record(tmp_path / "r.json") == record


@pytest.mark.parametrize("path, value, other", [
    ("seed", 99, "config.run.seed"),
    ("config.run.seed", 99, "seed"),
    ("config.resolved.seed", 99, "config.run.seed"),
    ("config.resolved.preset", "cnn", "config.run.preset"),
    ("config.run.dataset", "fashion-mnist", "config.resolved.dataset"),
    ("config.run.limit", None, "config.resolved.limit"),
    ("config.run.epochs", 3, "config.resolved.epochs"),
    ("config.run.lr", 0.5, "config.resolved.lr"),
])
def test_copies_of_one_setting_must_agree(tmp_path, path, value, other):
    record = _set(_record(), path, value)
    text = json.dumps(record, default=lambda v: v.tolist())
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(RecordError, match="must agree") as info:
        read_run_record(tmp_path / "r.json")
    message = info.value.message
    assert f"`{path}`" in message and f"`{other}`" in message, message
    assert repr(value) in message and repr(_lookup(record, other)) in message, message
    with pytest.raises(RecordError, match="must agree"):
        write_run_record(tmp_path / "w.json", record)


def _lookup(record, path):
    for key in path.split("."):
        record = record[key]
    return record


def test_an_override_left_to_the_preset_is_not_a_copy():
    record = _set(_record(), "config.run.batch_size", None)  # resolved says the preset's 128
    check_run_record(record)
    record = _set(_record(), "config.run.batch_size", 64)
    with pytest.raises(RecordError, match=r"`config\.run\.batch_size` is 64 but `config\.resolved\.batch_size` is 128"):
        check_run_record(record)


def test_a_real_run_record_passes_and_the_schema_types_every_field_it_writes(tmp_path):
    config = RunConfig("seed", epochs=1, limit=8, seed=3)
    x = np.random.default_rng(0).random((8, 784), dtype=np.float32)
    y = np.arange(8) % 10
    record = run_record(config, train_preset(config, x, y), 8, {"test_accuracy": 0.5, "train_seconds": 0.1})
    write_run_record(tmp_path / "r.json", record)
    back = read_run_record(tmp_path / "r.json")
    assert back["seed"] == back["config"]["run"]["seed"] == back["config"]["resolved"]["seed"] == 3
    schema = CONFIG
    assert set(back["config"]) <= set(schema.fields)
    assert set(back["config"]["run"]) <= set(schema.fields["run"].fields)
    assert set(back["config"]["resolved"]) <= set(schema.fields["resolved"].fields)
    assert set(back["history"][0]) <= set(records.SCHEMA.fields["history"].item.fields)
    # an edited seed is refused where `purenn reproduce` reads the record
    edited = json.loads((tmp_path / "r.json").read_text())
    edited["seed"] = 99
    (tmp_path / "r.json").write_text(json.dumps(edited))
    with pytest.raises(RecordError, match=r"`seed` is 99 but `config\.run\.seed` is 3"):
        read_run_record(tmp_path / "r.json")


def test_a_path_that_cannot_be_written_is_a_record_error(tmp_path):
    with pytest.raises(RecordError, match=rf"cannot write '{re.escape(str(tmp_path))}': it is a directory"):
        write_run_record(tmp_path, _record())
    with pytest.raises(RecordError, match=rf"run record '{re.escape(str(tmp_path))}' is a directory, not a regular file"):
        read_run_record(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(RecordError, match=r"deep\.json.*not valid JSON"):
        read_run_record(tmp_path / "deep.json")


def test_write_refuses_non_json(tmp_path):
    with pytest.raises(RecordError, match=r"r\.json.*not plain JSON"):
        write_run_record(tmp_path / "r.json", _record(extra=object()))
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------- meaning across fields


def _digests(record, digests):
    record = copy.deepcopy(record)
    for entry, digest in zip(record["history"], digests):
        entry["digest"] = digest
    return record


@pytest.mark.parametrize("edit, message", [
    (lambda r: _set(r, "history.1.epoch", 3), r"`history\[1\]\.epoch` must be 2 .*got 3"),
    (lambda r: _set(r, "history.0.epoch", 2), r"`history\[0\]\.epoch` must be 1 .*got 2"),
    (lambda r: {**r, "history": r["history"][::-1]}, r"`history\[0\]\.epoch` must be 1"),
    (lambda r: _set(r, "history.1.epochs", 3), r"`history\[1\]\.epochs` is 3 but `config\.resolved\.epochs` is 2"),
    (lambda r: _set(r, "config.train_samples", 501), r"`config\.train_samples` \(501\) is more than `config\.resolved\.limit` \(500\)"),
    (lambda r: {**_digests(r, ["1" * 64, "2" * 64]), "digest": "3" * 64},
     r"`digest` is '3333.*' but .* epoch 2's, have `history\[1\]\.digest` '2222"),
    (lambda r: {**_digests(r, ["1" * 64, "2" * 64]), "digest": "1" * 64}, r"epoch 2's"),
    (lambda r: {**_set(r, "config.run.patience", None),
                "early_stopping": {"monitor": "val_loss", "patience": 1, "stopped_early": False, "best_epoch": 1}},
     r"`early_stopping\.patience` is 1 but `config\.run\.patience` is None"),
    (lambda r: {**_set(_set(_digests(r, ["1" * 64, "2" * 64]), "config.run.patience", 1), "config.resolved.patience", 1),
                "digest": "2" * 64,
                "early_stopping": {"monitor": "val_loss", "patience": 1, "stopped_early": True, "best_epoch": 1}},
     r"epoch 1's, have `history\[0\]\.digest` '1111"),
    (lambda r: {**_set(_set(r, "config.run.patience", 1), "config.resolved.patience", 1),
                "early_stopping": {"monitor": "val_loss", "patience": 1, "stopped_early": True, "best_epoch": 3}},
     r"`early_stopping\.best_epoch` \(3\) is past the 2 epochs"),
])
def test_fields_that_contradict_each_other_are_refused(edit, message):
    with pytest.raises(RecordError, match=message):
        check_run_record(edit(_record()))


def test_the_final_digest_is_the_kept_epochs():
    check_run_record({**_digests(_record(), ["1" * 64, "2" * 64]), "digest": "2" * 64})
    check_run_record({**_digests(_record(), ["1" * 64, None]), "digest": "2" * 64})  # epoch 2 kept none
    early = {"monitor": "val_loss", "patience": 1, "stopped_early": True, "best_epoch": 1}
    stopped = _set(_set(_digests(_record(), ["1" * 64, "2" * 64]), "config.run.patience", 1),
                   "config.resolved.patience", 1)
    check_run_record({**stopped, "digest": "1" * 64, "early_stopping": early})
    check_run_record({**stopped, "digest": "2" * 64, "early_stopping": {**early, "best_epoch": None}})


def _padded(record, size):
    """The record's JSON text with spaces after it, ``size`` bytes in all."""
    text = json.dumps(record, default=lambda v: v.tolist())
    assert len(text) <= size
    return (text + " " * (size - len(text))).encode()


def test_read_refuses_a_file_larger_than_the_limit_unread(tmp_path):
    limit = records.MAX_RECORD_BYTES
    assert limit == 16 * 2**20  # as documented
    (tmp_path / "r.json").write_bytes(_padded(_record(), limit))
    assert read_run_record(tmp_path / "r.json")["seed"] == 42  # at the limit: read
    (tmp_path / "r.json").write_bytes(_padded(_record(), limit + 1))
    with pytest.raises(RecordError, match=rf"r\.json' is {limit + 1} bytes, more than the {limit}"):
        read_run_record(tmp_path / "r.json")


def test_write_refuses_a_record_that_could_not_be_read_back(tmp_path):
    limit = records.MAX_RECORD_BYTES
    base = len(json.dumps(_record(filler=""), sort_keys=True, indent=2, default=lambda v: v.tolist())) + 1
    write_run_record(tmp_path / "r.json", _record(filler="x" * (limit - base)))
    assert (tmp_path / "r.json").stat().st_size == limit
    assert read_run_record(tmp_path / "r.json")["filler"] == "x" * (limit - base)
    with pytest.raises(RecordError, match=rf"would be {limit + 1} bytes, more than the {limit}"):
        write_run_record(tmp_path / "s.json", _record(filler="x" * (limit - base + 1)))
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


# ---------------------------------------------------------------- the envelope and a preset run's config


def test_the_envelope_takes_any_config_and_a_preset_run_checks_its_own(tmp_path):
    mine = make_record(config={"loop": "my own", "run": {"preset": 5}}, seed=0, digest="0" * 64)
    write_record(tmp_path / "r.json", mine)  # the envelope: any JSON object
    assert read_record(tmp_path / "r.json") == mine
    message = r"`config\.run\.preset` must be one of the presets .*got 5 of type int"
    with pytest.raises(RecordError, match=message):
        read_run_record(tmp_path / "r.json")
    with pytest.raises(RecordError, match=message):
        write_run_record(tmp_path / "s.json", mine)
    assert not (tmp_path / "s.json").exists()


def test_every_run_config_field_is_recorded_with_the_rule_run_config_checks_it_by():
    fields = attrs.fields(RunConfig)
    assert list(RUN.fields) == [f.name for f in fields]
    for f in fields:
        assert RUN.fields[f.name] is f.validator, f.name
        assert f.name in RESOLVED.fields, f.name
    assert RUN.required == tuple(f.name for f in fields if f.default is attrs.NOTHING)
    copies = setting_copies({"config": {"run": {f.name: 1 for f in fields}}})
    for f in fields:  # each copy in `resolved` must agree with `run`
        assert (f"config.run.{f.name}", f"config.resolved.{f.name}") in copies, f.name


@attrs.frozen
class _Tuned(RunConfig):
    """RunConfig with one more setting, as a new purenn might add."""

    momentum: float | None = attrs.field(default=None, validator=optional(positive_number))


def test_a_setting_added_to_run_config_is_recorded_and_checked_with_no_other_edit():
    schema = config_schema(_Tuned)
    config = copy.deepcopy(_CONFIG)
    config["run"]["momentum"] = config["resolved"]["momentum"] = 0.9
    check_schema(config, schema, "r", "config")
    for part in ("run", "resolved"):
        bad = copy.deepcopy(config)
        bad[part]["momentum"] = -1
        with pytest.raises(RecordError, match=rf"`config\.{part}\.momentum` must be a positive number "
                                              r"or None, got -1 of type int"):
            check_schema(bad, schema, "r", "config")
    record = _set(_set(_record(), "config.run.momentum", 0.9), "config.resolved.momentum", 0.5)
    with pytest.raises(RecordError, match=r"`config\.run\.momentum` is 0\.9 but "
                                          r"`config\.resolved\.momentum` is 0\.5"):
        check_agreement(record, setting_copies(record, _Tuned), "r")


@pytest.mark.parametrize("key", ["monitor", "patience", "stopped_early", "best_epoch"])
def test_early_stopping_holds_all_four_fields(key):
    # a record lacking best_epoch was a KeyError (a traceback) before
    early = {"monitor": "val_loss", "patience": 1, "stopped_early": False, "best_epoch": None}
    del early[key]
    record = {**make_record(config={}, seed=0, digest="0" * 64), "early_stopping": early}
    with pytest.raises(RecordError, match=rf"`early_stopping` lacks required key\(s\) \['{key}'\]"):
        check_record(record)


def test_a_record_written_by_purenn_0_2_0_still_reads():
    """``purenn mnist --preset seed --limit 2000 --epochs 1 --threads 1 --record`` before the
    run-record schema moved beside RunConfig."""
    path = Path(__file__).parent / "data" / "run_record_seed_0.2.0.json"
    record = read_run_record(path)
    assert record["digest"] == "5e650183aa19261edce82e1b49d915d1cba39e9d65cdcb4a77c8a3c6d5e3f8af"
    assert record["config"]["run"]["preset"] == "seed" and len(record["history"]) == 1
    assert read_record(path) == record
