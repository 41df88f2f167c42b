"""Damaged and hostile training-state files (purenn.io.training_checkpoints): whatever is wrong,
``load_training_state`` raises a CheckpointError naming the file, never another exception. The
damaged files are written as an editor or a broken disk would leave them: a valid file's arrays
loaded, its JSON header (the "purenn" entry) or an array changed, and np.savez-ed again. Last, a
Hypothesis test replaces one JSON value of the header's "training" record with any other (the
digest recomputed, as anyone can: the field checks must hold on their own), and what loads must
resume or be refused with a message. The integrity digest itself is tested in the middle."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from _fuzz_json import json_paths, json_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.io.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from purenn.io.training_checkpoints import content_digest, load_training_state, save_training_state
from purenn.training_state import TrainingState

# BatchNorm (a layer state, and early stopping's best layer state), Adam (State records in the
# optimizer's state), both rules, validation: every part of the format is in the file
MODEL = pn.Sequential([pn.Dense(3, 5), pn.BatchNorm(5), pn.Tanh(), pn.Dropout(0.1), pn.Dense(5, 2)])
_rng = np.random.default_rng(0)
X = _rng.standard_normal((40, 3)).astype("float32")
Y = (X[:, 0] > 0).astype(int)
KWARGS = {"loss": "softmax_cross_entropy", "optimizer": pn.Adam(0.01), "epochs": 3, "batch_size": 8,
          "seed": 4, "validation": (X[:10], Y[:10]), "early_stopping": pn.EarlyStopping(2),
              "plateau": pn.ReduceLROnPlateau(monitor="loss")}


def _mid_run_state() -> TrainingState:
    """A state in the middle of epoch 2 (early stopping has a best by then)."""
    saved: list[TrainingState] = []
    pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, state=MODEL.init_state(),
           checkpoint=saved.append, checkpoint_every=3, **KWARGS)
    state = next(s for s in saved if (s.epoch, s.step) == (1, 1))
    assert state.best_params is not None and state.best_model_state is not None
    return state


STATE = _mid_run_state()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "training.npz"
    save_training_state(path, MODEL, STATE, metadata={"note": "good"})
    return path


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _header(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(str(arrays["purenn"][()]))


def _damaged(good: Path, out: Path, *, header: Callable[[dict], Any] | None = None,
             arrays: Callable[[dict], Any] | None = None, redigest: bool = True) -> Path:
    """``good`` with its header edited in place by ``header(h)`` and its arrays by ``arrays(a)``,
    written to ``out`` with np.savez. ``redigest``: the digest recomputed for the edited contents
    (anyone can: the field checks must hold for a file whose digest matches)."""
    entries = _arrays(good)
    original = entries["purenn"]
    h = _header(entries)
    if header is not None:
        header(h)
    if arrays is not None:
        arrays(entries)
    if redigest and "digest" in h:
        h["digest"] = content_digest(h, {k: v for k, v in entries.items() if k != "purenn"})
    if entries.get("purenn") is original:
        entries["purenn"] = np.array(json.dumps(h))
    with open(out, "wb") as f:
        np.savez(f, **entries)
    return out


def _refused(path: Path, message: str) -> pn.CheckpointError:
    """load_training_state(path) raises a CheckpointError naming the file and matching
    ``message`` (a regular expression)."""
    with pytest.raises(pn.CheckpointError) as info:
        load_training_state(path)
    text = str(info.value)
    assert str(path) in text, text
    assert re.search(message, text), text
    return info.value


def test_the_good_file_loads(good):
    """The premise: untouched, the file loads and resumes the run."""
    back = load_training_state(good)
    assert back.model == MODEL and back.metadata == {"note": "good"}
    assert (back.state.epoch, back.state.step) == (1, 1)
    pn.fit(MODEL, None, X, Y, resume=back.state, **KWARGS)


def _set(*path: Any, value: Any) -> Callable[[dict], None]:
    def edit(h: dict) -> None:
        node = h
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(*path: Any) -> Callable[[dict], None]:
    def edit(h: dict) -> None:
        node = h
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


DAMAGED_HEADERS = [
    ("model a number", _set("model", value=5), r"the header's model is not a layer: 5"),
    ("model of no known type", _set("model", value={"type": "Nope", "fields": {}}), r"unknown type 'Nope'"),
    ("settings a list", _set("training", "settings", value=[1]), r"settings must be an object, got list"),
    ("settings a string", _set("training", "settings", value="epochs=3"), r"settings must be an object"),
    ("epoch_loss a string", _set("training", "epoch_loss", value="0.5"),
     r"epoch_loss and last_loss must be numbers"),
    ("last_loss a bool", _set("training", "last_loss", value=True),
     r"epoch_loss and last_loss must be numbers"),
    ("epoch a bool", _set("training", "epoch", value=True), r"epoch must be a non-negative int, got True"),
    ("epoch a float", _set("training", "epoch", value=1.0), r"epoch must be a non-negative int, got 1\.0"),
    ("step negative", _set("training", "step", value=-1), r"step must be a non-negative int, got -1"),
    ("step a string", _set("training", "step", value="1"), r"step must be a non-negative int"),
    ("rng of no bit generator", _set("training", "shuffle_rng", "bit_generator", value="os.system"),
     r"not a saved random generator state"),
    ("rng of the base class", _set("training", "layer_rng", "bit_generator", value="BitGenerator"),
     r"training record is damaged"),
    ("rng of another bit generator's state", _set("training", "layer_rng", "bit_generator", value="MT19937"),
     r"not a saved random generator state"),
    ("rng state garbage", _set("training", "layer_rng", "state", value={"state": "x"}),
     r"not a saved random generator state"),
    ("rng state too large", _set("training", "layer_rng", "state", "state", "state", value=2**200),
     r"not a saved random generator state"),
    ("rng entropy a string", _set("training", "shuffle_rng", "seed_sequence", "entropy", value="abc"),
     r"not a saved random generator state"),
    ("rng entropy negative", _set("training", "shuffle_rng", "seed_sequence", "entropy", value=-1),
     r"not a saved random generator state"),
    ("rng pool too small", _set("training", "shuffle_rng", "seed_sequence", "pool_size", value=1),
     r"not a saved random generator state"),
    ("rng spawn counter negative",
     _set("training", "shuffle_rng", "seed_sequence", "n_children_spawned", value=-1),
     r"not a saved random generator state"),
    ("rng without its seed sequence", _delete("training", "layer_rng", "seed_sequence"),
     r"not a saved random generator state"),
    ("rng a list", _set("training", "layer_rng", value=[1, 2]), r"layer_rng must be an object, got list"),
    ("history entry with an unknown key", lambda h: h["training"]["history"][0].update(colour="red"),
     r"training record is damaged .*colour"),
    ("history entry lacking a key", _delete("training", "history", 0, "loss"), r"training record is damaged"),
    ("history entry a number", _set("training", "history", 0, value=3), r"history must be a list of objects"),
    ("history an object", _set("training", "history", value={}), r"history must be a list of objects"),
    ("early stopping with an unknown key", lambda h: h["training"]["early_stopping"].update(patience=2),
     r"training record is damaged"),
    ("early stopping a list", _set("training", "early_stopping", value=[1]), r"training record is damaged"),
    ("plateau a string", _set("training", "plateau", value="x"), r"training record is damaged"),
    ("training record lacking a key", _delete("training", "layer_rng"),
     r"the training record needs \['epoch', 'step'"),
    ("training record a list", _set("training", value=[]), r"the training record needs"),
    ("header lacking the training record", _delete("training"), r"header lacks or garbles \['training'\]"),
    ("header lacking the trees", _delete("trees"), r"header lacks or garbles \['trees'\]"),
    ("trees a list", _set("trees", value=[]), r"header lacks or garbles"),
    ("metadata a list", _set("metadata", value=[]), r"header lacks or garbles"),
    ("no params", _set("trees", "params", value=None), r"holds no params"),
    ("params structure a number", _set("trees", "params", value=5), r"params: malformed structure"),
    ("another version", _set("version", value=4), r"unsupported training state version 4"),
    ("no version", _delete("version"), r"unsupported training state version None"),
    ("another format", _set("format", value="purenn.other"), r"not a purenn training state header"),
    # every field of the record, for its type, its range and what the others say of it
    ("early stopping's best a string", _set("training", "early_stopping", "best", value="0.5"),
     r"early_stopping\.best must be a number or null, got '0\.5'"),
    ("early stopping's stopped a number", _set("training", "early_stopping", "stopped", value=1),
     r"early_stopping\.stopped must be true or false, got 1"),
    ("early stopping's wait negative", _set("training", "early_stopping", "wait", value=-1),
     r"early_stopping\.wait must be a non-negative int, got -1"),
    ("early stopping's best epoch past the epoch", _set("training", "early_stopping", "best_epoch", value=5),
     r"early_stopping's best .* and best_epoch 5 do not agree"),
    ("early stopping's best without its epoch", _set("training", "early_stopping", "best_epoch", value=None),
     r"early_stopping's best .* do not agree"),
    ("no early stopping state though best params are saved", _set("training", "early_stopping", value=None),
     r"best_params must be there exactly when early stopping has a best epoch"),
    ("plateau's scale a string", _set("training", "plateau", "scale", value="0.5"),
     r"plateau\.scale must be a number, got '0\.5'"),
    ("plateau's scale negative", _set("training", "plateau", "scale", value=-0.5),
     r"plateau\.scale must be a finite number >= 0, got -0\.5"),
    ("plateau's scale infinite", _set("training", "plateau", "scale", value=float("inf")),
     r"plateau\.scale must be a finite number >= 0, got inf"),
    ("plateau's best a list", _set("training", "plateau", "best", value=[0.5]), r"plateau\.best must be a number or null"),
    ("plateau lacking a field", _delete("training", "plateau", "cooldown"), r"plateau has unknown field\(s\) \[\] or lacks \['cooldown'\]"),
    ("history entry's loss a string", _set("training", "history", 0, "loss", value="0.3"),
     r"history\[0\]\.loss must be a number, got '0\.3'"),
    ("history entry's digest a number", _set("training", "history", 0, "digest", value=3),
     r"history\[0\]\.digest must be a string or null, got 3"),
    ("history entry's epoch renumbered", _set("training", "history", 0, "epoch", value=2),
     r"one entry per epoch done \(1\), numbered from 1; it has epochs \[2\]"),
    ("history one entry longer than the epochs done", lambda h: h["training"]["history"].append(h["training"]["history"][0]),
     r"one entry per epoch done \(1\)"),
    ("history emptied", _set("training", "history", value=[]), r"one entry per epoch done \(1\)"),
    ("settings holding an object", _set("training", "settings", "model", value={"a": 1}),
     r"settings\['model'\] must be a number, string, true, false or null, got dict"),
    ("settings' epochs a string", _set("training", "settings", "epochs", value="3"),
     r"settings\['epochs'\] must be a non-negative int, got '3'"),
    ("the epoch past the run's epochs", _set("training", "settings", "epochs", value=0),
     r"epoch 1 is past the run's 0 epochs"),
    ("rng state array of a huge unicode dtype",
     _set("training", "layer_rng", "state", "state", value={"array": ["7"], "dtype": "<U250000000"}),
     r"not a saved random generator state .*must have dtype <u4 or >u4 or <u8 or >u8, got '<U250000000'"),
    ("rng state nested too deeply",
     _set("training", "layer_rng", "state", "state", value={"a": {"b": {"c": 1}}}),
     r"nests at most 2 levels deep"),
    ("rng spawn counter a float",
     _set("training", "shuffle_rng", "seed_sequence", "n_children_spawned", value=1.5),
     r"n_children_spawned must be an int in \[0, 2\*\*32\)"),
    ("training record with an unknown key", lambda h: h["training"].update(colour="red"),
     r"the training record has unknown field\(s\) \['colour'\]"),
    ("header with an unknown key", lambda h: h.update(colour="red"), r"header has unknown entries \['colour'\]"),
    ("trees with an unknown key", lambda h: h["trees"].update(colour=None), r"trees has unknown entries \['colour'\]"),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in DAMAGED_HEADERS],
                         ids=[c[0] for c in DAMAGED_HEADERS])
def test_a_damaged_header_is_a_checkpoint_error_naming_the_file(good, tmp_path, edit, message):
    _refused(_damaged(good, tmp_path / "damaged.npz", header=edit), message)


def _reshape_leaf(tree: str, index: int, shape: tuple[int, ...]) -> Callable[[dict], None]:
    """The header's structure of ``tree`` saying leaf ``index`` has ``shape``."""
    def edit(h: dict) -> None:
        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("leaf") == index and "shape" in node:
                    node["shape"] = list(shape)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(h["trees"][tree])
    return edit


