"""Stopping and continuing fit where it is easy to get wrong: the rules' states (early stopping,
plateau), the best epoch's params, the last loss; unshuffled runs, Generator seeds of every bit
generator, float64 models, custom optimizers; the checkpoint handed a state once; and the
refusals (another model, a TrainingCheckpoint, a position outside the run, a state of the wrong
structure). Each resumed run is compared with the one never interrupted: the params (and layer
state) digest and the whole History."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.errors import TrainingInterrupted
from purenn.io.training_checkpoints import TrainingCheckpoint, load_training_state, save_training_state
from purenn.training_state import TrainingState

# 60 samples in batches of 16: 4 steps an epoch (the last of 12 rows); polls of stop() come one
# per step (after the last step of an epoch, once the epoch is closed), so poll k follows the
# run's k-th step: 4k is the end of epoch k, 4k + j step j of epoch k + 1
N, BATCH, STEPS = 60, 16, 4


def _data(n: int = N, dtype: str = "float32", seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(dtype)
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)


X, Y = _data()
XV, YV = _data(24, seed=1)


def _mlp(dtype: str = "float32") -> pn.Sequential:
    """Dropout in the middle: the layers' generator matters as much as the shuffling one."""
    return pn.Sequential([pn.Dense(4, 16, dtype=dtype), pn.Tanh(), pn.Dropout(0.2),
                          pn.Dense(16, 3, dtype=dtype)])


MODEL = _mlp()


def _base(**changes: Any) -> dict[str, Any]:
    return {"loss": "softmax_cross_entropy", "optimizer": pn.Adam(0.02), "epochs": 6,
            "batch_size": BATCH, "seed": 7, "validation": (XV, YV),
            "digest": lambda p, s: pn.params_digest(p, state=s), **changes}


def _stop_at(poll: int) -> Callable[[], bool]:
    """A ``stop`` callback that says yes at its ``poll``-th call only."""
    calls = iter(range(1, 10**9))
    return lambda: next(calls) == poll


def _digest(result: tuple) -> str:
    return pn.params_digest(result[0], state=result[1] if len(result) == 3 else None)


def _in_pieces(model: Any, params: Any, x: Any, y: Any, stops: set[int],
               kwargs: Callable[[], dict[str, Any]], *, state: Any = None,
               through: Any = None) -> tuple[tuple, list[tuple[int, int]]]:
    """fit stopped by ``stop()`` at the given poll counts and resumed, each time, from the state
    it raised with (saved to the file ``through`` and read back, when given); the result and
    the (epoch, step) of each interruption. ``kwargs()`` makes each call's settings afresh (a
    Generator seed is advanced by the run that uses it)."""
    polls, positions, resume = [0], [], None

    def stop() -> bool:
        polls[0] += 1
        return polls[0] in stops

    while True:
        first = resume is None
        try:
            out = pn.fit(model, params if first else None, x, y, state=state if first else None,
                         resume=resume, stop=stop, **kwargs())
            return out, positions
        except TrainingInterrupted as e:
            positions.append((e.state.epoch, e.state.step))
            resume = e.state
            if through is not None:
                save_training_state(through, model, e.state)
                resume = load_training_state(through).state


def _same_as_uninterrupted(model: Any, x: Any, y: Any, stops: set[int],
                           kwargs: Callable[[], dict[str, Any]], *, stateful: bool = False,
                           through: Any = None) -> tuple[tuple, list[tuple[int, int]]]:
    """The run in pieces, checked bit for bit against the same run in one call; returns the
    uninterrupted result and the positions where the pieces stopped."""
    def fresh() -> tuple[Any, Any]:
        return model.init(np.random.default_rng(1)), (model.init_state() if stateful else None)

    params, state = fresh()
    full = pn.fit(model, params, x, y, state=state, **kwargs())
    params, state = fresh()
    pieced, positions = _in_pieces(model, params, x, y, stops, kwargs, state=state, through=through)
    assert positions, "the run was never interrupted"
    assert _digest(pieced) == _digest(full)
    assert pieced[-1] == full[-1]  # the history: losses, validation, lr scales, per-epoch digests
    return full, positions


# --- the rules' states cross the interruption ----------------------------------------------


# min_delta huge: only the first epoch is ever an improvement. Patience 3 then stops the run after
# epoch 4 of 6, keeping epoch 1's params; after epoch 2 the rule is already waiting (wait 1).
EARLY = pn.EarlyStopping(patience=3, monitor="val_loss", min_delta=1e9)


