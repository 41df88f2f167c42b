"""Built-in layers, all under the contract in :mod:`purenn.layers.base`, one module per family.

Each module's ``__all__`` names its layers; this package re-exports exactly those, and ``purenn``
re-exports this package's (``purenn.Dense`` is ``purenn.layers.Dense``). A new layer in an
existing module needs no edit here; a new module, its star import and its name in ``_MODULES``.
"""

from typing import TYPE_CHECKING

from purenn.layers.activations import *
from purenn.layers.base import *
from purenn.layers.blocks import *
from purenn.layers.conv import *
from purenn.layers.dense import *
from purenn.layers.dropout import *
from purenn.layers.normalization import *
from purenn.layers.pooling import *
from purenn.layers.sequential import *
from purenn.layers.shape import *

_MODULES = ("base", "activations", "dense", "shape", "sequential", "conv", "pooling", "dropout",
            "normalization", "blocks")

# mypy reads only a literal ``__all__`` and learns the names from the star imports above; the list
# built from the modules' own is for Python (``import *``, purenn.io.serialize's registry).
if not TYPE_CHECKING:
    from importlib import import_module

    __all__ = [name for module in _MODULES for name in import_module(f"{__name__}.{module}").__all__]