def _step_leaf(h: dict) -> dict:
    """The header's structure entry of the optimizer state's first ``$step``."""
    def find(node: Any) -> Any:
        if isinstance(node, dict):
            for item in node.get("dict", []):
                if item[0] == "$step":
                    return item[1]
            return next((f for f in map(find, node.values()) if f is not None), None)
        if isinstance(node, list):
            return next((f for f in map(find, node) if f is not None), None)
        return None
    return find(h["trees"]["opt_state"])


def _step_entry(arrays: dict) -> str:
    return f"opt_state/{_step_leaf(_header(arrays))['leaf']}"


def _retype_step(h: dict) -> None:
    _step_leaf(h)["dtype"] = "<f8"


def _replace(name: str, value: Any) -> Callable[[dict], None]:
    return lambda a: a.__setitem__(name, value)


def _drop(name: str) -> Callable[[dict], None]:
    return lambda a: a.pop(name)


DAMAGED_ARRAYS = [
    ("best params of the wrong shape (the structure says otherwise)", None,
     _replace("best_params/0", np.zeros((2, 2), np.float32)),
     r"best_params\[0\]\['w'\]: stored array has dtype <f4 and shape \(2, 2\), but the structure says"),
    ("best params of the wrong shape (the structure agrees)", _reshape_leaf("best_params", 0, (2, 2)),
     _replace("best_params/0", np.zeros((2, 2), np.float32)),
     r"params do not match the model: params\[0\]\['w'\] has shape \(2, 2\)"),
    ("best params of the wrong dtype", None, _replace("best_params/4", np.zeros((5, 2), np.float64)),
     r"best_params\[4\]\['w'\]: stored array has dtype <f8"),
    ("best layer state of the wrong shape (the structure agrees)", _reshape_leaf("best_model_state", 1, (4,)),
     _replace("best_model_state/1", np.ones(4, np.float32)),
     r"state do not match the model: state\[1\]\['var'\] has shape \(4,\)"),
    ("params of the wrong shape (the structure agrees)", _reshape_leaf("params", 5, (3,)),
     _replace("params/5", np.zeros(3, np.float32)), r"params do not match the model"),
    ("a missing params entry in the middle", None, _drop("params/2"),
     r"expected arrays params/0 \.\. params/4, got \['params/0', 'params/1', 'params/3'"),
    ("the last params entry missing", None, _drop("params/5"),
     r"params\[4\]\['b'\]: bad or repeated leaf index 5"),
    ("a missing optimizer state entry", None, _drop("opt_state/0"), r"expected arrays opt_state/0"),
    ("the best layer state's last entry missing", None, _drop("best_model_state/1"),
     r"best_model_state\[1\]\['var'\]: bad or repeated leaf index 1"),
    ("no header", None, _drop("purenn"), r"an \.npz without a purenn header"),
    ("an extra entry", None, _replace("junk", np.zeros(2)), r"unexpected entries \['junk'\]"),
    ("a params entry of strings", None, _replace("params/1", np.array(["a"] * 5)), r"must be numeric arrays"),
    ("the header not a string", None, _replace("purenn", np.zeros(3)), r"is not a JSON string"),
    ("the header not JSON", None, _replace("purenn", np.array("{not json")), r"header is not valid JSON"),
    ("no layer state for a model with BatchNorm",
     lambda h: h["trees"].update(model_state=None),
     lambda a: [a.pop(k) for k in list(a) if k.startswith("model_state/")],
     r"the model has layers with state \(BatchNorm\) but the file holds no model_state"),
    ("no best layer state beside the best params",
     lambda h: h["trees"].update(best_model_state=None),
     lambda a: [a.pop(k) for k in list(a) if k.startswith("best_model_state/")],
     r"best_model_state must be there exactly when best_params and model_state are"),
    ("an optimizer step negative", None, lambda a: a.__setitem__(_step_entry(a), np.array(-1, np.int64)),
     r"an optimizer state's \$step must be a non-negative integer"),
    ("an optimizer step a float", _retype_step, lambda a: a.__setitem__(_step_entry(a), np.array(1.5)),
     r"an optimizer state's \$step must be a non-negative integer"),
]