@pytest.mark.parametrize("stop_at, where", [
    (2 * STEPS, (2, 0)),      # the end of epoch 2: the rule waits, the best is epoch 1
    (2 * STEPS + 2, (2, 2)),  # mid-epoch 3
    (3 * STEPS + 1, (3, 1)),  # mid-epoch 4, the epoch that stops the run
])
def test_early_stopping_that_fires_after_the_interruption(stop_at, where, tmp_path):
    full, positions = _same_as_uninterrupted(
        MODEL, X, Y, {stop_at}, lambda: _base(early_stopping=EARLY), through=tmp_path / "t.npz")
    assert positions == [where]
    history = full[-1]
    # it fired after the interruption, and what it returned is the best epoch's, not the last's
    assert history.stopped_early and history.best_epoch == 1 and len(history.epochs) == 4
    assert _digest(full) == history.epochs[0].digest != history.epochs[-1].digest


def test_the_saved_early_stopping_state_is_mid_wait():
    """The premise of the test above: at the interruption the rule has a best and is waiting,
    so a resumed run that started the rule afresh would stop elsewhere."""
    params = MODEL.init(np.random.default_rng(1))
    with pytest.raises(TrainingInterrupted) as info:
        pn.fit(MODEL, params, X, Y, stop=_stop_at(10),
               **_base(early_stopping=EARLY))
    saved = info.value.state
    assert (saved.epoch, saved.step) == (2, 2)
    assert saved.early_stopping.best_epoch == 1 and saved.early_stopping.wait == 1
    assert not saved.early_stopping.stopped and saved.best_params is not None


# min_delta huge and patience 1: the scale halves after every epoch from the second on
PLATEAU = pn.ReduceLROnPlateau(factor=0.5, patience=1, monitor="loss", min_delta=1e9)


@pytest.mark.parametrize("stop_at, where", [(2 * STEPS, (2, 0)), (2 * STEPS + 3, (2, 3)),
                                            (4 * STEPS + 1, (4, 1))])
def test_a_plateau_scale_that_changes_across_the_interruption(stop_at, where):
    full, positions = _same_as_uninterrupted(MODEL, X, Y, {stop_at}, lambda: _base(plateau=PLATEAU))
    assert positions == [where]
    assert [e.lr_scale for e in full[-1].epochs] == [1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]


def test_both_rules_through_several_interruptions(tmp_path):
    """Both rules, stopped five times (twice back to back), through a file each time."""
    rules = lambda: _base(early_stopping=pn.EarlyStopping(patience=4, monitor="loss", min_delta=1e9),
                          plateau=PLATEAU, epochs=8)
    full, positions = _same_as_uninterrupted(MODEL, X, Y, {2, 5, 8, 9, 13}, rules,
                                             through=tmp_path / "t.npz")
    assert positions == [(0, 2), (1, 1), (2, 0), (2, 1), (3, 1)]
    assert full[-1].stopped_early and len(full[-1].epochs) == 5


@pytest.mark.parametrize("lr", [1.0, 2.0])
def test_a_resumed_run_diverges_naming_the_same_last_loss(lr):
    """The last loss crosses the interruption: a run stopped just before the step where it
    diverges reports, resumed, the loss of the step before it, as the uninterrupted run does."""
    x = X
    y = x @ np.random.default_rng(3).standard_normal((4, 2)).astype("float32")
    model = pn.Sequential([pn.Dense(4, 16), pn.Tanh(), pn.Dense(16, 2)])
    kwargs = {"lr": lr, "epochs": 20, "batch_size": BATCH, "seed": 0}
    with pytest.raises(pn.DivergenceError) as whole:
        pn.fit(model, model.init(np.random.default_rng(1)), x, y, **kwargs)
    e = whole.value
    assert e.last_finite_loss is not None and e.epoch > 1
    before = (e.epoch - 1) * e.steps_per_epoch + e.step - 1  # the poll just before that step
    with pytest.raises(TrainingInterrupted) as stopped:
        pn.fit(model, model.init(np.random.default_rng(1)), x, y,
               stop=_stop_at(before), **kwargs)
    with pytest.raises(pn.DivergenceError) as resumed:
        pn.fit(model, None, x, y, resume=stopped.value.state, **kwargs)
    r = resumed.value
    assert (r.epoch, r.step, r.last_finite_loss) == (e.epoch, e.step, e.last_finite_loss)
    assert str(r) == str(e)


# --- runs of every kind ------------------------------------------------------------------------


@pytest.mark.parametrize("stops", [{2}, {4}, {3, 7, 11}])
def test_unshuffled(stops):
    _, positions = _same_as_uninterrupted(MODEL, X, Y, stops, lambda: _base(shuffle=False))
    assert len(positions) == len(stops)


