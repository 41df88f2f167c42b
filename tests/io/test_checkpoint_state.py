"""Checkpoints of models with state (BatchNorm's running statistics), and files from before state.

``data/checkpoint_v1.npz`` was written by purenn at commit 4157d29, before layers had state
(format version 1), from ``Sequential([Reshape((4, 4, 1)), Conv2D(1, 2, 3), ReLU(), Flatten(),
Dense(8, 3), Dropout(0.1)])`` initialised with ``default_rng(5)``; the outputs and digest below
were printed by that purenn for ``default_rng(6).random((2, 16))`` in float32.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import purenn as pn
from purenn.io.checkpoints import read_checkpoint

V1 = Path(__file__).parent / "data" / "checkpoint_v1.npz"
V1_OUTPUTS = [[-0.8432126641273499, 0.12233677506446838, -0.21287554502487183],
              [-0.8615520596504211, -0.06578782200813293, -0.23379142582416534]]
V1_DIGEST = "58d4a4a1a495120cb2faa411377e8788241a7d036841cab8e0829d7915891147"


def _header(path: Path) -> dict:
    with zipfile.ZipFile(path) as z, z.open("purenn.npy") as f:
        from numpy.lib import format as npy_format
        npy_format.read_magic(f)
        shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        return json.loads(f.read().decode("utf-32-le").rstrip("\0"))


def test_a_checkpoint_written_before_layer_state_still_loads():
    model, params = pn.load_checkpoint(V1)
    x = np.random.default_rng(6).random((2, 16)).astype("float32")
    assert model.forward(params, x)[0].tolist() == V1_OUTPUTS
    assert pn.params_digest(params) == V1_DIGEST
    ckpt = read_checkpoint(V1)
    assert ckpt.state == model.init_state() == ({},) * 6
    assert ckpt.metadata["written_by"].startswith("purenn before layer state")


def test_a_model_without_state_is_still_written_as_version_1(tmp_path):
    model, params = pn.load_checkpoint(V1)
    pn.save_checkpoint(tmp_path / "again.npz", model, params, metadata=read_checkpoint(V1).metadata)
    assert _header(tmp_path / "again.npz")["version"] == 1
    assert (tmp_path / "again.npz").read_bytes() == V1.read_bytes()  # byte for byte


def _batchnorm_model() -> pn.Sequential:
    return pn.Sequential([
        pn.Dense(4, 6), pn.BatchNorm(6), pn.ReLU(),
        pn.Residual(pn.Sequential([pn.Dense(6, 6), pn.BatchNorm(6, momentum=0.2)])),
        pn.Parallel([pn.Identity(), pn.Sequential([pn.Dense(6, 2), pn.LayerNorm(2)])]),
        pn.Dense(8, 3),
    ])


def _trained(model: pn.Sequential):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    params, state, _ = pn.fit(model, model.init(rng), x, y, loss="softmax_cross_entropy",
                              optimizer=pn.Adam(1e-2), epochs=2, batch_size=16,
                              state=model.init_state())
    return x, y, params, state


def test_a_batchnorm_model_saves_loads_and_evaluates_the_same(tmp_path):
    model = _batchnorm_model()
    x, y, params, state = _trained(model)
    before = pn.evaluate(model, params, x, y, state=state, loss="softmax_cross_entropy")
    pn.save_checkpoint(tmp_path / "bn.npz", model, params, state=state, metadata={"epochs": 2})
    assert _header(tmp_path / "bn.npz")["version"] == 2
    ckpt = read_checkpoint(tmp_path / "bn.npz")
    assert ckpt.model == model and ckpt.metadata == {"epochs": 2}
    assert pn.params_digest(ckpt.params, state=ckpt.state) == pn.params_digest(params, state=state)
    assert all(not a.flags.writeable for a in pn.tree_leaves(ckpt.state))
    after = pn.evaluate(ckpt.model, ckpt.params, x, y, state=ckpt.state, loss="softmax_cross_entropy")
    assert after == before
    # the running statistics are what evaluation uses: fresh ones give other outputs
    fresh = pn.predict(model, params, x, state=model.init_state())
    assert not np.array_equal(fresh, pn.predict(model, params, x, state=ckpt.state))


def test_saving_a_stateful_model_without_its_state_is_refused(tmp_path):
    model = _batchnorm_model()
    params = model.init(np.random.default_rng(0))
    with pytest.raises(pn.CheckpointError, match="no state was given; pass state="):
        pn.save_checkpoint(tmp_path / "bn.npz", model, params)
    assert not (tmp_path / "bn.npz").exists()


def test_a_state_of_the_wrong_shape_is_refused(tmp_path):
    model = _batchnorm_model()
    params, state = model.init(np.random.default_rng(0)), list(model.init_state())
    state[1] = {"mean": np.zeros(5, np.float32), "var": np.ones(5, np.float32)}
    with pytest.raises(pn.CheckpointError, match=r"state\[1\]\['mean'\] has shape \(5,\)"):
        pn.save_checkpoint(tmp_path / "bn.npz", model, params, state=tuple(state))


def test_load_checkpoint_refuses_to_drop_the_state(tmp_path):
    model = _batchnorm_model()
    _, _, params, state = _trained(model)
    pn.save_checkpoint(tmp_path / "bn.npz", model, params, state=state)
    with pytest.raises(pn.CheckpointError, match=r"use ckpt = read_checkpoint\(path\)"):
        pn.load_checkpoint(tmp_path / "bn.npz")


def test_a_stateful_model_in_a_file_without_state_is_refused(tmp_path):
    """A file whose state was stripped (header turned into version 1, state entries dropped):
    its BatchNorm would run on missing running statistics, so it is refused."""
    model = pn.Sequential([pn.Dense(2, 2), pn.BatchNorm(2)])
    params = model.init(np.random.default_rng(0))
    pn.save_checkpoint(tmp_path / "bn.npz", model, params, state=model.init_state())
    with np.load(tmp_path / "bn.npz") as f:
        arrays = {k: f[k] for k in f.files if not k.startswith("state/")}
    header = json.loads(str(arrays["purenn"]))
    del header["state"]
    header["version"] = 1
    arrays["purenn"] = np.array(json.dumps(header))
    np.savez(tmp_path / "stripped.npz", **arrays)
    with pytest.raises(pn.CheckpointError, match="has layers with state .* holds no state"):
        read_checkpoint(tmp_path / "stripped.npz")
    header["version"] = 2  # a version 2 header must name the state
    arrays["purenn"] = np.array(json.dumps(header))
    np.savez(tmp_path / "no_state_v2.npz", **arrays)
    with pytest.raises(pn.CheckpointError, match="version 2 header without a 'state' entry"):
        read_checkpoint(tmp_path / "no_state_v2.npz")


def test_a_file_whose_state_arrays_do_not_fit_the_model_is_refused(tmp_path):
    """A version 2 file edited with care: a state array and its entry in the header's structure
    changed together, so only the model's declared state shapes can tell."""
    model = pn.Sequential([pn.Dense(2, 3), pn.BatchNorm(3)])
    pn.save_checkpoint(tmp_path / "bn.npz", model, model.init(np.random.default_rng(0)),
                       state=model.init_state())
    with np.load(tmp_path / "bn.npz") as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["purenn"]))
    for entry in header["state"]["tuple"][1]["dict"]:
        entry[1]["shape"] = [5]
    arrays["state/0"], arrays["state/1"] = np.zeros(5, np.float32), np.ones(5, np.float32)
    arrays["purenn"] = np.array(json.dumps(header))
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(pn.CheckpointError, match=r"edited\.npz.*state do not match the model: "
                                                 r"state\[1\]\['mean'\] has shape \(5,\)"):
        read_checkpoint(tmp_path / "edited.npz")