@pytest.mark.parametrize("header, arrays, message", [c[1:] for c in DAMAGED_ARRAYS],
                         ids=[c[0] for c in DAMAGED_ARRAYS])
def test_damaged_arrays_are_a_checkpoint_error_naming_the_file(good, tmp_path, header, arrays, message):
    _refused(_damaged(good, tmp_path / "damaged.npz", header=header, arrays=arrays), message)


def test_a_pickled_entry_is_refused_not_unpickled(good, tmp_path):
    path = _damaged(good, tmp_path / "pickled.npz", redigest=False,
                    arrays=_replace("params/0", np.array([{"x": 1}], dtype=object)))
    _refused(path, r"entry 'params/0' is an object array \(pickled Python objects\)")


def test_each_reader_names_the_other(good, tmp_path):
    """A plain checkpoint given to load_training_state, and a training state to read_checkpoint
    or load_checkpoint: each message says which reader the file is for."""
    plain = tmp_path / "model.npz"
    save_checkpoint(plain, MODEL, STATE.params, state=STATE.model_state)
    _refused(plain, r"not a purenn training state header \(it is a 'purenn\.checkpoint' file; "
                    r"read it with read_checkpoint")
    for reader in (read_checkpoint, load_checkpoint):
        with pytest.raises(pn.CheckpointError) as info:
            reader(good)
        assert str(good) in str(info.value)
        assert re.search(r"not a purenn checkpoint header \(it is a 'purenn\.training' file; read it "
                         r"with load_training_state \(purenn resume\)\)", str(info.value)), str(info.value)


