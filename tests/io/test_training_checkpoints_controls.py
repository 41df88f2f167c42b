"""Training checkpoints (format version 3) of a run with issue 21's controls: the weight average's
state, early stopping's best average, the epoch's counts (correct classes, metrics) and the new
settings save and load equal, and every damage to them is refused naming what is wrong."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from test_training_checkpoints import _damaged, _refused, _reshape_leaf, _set

import purenn as pn
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.training_state import TrainingState

MODEL = pn.Sequential([pn.Dense(3, 5), pn.BatchNorm(5), pn.Tanh(), pn.Dense(5, 2)])
_rng = np.random.default_rng(0)
X = _rng.standard_normal((40, 3)).astype("float32")
Y = (X[:, 0] > 0).astype(int)


def _margin(y_pred, y_true):
    return float(np.mean(y_pred[np.arange(len(y_true)), y_true]))


KWARGS = {"loss": "softmax_cross_entropy", "optimizer": pn.Adam(0.01), "epochs": 3, "batch_size": 8,
          "seed": 4, "validation": (X[:10], Y[:10]), "early_stopping": pn.EarlyStopping(2),
          "average": pn.EMA(0.9), "metrics": {"margin": _margin}, "sample_weight": np.linspace(0.5, 2, 40),
          "class_weight": [1.0, 2.0]}


def _mid_run_state() -> TrainingState:
    saved: list[TrainingState] = []
    pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, state=MODEL.init_state(),
           checkpoint=saved.append, checkpoint_every=3, **KWARGS)
    state = next(s for s in saved if (s.epoch, s.step) == (1, 1))
    assert state.best_average is not None and state.average is not None and state.epoch_correct is not None
    return state


STATE = _mid_run_state()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "training.npz"
    save_training_state(path, MODEL, STATE)
    return path


def test_the_controls_save_and_load_equal_and_resume(good):
    loaded = load_training_state(good).state
    assert loaded.average.step == STATE.average.step and isinstance(loaded.average, pn.State)
    for a, b in ((loaded.average.slots["average"], STATE.average.slots["average"]),
                 (loaded.best_average, STATE.best_average)):
        assert all(np.array_equal(u, v) for u, v in zip(pn.tree_leaves(a), pn.tree_leaves(b)))
    assert (loaded.epoch_correct, loaded.epoch_metrics) == (STATE.epoch_correct, STATE.epoch_metrics)
    assert loaded.history == STATE.history and dict(loaded.settings) == dict(STATE.settings)
    assert loaded.settings["class_weight"] == "[1.0, 2.0]" and loaded.settings["sample_weight"] is True
    pn.fit(MODEL, None, X, Y, resume=loaded, **KWARGS)


def _without(tree: str):
    """The tree's arrays dropped from the file (as its header's None says)."""
    return lambda a: [a.pop(k) for k in list(a) if k.startswith(f"{tree}/")]


def _slot_renamed(h: dict) -> None:
    """The average's slot called "other" (the structure is [key, value] pairs)."""
    slots = dict(h["trees"]["average"]["dict"])["$slots"]
    slots["dict"][0][0] = "other"


DAMAGED = [
    ("an average the settings do not name", _set("training", "settings", "average", value=None),
     r"the weight average's state must be there exactly when the settings name an average"),
    ("no average though the settings name one", (_set("trees", "average", value=None), _without("average")),
     r"the weight average's state must be there exactly"),
    ("no best average though there are best params",
     (_set("trees", "best_average", value=None), _without("best_average")),
     r"best_average must be there exactly when best_params and an average are"),
    ("an average that is no State", _slot_renamed,
     r"its weight average is not a State\(step, \{'average': params\}\)"),
    ("an average of another shape",
     (_reshape_leaf("average", 1, (2, 2)), lambda a: a.__setitem__("average/1", np.zeros((2, 2), np.float32))),
     r"params do not match the model: params\[0\]\['w'\] has shape \(2, 2\)"),
    ("more correct classes than rows", _set("training", "epoch_correct", value=9),
     r"epoch_correct \(9\) is more than the 8 rows of the epoch's 1 steps"),
    ("correct classes a string", _set("training", "epoch_correct", value="3"),
     r"epoch_correct must be a non-negative int or null, got '3'"),
    ("metrics of another name", _set("training", "epoch_metrics", value={"other": 1.0}),
     r"epoch_metrics names \['other'\] but the settings' metrics are 'margin'"),
    ("metrics holding a string", _set("training", "epoch_metrics", value={"margin": "1"}),
     r"epoch_metrics must be an object of numbers or null"),
    ("a history entry's metrics a list", _set("training", "history", 0, "metrics", value=[1]),
     r"history\[0\]\.metrics must be an object of numbers or null, got \[1\]"),
    ("a history entry's accuracy a string", _set("training", "history", 0, "accuracy", value="0.5"),
     r"history\[0\]\.accuracy must be a number or null"),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in DAMAGED], ids=[c[0] for c in DAMAGED])
def test_damage_to_the_controls_is_refused_naming_it(good, tmp_path, edit, message):
    header, arrays = edit if isinstance(edit, tuple) else (edit, None)
    _refused(_damaged(good, tmp_path / "damaged.npz", header=header, arrays=arrays), message)


@pytest.mark.parametrize("change, message", [
    ({"average": None}, r"the weight average's state must be there exactly"),
    ({"epoch_correct": 10**6}, r"epoch_correct \(1000000\) is more than"),
])
def test_saving_refuses_what_loading_would_refuse(tmp_path, change, message):
    with pytest.raises(pn.CheckpointError, match=r"would not load .*" + message):
        save_training_state(tmp_path / "bad.npz", MODEL, attrs.evolve(STATE, **change))
