"""Learning-rate schedules against their formulas: every example of the schedule registry
(``SCHEDULES``, tests/registry_optim.py) against its rule, then by hand at their boundaries, and
their argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from purenn.optim.schedules import Constant, CosineDecay, ExponentialDecay, StepDecay, WarmUp

from registry_optim import SCHEDULES

EXAMPLES = [pytest.param(s, entry.rule, id=f"{cls.__name__}-{i}")
            for cls, entry in SCHEDULES.items() for i, s in enumerate(entry.examples)]


@pytest.mark.parametrize("schedule, rule", EXAMPLES)
def test_every_schedule_follows_its_rule(schedule, rule):
    """Every step to 1100, past each example's changes (warm-up ends, decays, the cosine's end)."""
    for step in range(1100):
        got, want = schedule(step), rule(schedule, step)
        assert type(got) is float and got >= 0
        assert got == pytest.approx(want, rel=1e-13, abs=1e-300), f"{schedule!r} at step {step}"


def test_constant():
    assert [Constant(0.3)(t) for t in (0, 1, 10**6)] == [0.3, 0.3, 0.3]


def test_step_decay_at_its_boundaries():
    s = StepDecay(0.1, step_size=3, gamma=0.5)
    assert [s(t) for t in (0, 2, 3, 5, 6, 9)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]


def test_exponential_decay():
    s = ExponentialDecay(0.1, gamma=0.5, decay_steps=4)
    assert s(0) == 0.1 and s(4) == 0.05 and s(8) == 0.025
    assert s(2) == pytest.approx(0.1 * 0.5**0.5, rel=1e-15)


def test_cosine_decay_at_start_half_and_end():
    s = CosineDecay(0.1, total_steps=100, final_lr=0.01)
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(50) == pytest.approx(0.055, rel=1e-15)
    assert s(25) == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-15)
    assert s(100) == pytest.approx(0.01, rel=1e-15)
    assert s(1000) == s(100)


def test_warm_up_ramps_linearly_from_zero_then_hands_over():
    inner = CosineDecay(0.1, total_steps=20)
    s = WarmUp(inner, warmup_steps=4)
    assert [s(t) for t in range(5)] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1], rel=1e-15)
    assert [s(4 + k) for k in range(25)] == [inner(k) for k in range(25)]
    assert WarmUp(0.2, 2).schedule == Constant(0.2)
    assert WarmUp(0.2, 0)(0) == 0.2


@pytest.mark.parametrize("schedule", [Constant(0.1), StepDecay(0.1, 2), CosineDecay(0.1, 5), WarmUp(0.1, 3)])
def test_schedules_refuse_negative_or_fractional_steps(schedule):
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="the step must be an integer >= 0"):
            schedule(bad)
    assert schedule(np.int64(2)) == schedule(2)


@given(
    lr=st.floats(1e-6, 10.0),
    final_fraction=st.floats(0.0, 1.0),
    total=st.integers(1, 10_000),
    steps=st.lists(st.integers(0, 20_000), min_size=2, max_size=2),
)
def test_cosine_decay_is_monotone_between_lr_and_final_lr(lr, final_fraction, total, steps):
    s = CosineDecay(lr, total, final_lr=lr * final_fraction)
    early, late = sorted(steps)
    assert s.final_lr <= s(late) <= s(early) <= lr * (1 + 1e-15)


