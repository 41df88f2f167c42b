"""One hierarchy: every error class purenn defines derives from PurennError and from the built-in
exception callers expect, and the errors purenn raises anywhere are caught by PurennError: no
module of purenn raises a built-in exception class itself."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

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


PACKAGE = Path(pn.__file__).resolve().parent
#: Built-in exceptions purenn raises on purpose (everything else is a PurennError), each with why:
#: NotImplementedError is the contracts' "not defined here" (an abstract method's, and
#: ``output_shape(layer, ...)``'s for a layer without the method, which purenn.summary catches);
#: KeyError is what ``__getitem__`` of a mapping-like result must raise (``dict``'s protocol).
ALLOWED = {"NotImplementedError": {"purenn/layers/base.py:output_shape"},
           "KeyError": {"purenn/experiments/comparison.py:method __getitem__"}}


def builtin_raises(tree: ast.AST, where: str) -> list[str]:
    """``raise X`` / ``raise X(...)`` of a built-in exception class in ``tree`` (a module at
    ``where``), as ``"where:line X"``; an abstract method's NotImplementedError (a method of a class)
    and :data:`ALLOWED`'s are not counted. SystemExit and the like (not Exceptions) are not errors."""
    found = []

    def visit(node: ast.AST, function: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, function, True)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"method {child.name}" if in_class else child.name, False)
            else:
                if isinstance(child, ast.Raise) and child.exc is not None:
                    exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                    name = getattr(exc, "id", None)
                    cls = getattr(builtins, name, None) if isinstance(exc, ast.Name) else None
                    if isinstance(cls, type) and issubclass(cls, Exception):
                        abstract = name == "NotImplementedError" and function.startswith("method ")
                        if not abstract and f"{where}:{function}" not in ALLOWED.get(name, ()):
                            found.append(f"{where}:{child.lineno} {name}")
                visit(child, function, in_class)

    visit(tree, "", False)
    return found


def test_purenn_raises_no_built_in_exception_class():
    found = [raised for path in sorted(PACKAGE.rglob("*.py"))
             for raised in builtin_raises(ast.parse(path.read_text()), str(path.relative_to(PACKAGE.parent)))]
    assert not found, ("raise the fitting PurennError subclass (purenn.errors), keeping the message: "
                       f"{found}")


def test_the_scan_sees_a_built_in_raise_in_each_form():
    planted = {"def f():\n    raise ValueError('x')": ["m.py:2 ValueError"],
               "def f():\n    raise TypeError": ["m.py:2 TypeError"],
               "class C:\n    def f(self):\n        raise KeyError('k') from None": ["m.py:3 KeyError"],
               "def f():\n    raise NotImplementedError": ["m.py:2 NotImplementedError"],
               "class C:\n    def f(self):\n        raise NotImplementedError": [],  # abstract
               "def f():\n    raise SystemExit(143)": [],  # not an error: how SIGTERM ends a run
               "def f():\n    raise pn.ArgumentError('x')": [],
               "def f(e):\n    raise e": []}
    for source, expected in planted.items():
        assert builtin_raises(ast.parse(source), "m.py") == expected, source