@pytest.mark.parametrize("seed", [0, 123, 2**40])
def test_int_seeds(seed):
    _same_as_uninterrupted(MODEL, X, Y, {6}, lambda: _base(seed=seed))


def test_a_generator_seed():
    full, _ = _same_as_uninterrupted(MODEL, X, Y, {3, 10}, lambda: _base(seed=np.random.default_rng(5)))
    # the Generator is the run's source of randomness: another gives another run
    other = pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, **_base(seed=np.random.default_rng(6)))
    assert _digest(other) != _digest(full)


@pytest.mark.parametrize("bit_generator", ["MT19937", "PCG64DXSM", "Philox", "SFC64"])
def test_a_generator_of_another_bit_generator_through_a_file(bit_generator, tmp_path):
    """The state of MT19937 (a key array), Philox (counter, key and buffer arrays) and the rest
    goes through the file's JSON header and back."""
    def seed() -> np.random.Generator:
        return np.random.Generator(getattr(np.random, bit_generator)(3))

    _same_as_uninterrupted(MODEL, X, Y, {6}, lambda: _base(seed=seed()), through=tmp_path / "t.npz")
    saved = load_training_state(tmp_path / "t.npz").state
    assert saved.shuffle_rng["bit_generator"] == saved.layer_rng["bit_generator"] == bit_generator


def test_a_generator_that_cannot_spawn_is_refused_clearly():
    bit = np.random.MT19937()
    bit._legacy_seeding(3)  # what np.random.RandomState(3) does: no SeedSequence behind it
    with pytest.raises(pn.ArgumentError, match="seed"):
        pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, **_base(seed=np.random.Generator(bit)))


def test_a_float64_model_through_a_file(tmp_path):
    x, y = _data(dtype="float64")
    model = _mlp("float64")
    kwargs = lambda: _base(validation=None, plateau=PLATEAU, optimizer=pn.Adam(pn.CosineDecay(0.02, 24)))
    full, _ = _same_as_uninterrupted(model, x, y, {5, 8}, kwargs, through=tmp_path / "t.npz")
    assert all(a.dtype == np.float64 for a in pn.tree_leaves(full[0]))


def test_a_batchnorm_model_with_both_rules(tmp_path):
    model = pn.Sequential([pn.Dense(4, 8), pn.BatchNorm(8), pn.ReLU(), pn.Dropout(0.1), pn.Dense(8, 3)])
    kwargs = lambda: _base(early_stopping=EARLY, plateau=PLATEAU)
    full, _ = _same_as_uninterrupted(model, X, Y, {5, 9}, kwargs, stateful=True, through=tmp_path / "t.npz")
    assert full[-1].stopped_early and len(full) == 3


# --- the checkpoint callback ------------------------------------------------------------------


@pytest.mark.parametrize("stop_at, where", [
    (6, (1, 2)),   # step 6 of the run: checkpoint_every and stop on the same step
    (8, (2, 0)),   # the end of epoch 2: the epoch's checkpoint, then stop
    (5, (1, 1)),   # a step no checkpoint falls on: the interruption's own
])
def test_the_checkpoint_gets_each_state_once(stop_at, where):
    handed: list[TrainingState] = []
    params = MODEL.init(np.random.default_rng(1))
    with pytest.raises(TrainingInterrupted) as info:
        pn.fit(MODEL, params, X, Y, checkpoint=handed.append, checkpoint_every=3,
               stop=_stop_at(stop_at), **_base())
    positions = [(s.epoch, s.step) for s in handed]
    assert positions[-1] == where == (info.value.state.epoch, info.value.state.step)
    assert positions.count(where) == 1 and len(set(positions)) == len(positions), positions
    assert pn.params_digest(handed[-1].params) == pn.params_digest(info.value.state.params)


def test_a_run_in_pieces_hands_the_checkpoint_what_the_whole_run_does():
    """Stopped where a checkpoint falls, the pieces together hand over each state once, the
    states the uninterrupted run hands over."""
    whole: list[TrainingState] = []
    pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, checkpoint=whole.append,
           checkpoint_every=3, **_base())
    pieces: list[TrainingState] = []
    _in_pieces(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, {6, 8, 9},
               lambda: _base(checkpoint=pieces.append, checkpoint_every=3))
    assert [(s.epoch, s.step) for s in pieces] == [(s.epoch, s.step) for s in whole]
    assert [pn.params_digest(s.params) for s in pieces] == [pn.params_digest(s.params) for s in whole]