def test_files_that_are_no_archive_at_all(tmp_path):
    for name, data in (("empty.npz", b""), ("text.npz", b"{\"format\": \"purenn.training\"}"),
                       ("zip.npz", b"PK\x03\x04" + b"\0" * 40)):
        (tmp_path / name).write_bytes(data)
        _refused(tmp_path / name, r"checkpoint '.*'")
    with pytest.raises(pn.CheckpointError, match="not found"):
        load_training_state(tmp_path / "missing.npz")
    with pytest.raises(pn.CheckpointError, match=re.escape(str(tmp_path))):
        load_training_state(tmp_path)  # a folder


# --- the integrity digest ---------------------------------------------------------------------


def _next_pcg_state(h: dict) -> None:
    """The layer generator moved on by one: a state as valid as the saved one, but another."""
    h["training"]["layer_rng"]["state"]["state"]["state"] += 1


@pytest.mark.parametrize("header, arrays", [
    (_next_pcg_state, None),
    (_set("training", "epoch_loss", value=0.25), None),
    (_set("metadata", "note", value="edited"), None),
    (None, _replace("params/0", np.zeros((3, 5), np.float32))),
], ids=["a generator state", "the epoch's loss", "the metadata", "an array"])
def test_an_edited_but_valid_file_is_refused_as_edited(good, tmp_path, header, arrays):
    """Each edit gives a file that loads once its digest is recomputed (the premise), and is
    refused as edited or damaged as it is."""
    load_training_state(_damaged(good, tmp_path / "resigned.npz", header=header, arrays=arrays))
    _refused(_damaged(good, tmp_path / "edited.npz", header=header, arrays=arrays, redigest=False),
             r"its contents do not match its integrity digest: the file was edited or damaged")