def test_values_no_trained_model_has_are_refused_on_load_and_save(tmp_path):
    """A running variance below zero (every prediction would be NaN) or NaN params: refused,
    naming the layer or the array, by read_checkpoint and by save_checkpoint alike."""
    model = pn.Sequential([pn.Dense(3, 4), pn.Residual(pn.Sequential([pn.BatchNorm(4), pn.Tanh()]))])
    params, state = model.init(np.random.default_rng(0)), model.init_state()
    good = tmp_path / "good.npz"
    pn.save_checkpoint(good, model, params, state=state)
    bad_var = (state[0], {"block": ({"mean": state[1]["block"][0]["mean"],
                                     "var": np.full(4, -0.5, np.float32)}, {}), "projection": {}})
    nan_w = ({"w": np.full((3, 4), np.nan, np.float32), "b": params[0]["b"]}, params[1])
    for kwargs, message in [
        ({"state": bad_var}, r"layer 1 of Sequential: block of Residual: layer 0 of Sequential: "
                             r"BatchNorm\(features=4.*\): its running variance holds negative values"),
        ({"params": nan_w}, r"params\[0\]\['w'\] holds NaN or infinite values"),
    ]:
        with pytest.raises(pn.CheckpointError, match=message):
            pn.save_checkpoint(tmp_path / "refused.npz", model, kwargs.get("params", params),
                               state=kwargs.get("state", state))
        with np.load(good, allow_pickle=False) as f:  # the same values written by hand
            arrays = {k: f[k] for k in f.files}
        tree = kwargs.get("params", kwargs.get("state"))
        prefix = "param" if "params" in kwargs else "state"
        for i, a in enumerate(pn.tree_leaves(tree)):
            arrays[f"{prefix}/{i}"] = np.asarray(a)
        with open(tmp_path / "forged.npz", "wb") as f:
            np.savez(f, **arrays)
        with pytest.raises(pn.CheckpointError, match=rf"forged\.npz.*{message}"):
            pn.read_checkpoint(tmp_path / "forged.npz")
