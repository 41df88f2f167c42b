"""The package's layers (docs/ARCHITECTURE.md): each module imports only from its own layer or
the ones below, so math never reaches for files and nothing below the recipes knows them; a
module uses only the public names of another (a helper two modules need is public), and none
imports the package root."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "purenn"

# bottom to top; a module may import from its own layer and the layers listed before it
LAYERS = [
    ("foundations", ["purenn.errors", "purenn.validation", "purenn.tree", "purenn.rng", "purenn.version"]),
    ("math", ["purenn.layers", "purenn.losses", "purenn.metrics", "purenn.optim.schedules"]),
    ("updates", ["purenn.optim"]),
    ("training", ["purenn.training", "purenn.training_state", "purenn.monitors", "purenn.gradcheck",
                  "purenn.summary", "purenn.splits", "purenn.progress", "purenn.lr_range"]),
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


def _private(name: str) -> bool:
    """``_x`` is private; ``__x__`` (``__version__``, ``__init__``) is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(tree: ast.AST) -> list[str]:
    """What a module takes from other purenn modules that they keep private: a ``_name`` imported
    from one, a private module (``purenn.layers._im2col``) imported, or ``module._name`` read
    through a purenn module it imported."""
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "purenn":
            found += [f"a private module {node.module}" for part in node.module.split(".") if _private(part)]
            found += [f"{node.module}.{a.name}" for a in node.names if _private(a.name)]
            modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "purenn":
                    found += [f"a private module {a.name}" for part in a.name.split(".") if _private(part)]
                    modules.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and getattr(node.value, "id", None) in modules:
            found.append(f"{node.value.id}.{node.attr}")  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    found = private_uses(ast.parse(path.read_text()))
    assert not found, f"{module_name(path)} uses {found}: make each a public name of its module"


def test_the_private_name_check_sees_each_way_of_reaching_in():
    sources = ["from purenn.io.atomic import _process_alive",
               "from purenn.layers._im2col import im2col",
               "import purenn.layers._im2col",
               "from purenn.io import checkpoints\ncheckpoints._fail('x', 'y')",
               "import purenn.io.checkpoints as c\nc._READ_ERRORS"]
    for source in sources:
        assert private_uses(ast.parse(source)), source
    for fine in ["from purenn.version import __version__", "from purenn.layers.base import MISSING",
                 "from numpy.lib import _utils", "import purenn.layers as layers\nlayers.Dense"]:
        assert not private_uses(ast.parse(fine)), fine


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_the_package_root(path):
    """``import purenn`` or ``from purenn import x`` inside the package runs every module (the
    root re-exports them all), whatever layer the importer is in."""
    for node in ast.walk(ast.parse(path.read_text())):
        roots = ([a.name for a in node.names if a.name == "purenn"] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module == "purenn" else [])
        assert not roots, f"{module_name(path)} imports the package root; import the module it needs"


def test_the_version_is_pyprojects():
    """purenn.version.__version__ (what run records write, re-exported as purenn.__version__) is
    pyproject.toml's version, which packaging uses."""
    tomllib = pytest.importorskip("tomllib")
    import purenn
    from purenn.version import __version__

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    assert __version__ == pyproject["project"]["version"]
    assert purenn.__version__ is __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_every_package_folder_is_installed():
    """pyproject's explicit package list names every folder of purenn/ (an editable install
    hides a missing one; a wheel would lack it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(p) for p in PACKAGE.rglob("__init__.py")} | {"purenn"}
    assert folders <= listed, f"add to pyproject.toml's packages: {sorted(folders - listed)}"