# --- a custom optimizer -----------------------------------------------------------------------


class Momentum:
    """A plain class (not attrs): its instances' reprs carry their addresses."""

    def __init__(self, lr: float = 0.05, beta: float = 0.9) -> None:
        self.lr, self.beta = lr, beta

    def init(self, params: Any) -> Any:
        return pn.tree_map(np.zeros_like, params)

    def update(self, params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
        velocity = pn.tree_map(lambda v, g: self.beta * v + g, state, grads)
        return pn.tree_map(lambda p, v: p - self.lr * v, params, velocity), velocity


class Nesterov(Momentum):
    pass


def test_a_custom_optimizer_resumes_with_another_instance_of_its_class(tmp_path):
    assert repr(Momentum()) != repr(Momentum())  # the address differs; the class does not
    full, _ = _same_as_uninterrupted(MODEL, X, Y, {3, 9}, lambda: _base(optimizer=Momentum()),
                                     through=tmp_path / "t.npz")
    adam = pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, **_base())
    assert _digest(adam) != _digest(full)


def test_a_custom_optimizer_of_another_class_is_refused():
    with pytest.raises(TrainingInterrupted) as info:
        pn.fit(MODEL, MODEL.init(np.random.default_rng(1)), X, Y, stop=lambda: True,
               **_base(optimizer=Momentum()))
    with pytest.raises(pn.ArgumentError, match=r"cannot resume: .*optimizer: saved '<[\w.]*Momentum>', "
                                               r"now '<[\w.]*Nesterov>'"):
        pn.fit(MODEL, None, X, Y, resume=info.value.state, **_base(optimizer=Nesterov()))


# --- refusals -------------------------------------------------------------------------------


def _deep(middle: Any) -> pn.Sequential:
    return pn.Sequential([pn.Dense(4, 8), pn.Tanh(), pn.Dense(8, 8), pn.Tanh(), pn.Dense(8, 8),
                          middle, pn.Dense(8, 8), pn.Tanh(), pn.Dense(8, 3)])


def _interrupted(model: Any = MODEL, **changes: Any) -> TrainingState:
    with pytest.raises(TrainingInterrupted) as info:
        pn.fit(model, model.init(np.random.default_rng(1)), X, Y,
               stop=_stop_at(6), **_base(**changes))
    return info.value.state


def test_a_model_with_one_other_layer_in_the_middle_is_refused_showing_where():
    saved = _interrupted(_deep(pn.Tanh()))
    with pytest.raises(pn.ArgumentError, match="cannot resume") as info:
        pn.fit(_deep(pn.ReLU()), None, X, Y, resume=saved, **_base())
    message = str(info.value)
    found = re.search(r"model: saved (.*?), now (.*?); resume with", message)
    assert found, message
    saved_text, now_text = found.groups()
    # each side is shown from a little before the first difference, not from the start
    assert saved_text.startswith("...") and now_text.startswith("...")
    assert "Sequential(" not in saved_text and "Sequential(" not in now_text
    assert "), Tanh(), Dense(in_features=8" in saved_text
    assert "), ReLU(), Dense(in_features=8" in now_text
    assert message.count(": saved ") == 1  # only the setting that differs


def test_a_training_checkpoint_instead_of_its_state_is_refused(tmp_path):
    save_training_state(tmp_path / "t.npz", MODEL, _interrupted())
    checkpoint = load_training_state(tmp_path / "t.npz")
    assert isinstance(checkpoint, TrainingCheckpoint)
    with pytest.raises(pn.ArgumentError, match=r"must be a TrainingState .*got TrainingCheckpoint; "
                                               r"pass its \.state"):
        pn.fit(MODEL, None, X, Y, resume=checkpoint, **_base())
    resumed = pn.fit(MODEL, None, X, Y, resume=checkpoint.state, **_base())  # as it says
    assert len(resumed[-1].epochs) == 6


@pytest.mark.parametrize("change", [
    {"step": 10**6}, {"step": STEPS}, {"step": -1}, {"epoch": 7}, {"epoch": -1}, {"epoch": 10**6},
])
def test_a_position_outside_the_run_is_refused(change):
    saved = attrs.evolve(_interrupted(), **change)
    with pytest.raises(pn.ArgumentError, match=r"cannot resume: the saved position \(epoch -?\d+, "
                                               r"step -?\d+\) is not one of a run of 6 epochs of 4 steps"):
        pn.fit(MODEL, None, X, Y, resume=saved, **_base())


