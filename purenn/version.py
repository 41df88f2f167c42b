"""purenn's version, in a module of its own at the bottom of the package, so that any module (the
run records' ``versions`` among them) reads it without importing the package root.

``pyproject.toml``'s ``version`` is the one packaging uses; ``tests/test_architecture.py`` checks
that the two are equal.
"""

__all__ = ["__version__"]

__version__ = "0.2.0"
