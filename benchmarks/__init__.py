"""Benchmark scripts (run them directly: `python benchmarks/NAME.py`); not part of the package."""