def test_a_garbled_digest_is_refused(good, tmp_path):
    _refused(_damaged(good, tmp_path / "garbled.npz", header=_set("digest", value="md5:00"), redigest=False),
             r"its digest 'md5:00' is not 'sha256:' and 64 hex digits")


def test_a_file_from_before_digests_loads_with_a_notice(good, tmp_path):
    assert load_training_state(good).notice is None
    old = load_training_state(_damaged(good, tmp_path / "old.npz", header=_delete("digest")))
    assert old.notice is not None and "old.npz has no integrity digest" in old.notice
    assert old.state.history == load_training_state(good).state.history
    # the next save of the run adds one
    save_training_state(tmp_path / "again.npz", old.model, old.state, metadata=old.metadata)
    assert load_training_state(tmp_path / "again.npz").notice is None


def test_the_digest_is_over_the_canonical_header_and_every_array(good):
    arrays = _arrays(good)
    header = _header(arrays)
    contents = {k: v for k, v in arrays.items() if k != "purenn"}
    assert content_digest(header, contents) == header["digest"]
    assert content_digest(json.loads(json.dumps(header, indent=2)), contents) == header["digest"]
    for name, array in contents.items():
        flipped = dict(contents)
        flipped[name] = array.copy()
        flipped[name].reshape(-1).view(np.uint8)[0] ^= 1
        assert content_digest(header, flipped) != header["digest"], name