def test_the_last_position_of_the_run_is_not_refused():
    saved = attrs.evolve(_interrupted(), epoch=6, step=0)
    assert len(pn.fit(MODEL, None, X, Y, resume=saved, **_base())[-1].epochs) == 1


# --- BatchNorm and the layers' state --------------------------------------------------------


BN = pn.Sequential([pn.Dense(4, 6), pn.BatchNorm(6), pn.ReLU(),
                    pn.Residual(pn.Sequential([pn.Dense(6, 6), pn.BatchNorm(6)])), pn.Dense(6, 3)])


@pytest.mark.parametrize("n, batch", [(33, 16), (61, 20), (9, 4)])
def test_a_last_batch_of_one_sample_is_refused_up_front(n, batch):
    x, y = _data(n)
    batches: list[int] = []
    with pytest.raises(pn.ArgumentError, match=rf"fit: {n} samples in batches of {batch} leave a "
                                               r"last batch of one sample"):
        pn.fit(BN, BN.init(np.random.default_rng(0)), x, y, loss="softmax_cross_entropy", lr=0.1,
               batch_size=batch, state=BN.init_state(), on_batch=lambda done, total: batches.append(done))
    assert batches == []  # before any step
    # one sample more (a last batch of two) trains
    x, y = _data(n + 1)
    pn.fit(BN, BN.init(np.random.default_rng(0)), x, y, loss="softmax_cross_entropy", lr=0.1,
           batch_size=batch, state=BN.init_state())


def _bad_states() -> list[tuple[str, Any, str]]:
    params = BN.init(np.random.default_rng(0))
    good = list(BN.init_state())
    no_var = list(good)
    no_var[1] = {"mean": good[1]["mean"]}
    nested = list(good)
    nested[3] = {"block": ({}, {"mean": np.zeros(5, np.float32), "var": np.ones(6, np.float32)}),
                 "projection": {}}
    listed = list(good)
    listed[1] = {"mean": [0.0] * 6, "var": good[1]["var"]}
    return [
        ("the params", params,
         r"state\[0\] has the wrong structure \(\{'w': \(4, 6\), 'b': \(6,\)\}, where \{\} is expected\)"),
        ("no var", tuple(no_var), r"state\[1\] has the wrong structure \(\{'mean': \(6,\)\}, where "
                                  r"\{'mean': \(6,\), 'var': \(6,\)\} is expected\)"),
        ("nested shape", tuple(nested), r"state\[3\]\['block'\]\[1\]\['mean'\] has shape \(5,\)"),
        ("a list leaf", tuple(listed), r"state\[1\]\['mean'\] should be an array of shape \(6,\)"),
        ("too short", tuple(good[:3]), r"state has the wrong structure"),
        ("a dict", {"mean": 0}, r"state has the wrong structure \(\{'mean': 'int'\}"),
    ]


@pytest.mark.parametrize("what, state, message", _bad_states(), ids=[c[0] for c in _bad_states()])
def test_a_state_of_the_wrong_structure_is_an_argument_error_naming_the_path(what, state, message):
    params = BN.init(np.random.default_rng(0))
    x, y = _data(32)
    calls = {
        "fit": lambda: pn.fit(BN, params, x, y, loss="softmax_cross_entropy", lr=0.1, state=state),
        "predict": lambda: pn.predict(BN, params, x, state=state),
        "evaluate": lambda: pn.evaluate(BN, params, x, y, state=state),
    }
    for who, call in calls.items():
        with pytest.raises(pn.ArgumentError, match=rf"^({who}): {message}"):
            call()


def test_evaluates_state_error_names_evaluate():
    x, y = _data(32)
    with pytest.raises(pn.ArgumentError, match=r"^evaluate: state\[1\] has the wrong structure"):
        pn.evaluate(BN, BN.init(np.random.default_rng(0)), x, y,
                    state=(BN.init_state()[0], {}, *BN.init_state()[2:]))


def test_a_resume_state_whose_layer_state_has_the_wrong_structure_is_refused():
    model = pn.Sequential([pn.Dense(4, 6), pn.BatchNorm(6), pn.Dense(6, 3)])
    with pytest.raises(TrainingInterrupted) as info:
        pn.fit(model, model.init(np.random.default_rng(0)), X, Y, state=model.init_state(),
               stop=lambda: True, **_base())
    broken = attrs.evolve(info.value.state, model_state=({}, {"mean": np.zeros(6, np.float32)}, {}))
    with pytest.raises(pn.ArgumentError, match=r"fit: state\[1\] has the wrong structure"):
        pn.fit(model, None, X, Y, resume=broken, **_base())
