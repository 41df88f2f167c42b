"""The package's layers (docs/ARCHITECTURE.md): each module imports only from its own layer or
the ones below, so math never reaches for files and nothing below the recipes knows them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "purenn"

# bottom to top; a module may import from its own layer and the layers listed before it
LAYERS = [
    ("foundations", ["purenn.errors", "purenn.validation", "purenn.tree", "purenn.rng"]),
    ("math", ["purenn.layers", "purenn.losses", "purenn.metrics", "purenn.optim.schedules"]),
    ("updates", ["purenn.optim"]),
    ("training", ["purenn.training", "purenn.training_state", "purenn.monitors", "purenn.gradcheck",
                  "purenn.summary"]),
    ("files", ["purenn.io"]),
    ("recipes", ["purenn.recipes"]),
    ("experiments", ["purenn.experiments"]),
]


def layer_of(module: str) -> int:
    """Index in LAYERS of the most specific prefix naming ``module``."""
    best, rank = "", -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, rank = p, i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it")
    return rank


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    me = module_name(path)
    rank = layer_of(me)
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            if name.startswith("purenn.") and layer_of(name) > rank:
                raise AssertionError(
                    f"{me} ({LAYERS[rank][0]}) imports {name} ({LAYERS[layer_of(name)][0]}), "
                    "a layer above it"
                )


def test_math_does_no_io():
    io_modules = {"os", "pathlib", "urllib", "gzip", "json", "tempfile", "shutil", "zipfile"}
    for path in MODULES:
        if layer_of(module_name(path)) > layer_of("purenn.gradcheck"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not {n.split(".")[0] for n in names} & io_modules, f"{path.name} imports {names}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("print", "open"):
                raise AssertionError(f"{path.name} calls {node.func.id}()")  # type: ignore[attr-defined]
