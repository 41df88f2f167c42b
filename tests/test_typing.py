"""The package type-checks: ``mypy`` (configured in pyproject.toml) reports no error, and the
``py.typed`` marker ships so editors and users' type checkers read purenn's annotations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_py_typed_marker_ships():
    import purenn

    assert (Path(purenn.__file__).parent / "py.typed").is_file()
