"""Every public class of purenn.layers and purenn.optim, and every loss, has its registry entry.

The registries (tests/registry_layers.py, tests/registry_losses.py, tests/registry_optim.py) feed
every check a new member must pass; these tests fail, naming the class, while one is missing, so
a new layer, loss, transformation, optimizer, schedule or weight average cannot skip them.
"Public" is what the package exports (its ``__all__``) and also any class defined in one of its
modules under a public name, exported or not yet.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from types import ModuleType

import pytest

import purenn
import purenn.layers
import purenn.losses
import purenn.optim
from purenn.layers import Layer
from purenn.optim import Average, Optimizer, Schedule, Transformation

from registry_layers import LAYERS
from registry_losses import LOSS_CASES, NOT_LOSSES
from registry_optim import AVERAGES, OPTIMIZERS, SCHEDULES, TRANSFORMATIONS


def _runnable(cls: type, base: type) -> bool:
    """Not an abstract base: a layer defines ``forward``, a transformation ``update`` or ``leaf``,
    an optimizer ``transformation``, a schedule ``__call__``, an average ``update``."""
    needs = {Layer: ("forward",), Transformation: ("update", "leaf"), Optimizer: ("transformation",),
             Schedule: ("__call__",), Average: ("update",)}[base]
    return any(getattr(cls, name) is not getattr(base, name, None) for name in needs)


def public_classes(package: ModuleType, base: type) -> set[type]:
    """Subclasses of ``base`` that ``package`` (or ``purenn``) exports, and those defined under a
    public name in any of its modules, exported or not.

    Only the class its module holds under its name counts: ``@attrs.frozen`` builds a new (slotted)
    class and the one it replaced stays in ``__subclasses__()`` until the garbage collector runs."""
    found = {obj for module in (package, purenn) for name in module.__all__
             if isinstance(obj := getattr(module, name), type) and issubclass(obj, base) and obj is not base}
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    todo = [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            live = getattr(sys.modules.get(sub.__module__), sub.__name__, None) is sub
            public = sub.__module__.startswith(package.__name__ + ".") and not sub.__name__.startswith("_")
            if live and public and _runnable(sub, base):
                found.add(sub)
    return found


KINDS = {  # what the registry is, the package and base class of its members, where to register
    "layer": (LAYERS, purenn.layers, Layer, "LAYERS in tests/registry_layers.py"),
    "transformation": (TRANSFORMATIONS, purenn.optim, Transformation, "TRANSFORMATIONS in tests/registry_optim.py"),
    "optimizer": (OPTIMIZERS, purenn.optim, Optimizer, "OPTIMIZERS in tests/registry_optim.py"),
    "schedule": (SCHEDULES, purenn.optim, Schedule, "SCHEDULES in tests/registry_optim.py"),
    "weight average": (AVERAGES, purenn.optim, Average, "AVERAGES in tests/registry_optim.py"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_public_class_has_a_registry_entry(kind):
    registry, package, base, where = KINDS[kind]
    classes = public_classes(package, base)
    assert classes, f"found no {kind} classes in {package.__name__}"
    missing = sorted(c.__name__ for c in classes - set(registry))
    assert not missing, f"{kind} classes without an entry in {where}: {missing}"
    stale = sorted(c.__name__ for c in set(registry) - classes)
    assert not stale, f"{where} has entries for classes purenn does not offer: {stale}"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "layer"])
def test_every_entry_holds_examples_of_its_own_class(kind):
    registry, _, _, where = KINDS[kind]
    for cls, entry in registry.items():
        assert entry.examples, f"{where}: {cls.__name__} has no examples"
        wrong = [e for e in entry.examples if type(e) is not cls]
        assert not wrong, f"{where}: the examples of {cls.__name__} include {wrong}"


def test_every_loss_has_a_case():
    defined = {name for name, obj in vars(purenn.losses).items()
               if inspect.isfunction(obj) and obj.__module__ == "purenn.losses" and not name.startswith("_")}
    losses = defined - NOT_LOSSES
    assert {"mse", "softmax_cross_entropy", "binary_cross_entropy"} <= losses
    missing = sorted(losses - {loss.__name__ for loss, _ in LOSS_CASES.values()})
    assert not missing, f"losses without an entry in LOSS_CASES in tests/registry_losses.py: {missing}"
    assert set(purenn.losses.LOSSES) == losses, "purenn.losses.LOSSES must name every loss"
    assert set(purenn.losses.__all__) - {"one_hot"} == losses, "purenn.losses.__all__ must name every loss"


def test_every_module_name_is_exported_by_its_package_and_by_purenn():
    """What the registries find by ``__all__``: each module of purenn.layers and purenn.optim lists
    its names in ``__all__``, its package re-exports exactly those, and purenn re-exports the
    package's, so a class listed once is ``purenn.layers.X`` and ``purenn.X``."""
    for package in (purenn.layers, purenn.optim):
        names = []
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            names += getattr(module, "__all__", [])
        assert sorted(package.__all__) == sorted(set(names)), package.__name__
        for name in package.__all__:
            assert getattr(purenn, name) is getattr(package, name), name
    assert len(purenn.__all__) == len(set(purenn.__all__))
    assert all(hasattr(purenn, name) for name in purenn.__all__)