# --- damage that loading lets through -------------------------------------------------------


def test_a_huge_entropy_pool_is_refused(good, tmp_path):
    path = _damaged(good, tmp_path / "pool.npz",
                    header=_set("training", "layer_rng", "seed_sequence", "pool_size", value=2**60))
    _refused(path, r"not a saved random generator state")


def _opt_leaf_reshaped(h: dict) -> None:
    """Adam's first moment of the first weight (leaf 1 of the optimizer state) said to be 2x2."""
    _reshape_leaf("opt_state", 1, (2, 2))(h)


# what only the resuming call can judge (its rules, its optimizer): refused by fit(resume=)
LET_THROUGH = [
    ("no plateau state though the run has the rule", _set("training", "plateau", value=None), None),
    ("an optimizer slot of another shape", _opt_leaf_reshaped,
     _replace("opt_state/1", np.zeros((2, 2), np.float32))),
]


@pytest.mark.parametrize("header, arrays", [c[1:] for c in LET_THROUGH], ids=[c[0] for c in LET_THROUGH])
def test_damage_the_loader_lets_through_is_refused_before_the_run_goes_on(good, tmp_path, header, arrays):
    """The training record's fields are meant to be "checked for type and range (a damaged or
    edited file is refused here, not in the middle of a resumed run)": refused at load
    (CheckpointError) or by fit(resume=) (ArgumentError), before any step."""
    path = _damaged(good, tmp_path / "damaged.npz", header=header, arrays=arrays)
    steps: list[int] = []
    with pytest.raises((pn.CheckpointError, pn.ArgumentError)):
        pn.fit(MODEL, None, X, Y, resume=load_training_state(path).state,
               on_batch=lambda done, total: steps.append(done), **KWARGS)
    assert steps == []


# --- fuzzing the training record ----------------------------------------------------------


_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _training_paths(header: dict) -> list[tuple]:
    """Every place in the training record (the generators' pool sizes too: a large one is
    refused before NumPy would allocate it, see test_a_huge_entropy_pool_is_refused)."""
    return [("training", *p) for p in json_paths(header["training"])]


@_SETTINGS
@given(data=st.data())
def test_one_value_of_the_training_record_replaced_by_any_other(good, fuzz_folder, data):
    entries = _arrays(good)
    header = _header(entries)
    path = data.draw(st.sampled_from(_training_paths(header)), label="path")
    value = data.draw(json_values(["PCG64", "MT19937", "Philox", "array", "dtype", "<u4", "nan",
                                   "best", "scale", "epoch"]), label="value")
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    header["digest"] = content_digest(header, {k: v for k, v in entries.items() if k != "purenn"})
    entries["purenn"] = np.array(json.dumps(header))
    target = fuzz_folder / "fuzzed.npz"
    with open(target, "wb") as f:
        np.savez(f, **entries)
    try:
        loaded = load_training_state(target)
    except pn.CheckpointError as e:
        assert str(target) in str(e)
        return
    assert isinstance(loaded.state, TrainingState)
    try:  # what loads resumes, or is refused with a message: never a traceback
        pn.fit(MODEL, None, X, Y, resume=loaded.state, **KWARGS)
    except pn.PurennError:
        pass


