"""Every optimizer's and transformation's state is plain data (masks, partitions, accumulation
and averages included): a training checkpoint saves and loads it, and a run stopped, saved, loaded
and resumed gives the uninterrupted run's params bit for bit (fit takes any transformation as its
optimizer). The examples are the registry's (tests/registry_optim.py)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.errors import TrainingInterrupted
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.tree import tree_leaves, tree_map

from registry_optim import OPTIMIZERS, TRANSFORMATIONS

MODEL = pn.Sequential([pn.Dense(4, 8), pn.Tanh(), pn.Dense(8, 3)])
RNG = np.random.default_rng(5)
X = RNG.standard_normal((40, 4)).astype("float32")
Y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
PARAMS = MODEL.init(np.random.default_rng(1))
LABELS = tree_map(lambda a: "train" if a.ndim > 1 else "frozen", PARAMS)  # biases stay put

# every optimizer and transformation of the registry (tests/registry_optim.py)
EXAMPLES = [pytest.param(record, id=f"{cls.__name__}-{i}")
            for registry in (OPTIMIZERS, TRANSFORMATIONS)
            for cls, entry in registry.items() for i, record in enumerate(entry.examples)]


def _fit(optimizer, **kwargs):
    return pn.fit(MODEL, kwargs.pop("params", PARAMS), X, Y, loss="softmax_cross_entropy",
                  optimizer=optimizer, epochs=3, batch_size=8, seed=3, **kwargs)


@pytest.mark.parametrize("opt", EXAMPLES)
def test_a_run_saved_loaded_and_resumed_is_the_uninterrupted_run(opt, tmp_path):
    full, _ = _fit(opt)
    polls, resume, path = [0], None, tmp_path / "state.npz"

    def stop():
        polls[0] += 1
        return polls[0] in (4, 7, 13)  # 5 steps an epoch: mid-group, mid-epoch and at an epoch's end

    for pieces in range(1, 5):
        try:
            params, _ = _fit(opt, params=None if resume else PARAMS, resume=resume, stop=stop)
            break
        except TrainingInterrupted as e:
            save_training_state(path, MODEL, e.state)
            resume = load_training_state(path).state
    assert pieces == 4
    for a, b in zip(tree_leaves(params), tree_leaves(full), strict=True):
        assert a.tobytes() == b.tobytes()


def test_frozen_biases_come_out_of_fit_bit_for_bit():
    trained, _ = _fit(pn.partition({"train": pn.Adam(1e-2), "frozen": pn.SetToZero()}, LABELS))
    for layer in (0, 2):
        assert trained[layer]["b"].tobytes() == PARAMS[layer]["b"].tobytes()
        assert not np.array_equal(trained[layer]["w"], PARAMS[layer]["w"])


def test_an_average_state_saves_and_loads_as_an_optimizer_state_does(tmp_path):
    """A training state has no field for the average yet (fit's part): here it rides in opt_state,
    which the checkpoint stores as it would store the average's own tree."""
    saved = []
    trained, _ = _fit(pn.Adam(1e-2), checkpoint=saved.append)
    ema = pn.EMA(0.9, warmup=True)
    state = ema.init(PARAMS)
    for _ in range(3):
        state = ema.update(state, trained)
    save_training_state(tmp_path / "s.npz", MODEL, attrs.evolve(saved[-1], opt_state=state))
    loaded = load_training_state(tmp_path / "s.npz").state.opt_state
    assert type(loaded) is pn.State and loaded.step == 3
    for a, b in zip(tree_leaves(ema.averaged(loaded)), tree_leaves(ema.averaged(state)), strict=True):
        assert a.tobytes() == b.tobytes() and not a.flags.writeable
    after_loaded, after = ema.update(loaded, PARAMS), ema.update(state, PARAMS)
    for a, b in zip(tree_leaves(after_loaded.slots), tree_leaves(after.slots), strict=True):
        assert a.tobytes() == b.tobytes()
