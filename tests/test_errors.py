"""One hierarchy: every error class purenn defines derives from PurennError and from the built-in
exception callers expect, and the errors purenn raises anywhere are caught by PurennError."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import purenn as pn
import purenn.errors as errors


def test_every_error_class_is_a_purenn_error_exported_at_the_top():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert set(errors.__all__) == {c.__name__ for c in classes}
    for cls in classes:
        assert issubclass(cls, pn.PurennError) and getattr(pn, cls.__name__) is cls
    builtin = {errors.GradientCheckError: AssertionError, errors.ArgumentTypeError: TypeError,
               errors.DivergenceError: FloatingPointError,
               errors.TrainingInterrupted: Exception}  # asked for, not a mistake: no built-in kind
    for cls in classes:
        if cls is not pn.PurennError:
            assert issubclass(cls, builtin.get(cls, ValueError))


@pytest.mark.parametrize("mistake", [
    lambda: pn.Dense(0, 3),
    lambda: pn.Dense(2, 3).forward(pn.Dense(2, 3).init(np.random.default_rng(0)), np.ones((1, 5))),
    lambda: pn.mse(np.ones(3), np.ones(4)),
    lambda: pn.Adam(b1=2.0),
    lambda: pn.fit(pn.Dense(2, 1), {}, np.ones((2, 2)), np.ones((2, 1))),
    lambda: pn.load_checkpoint("/nonexistent/model.npz"),
    lambda: pn.read_idx("/nonexistent/file.idx"),
    lambda: pn.check_gradients(pn.Dense(2, 2), np.ones((1, 3))),
])
def test_one_except_clause_catches_every_purenn_error(mistake):
    with pytest.raises(pn.PurennError):
        mistake()
