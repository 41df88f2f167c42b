"""Stopping and continuing fit: a resumed run gives exactly the params of an uninterrupted one."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.errors import TrainingInterrupted
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.rng import generator_from_state, generator_state
from purenn.training_state import TrainingState


def _model() -> pn.Sequential:
    """BatchNorm (state), dropout (a random stream per step) and a residual block."""
    return pn.Sequential([
        pn.Dense(4, 12), pn.BatchNorm(12), pn.ReLU(), pn.Dropout(0.25),
        pn.Residual(pn.Sequential([pn.Dense(12, 12), pn.Tanh()])), pn.Dense(12, 3),
    ])


def _data(n: int = 90):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)


MODEL = _model()
X, Y = _data()
KWARGS = dict(loss="softmax_cross_entropy", optimizer=pn.Adam(pn.CosineDecay(1e-2, 60)), epochs=4,
              batch_size=16, validation=(X[:30], Y[:30]), seed=7,
              digest=lambda p, s: pn.params_digest(p, state=s))


def _fresh():
    return MODEL.init(np.random.default_rng(1)), MODEL.init_state()


def _uninterrupted():
    params, state = _fresh()
    return pn.fit(MODEL, params, X, Y, state=state, **KWARGS)


def _digest(result) -> str:
    return pn.params_digest(result[0], state=result[1])


def _run_in_pieces(stops: set[int], through_file: str | None = None):
    """fit called again and again, each call stopped by ``stop()`` at the given poll counts and
    resumed from the state it raised with (saved to a file and read back, when asked)."""
    polls, pieces, resume = [0], 0, None

    def stop() -> bool:
        polls[0] += 1
        return polls[0] in stops

    while True:
        pieces += 1
        params, state = (None, None) if resume is not None else _fresh()
        try:
            return pn.fit(MODEL, params, X, Y, state=state, resume=resume, stop=stop, **KWARGS), pieces
        except TrainingInterrupted as e:
            resume = e.state
            if through_file is not None:
                save_training_state(through_file, MODEL, e.state)
                resume = load_training_state(through_file).state


def test_k_calls_each_resuming_the_last_equal_one_call(tmp_path):
    full = _uninterrupted()
    # 6 steps an epoch: polls 3 and 9 stop mid-epoch, 7 at an epoch's end, 16 and 17 back to back
    pieced, pieces = _run_in_pieces({3, 7, 9, 16, 17}, through_file=str(tmp_path / "state.npz"))
    assert pieces == 6
    assert _digest(pieced) == _digest(full)
    assert pieced[2] == full[2]  # the history too: losses, validation, per-epoch digests
    assert [e.digest for e in full[2].epochs] == [_digest(_epoch_params(k)) for k in (1, 2, 3, 4)]


def _epoch_params(k: int):
    """Params and state of the same run stopped after ``k`` epochs (a schedule of 60 steps
    keeps its rates whatever the number of epochs)."""
    params, state = _fresh()
    out = pn.fit(MODEL, params, X, Y, state=state, **{**KWARGS, "epochs": k})
    return out[0], out[1]


def test_a_mid_epoch_state_resumes_the_same_shuffled_order():
    saved: list[TrainingState] = []
    params, state = _fresh()
    pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append, checkpoint_every=4, **KWARGS)
    mid = [s for s in saved if not s.at_epoch_end]
    ends = [s for s in saved if s.at_epoch_end]
    # every 4 of 24 steps: 12 and 24 end epochs, so 4, 8, 16 and 20 are mid-epoch states
    assert [s.epoch for s in ends] == [1, 2, 3, 4]
    assert [(s.epoch, s.step) for s in mid] == [(0, 4), (1, 2), (2, 4), (3, 2)]
    full = _uninterrupted()
    for s in mid:
        assert _digest(pn.fit(MODEL, None, X, Y, resume=s, **KWARGS)) == _digest(full)


def test_the_state_is_plain_data_that_saves_and_loads_equal(tmp_path):
    saved: list[TrainingState] = []
    params, state = _fresh()
    pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append, checkpoint_every=5,
           early_stopping=pn.EarlyStopping(5), plateau=pn.ReduceLROnPlateau(), **KWARGS)
    original = saved[3]
    save_training_state(tmp_path / "t.npz", MODEL, original, metadata={"note": "x"})
    back = load_training_state(tmp_path / "t.npz")
    assert back.model == MODEL and back.metadata == {"note": "x"}
    loaded = back.state
    for field in attrs.fields(TrainingState):
        a, b = getattr(original, field.name), getattr(loaded, field.name)
        if field.name in ("params", "model_state", "opt_state", "best_params", "best_model_state"):
            assert a is not None, field.name  # every tree is there (early stopping saw a best)
            assert _same_tree(_plain(a), _plain(b)), field.name
        else:
            assert a == b, field.name
    slots = [s.slots for s in loaded.opt_state if isinstance(s, pn.State)]
    assert slots and all(not leaf.flags.writeable for leaf in pn.tree_leaves(slots))


def _plain(tree):
    """Optimizer ``State`` records as (step, slots) pairs, for comparing trees."""
    if isinstance(tree, pn.State):
        return (np.asarray(tree.step), _plain(tree.slots))
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return tuple(_plain(v) for v in tree)
    return tree


def _same_tree(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (pn.tree_map(lambda v: 0, a) == pn.tree_map(lambda v: 0, b)
            and all(np.array_equal(u, v) and np.asarray(u).dtype == np.asarray(v).dtype
                    for u, v in zip(pn.tree_leaves(a), pn.tree_leaves(b))))


@pytest.mark.parametrize("change, field", [
    ({"epochs": 5}, "epochs"),
    ({"batch_size": 8}, "batch_size"),
    ({"optimizer": pn.Adam(1e-3)}, "optimizer"),
    ({"x": X[::-1].copy()}, "data"),
    ({"early_stopping": pn.EarlyStopping(2)}, "early_stopping"),
])
def test_resuming_with_other_settings_is_refused_naming_the_field(change, field):
    saved: list[TrainingState] = []
    params, state = _fresh()
    pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append, **KWARGS)
    kwargs = {**KWARGS, **{k: v for k, v in change.items() if k != "x"}}
    x = change.get("x", X)
    with pytest.raises(pn.ArgumentError, match=rf"cannot resume: .*\b{field}: saved"):
        pn.fit(MODEL, None, x, Y, resume=saved[0], **kwargs)


def test_resume_takes_its_params_from_the_state():
    saved: list[TrainingState] = []
    params, state = _fresh()
    pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append, **KWARGS)
    with pytest.raises(pn.ArgumentError, match="pass params=None"):
        pn.fit(MODEL, params, X, Y, resume=saved[0], **KWARGS)
    with pytest.raises(pn.ArgumentError, match="must be a TrainingState"):
        pn.fit(MODEL, None, X, Y, resume={"epoch": 1}, **KWARGS)


def test_stop_raises_with_the_state_and_hands_it_to_checkpoint():
    saved: list[TrainingState] = []
    params, state = _fresh()
    with pytest.raises(TrainingInterrupted, match=r"after step 2 of 6 of epoch 1 of 4") as info:
        pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append,
               stop=iter([False, True]).__next__, **KWARGS)
    assert saved[-1] is info.value.state and info.value.state.step == 2


def test_a_finished_state_resumes_to_the_same_result():
    saved: list[TrainingState] = []
    params, state = _fresh()
    full = pn.fit(MODEL, params, X, Y, state=state, checkpoint=saved.append, **KWARGS)
    assert saved[-1].finished
    again = pn.fit(MODEL, None, X, Y, resume=saved[-1], **KWARGS)
    assert _digest(again) == _digest(full) and again[2] == full[2]


def test_a_generator_state_restores_draws_and_spawns():
    rng = np.random.default_rng(42).spawn(3)[1]
    rng.random(5)
    rng.spawn(2)
    saved = generator_state(rng)
    expected = (rng.random(4), [g.random() for g in rng.spawn(3)], rng.permutation(10))
    back = generator_from_state(saved)
    got = (back.random(4), [g.random() for g in back.spawn(3)], back.permutation(10))
    assert np.array_equal(expected[0], got[0]) and expected[1] == got[1]
    assert np.array_equal(expected[2], got[2])
    with pytest.raises(pn.ArgumentError, match="not a saved random generator state"):
        generator_from_state({"bit_generator": "os.system"})