@pytest.mark.parametrize("change, message", [
    ({"history": ()}, r"one entry per epoch done \(1\)"),
    ({"epoch": -1}, r"epoch must be a non-negative int, got -1"),
    ({"settings": {"epochs": "3"}}, r"settings\['epochs'\] must be a non-negative int"),
    ({"best_params": None}, r"best_params must be there exactly when early stopping has a best epoch"),
    ({"layer_rng": {"bit_generator": "PCG64"}}, r"not a saved random generator state"),
], ids=["history", "epoch", "settings", "best params", "generator"])
def test_saving_refuses_a_state_loading_would_refuse(tmp_path, change, message):
    with pytest.raises(pn.CheckpointError, match=r"cannot save training state .*its training record "
                                                 r"would not load .*" + message):
        save_training_state(tmp_path / "bad.npz", MODEL, attrs.evolve(STATE, **change))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("optimizer, refused", [
    ("Adam(lr=0.01, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.0)", True),
    ("FromTransformation(transform=Chain(transformations=(ScaleByAdam(b1=0.9, b2=0.999, eps=1e-08, "
     "lr=0.01),)))", True),
    ("AdamW(lr=0.01, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.01)", False),  # its arithmetic is the same
    ("FromTransformation(transform=Chain(transformations=(ScaleByAdam(b1=0.9, b2=0.999, eps=1e-08, "
     "lr=None), ScaleByLearningRate(lr=0.01))))", False),
    ("SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)", False),
])
def test_a_version_1_state_of_a_run_with_the_old_adam_is_refused_with_the_reason(good, tmp_path, optimizer,
                                                                               refused):
    """purenn 0.2.0 changed Adam's arithmetic and state layout (ADAM_CHANGED): a state saved
    before (format version 1, no digest) cannot continue bit for bit, and says why."""
    def old(h: dict) -> None:
        _as_version_2(h)
        h["version"] = 1
        h["training"]["settings"]["optimizer"] = optimizer
        del h["digest"]

    path = _damaged(good, tmp_path / "old.npz", header=old, redigest=False)
    if refused:
        _refused(path, r"saved by a purenn before 0\.2\.0, and purenn 0\.2\.0 changed Adam's "
                       r"arithmetic: the learning rate")
    else:
        assert "no integrity digest" in load_training_state(path).notice


def _as_version_2(h: dict) -> None:
    """A header as purenn 0.2.0 wrote it (format version 2): without version 3's fields."""
    h["version"] = 2
    for key in ("epoch_correct", "epoch_metrics"):
        del h["training"][key]
    for key in ("average", "best_average"):
        del h["trees"][key]
    for log in h["training"]["history"]:
        for key in ("accuracy", "metrics", "average_digest"):
            del log[key]
    for key in ("sample_weight", "class_weight", "metrics", "average"):
        del h["training"]["settings"][key]


def test_a_version_2_state_resumes_without_the_epochs_training_accuracy(good, tmp_path):
    """A state purenn 0.2.0 saved mid-epoch (no counts of the epoch so far, no new settings)
    loads, and its run resumes: the epoch in progress has no training accuracy, the next ones do."""
    path = _damaged(good, tmp_path / "v2.npz", header=_as_version_2)
    loaded = load_training_state(path).state
    assert loaded.epoch_correct is None and loaded.history[0].accuracy is None
    _, history = pn.fit(MODEL, None, X, Y, resume=loaded, **KWARGS)[::2]
    assert history.accuracy[1] is None and all(0 <= a <= 1 for a in history.accuracy[2:])
    with pytest.raises(pn.CheckpointError, match=r"needs \['epoch'.*'epoch_correct'"):
        load_training_state(_damaged(good, tmp_path / "v3.npz", header=lambda h: _as_version_2(h) or
                                     h.update(version=3)))
