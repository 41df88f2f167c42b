"""Counting how often a run reads each sample of a data set: ``from _reads import SampleReads``.

A read is a model's forward pass over the sample, recognised by its bytes (so a copy of the
data set counts as well as the array itself): every prediction and evaluation of a preset's
model goes through ``Sequential.forward``, which :meth:`SampleReads.install` wraps.
"""

from __future__ import annotations

import numpy as np

import purenn as pn


class SampleReads:
    """How many times each row of ``images`` went through a ``Sequential``'s forward pass."""

    def __init__(self, images: np.ndarray) -> None:
        rows = np.ascontiguousarray(images).reshape(len(images), -1)
        self.index = {row.tobytes(): i for i, row in enumerate(rows)}
        assert len(self.index) == len(images), "the rows must differ to be told apart"
        self.counts = np.zeros(len(images), dtype=int)
        self.dtype = images.dtype

    def see(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.dtype != self.dtype or x.ndim < 2:
            return
        for row in np.ascontiguousarray(x).reshape(len(x), -1):
            i = self.index.get(row.tobytes())
            if i is not None:
                self.counts[i] += 1

    def install(self, monkeypatch) -> SampleReads:
        """Count from now on (until the test ends: ``monkeypatch`` undoes it)."""
        real = pn.Sequential.forward

        def forward(layer, params, x, *args, **kwargs):
            self.see(x)
            return real(layer, params, x, *args, **kwargs)

        monkeypatch.setattr(pn.Sequential, "forward", forward)
        return self
