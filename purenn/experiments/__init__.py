"""Experiments: a run function over seeds and a grid of settings, in this process, in local
worker processes, on a Dask cluster or on any executor; resumable, with provenance, summarised in
an experiment record. The public surface::

    study = purenn.experiments.run(train, seeds=range(5), grid={"lr": [1e-3, 4e-3]}, jobs=2,
                                   record="runs/lr.json")
    purenn.experiments.resume("runs/lr.json", train)      # runs only what is missing

- :mod:`~purenn.experiments.study`: :func:`run`, :func:`resume`, the :class:`Study` they return.
- :mod:`~purenn.experiments.context`: inside a run, :func:`current_run` and :func:`report`.
- :mod:`~purenn.experiments.runner`: running tasks serially, in worker processes, on Dask or a
  caller's executor, with progress reports, retrying or reporting runs whose worker died.
- :mod:`~purenn.experiments.record`: the experiment record (``purenn.experiment/2``; /1 still
  reads: :mod:`~purenn.experiments.record_v1`); :mod:`~purenn.experiments.summary`: its statistics.
- :mod:`~purenn.experiments.tasks`: purenn's own run functions (an MNIST preset run, an XOR run).
- :mod:`~purenn.experiments.seeds`: ``"0-9"``, ``"1,4,7"`` -> seeds.
- :mod:`~purenn.experiments.comparison`: :func:`compare`, two recipes over seeds compared (needs the
  ``stats`` extra).
"""

from purenn.experiments.comparison import compare
from purenn.experiments.context import RunContext, current_run, report
from purenn.experiments.study import Group, Run, Study, load_function, resume, run

__all__ = ["Group", "Run", "RunContext", "Study", "compare", "current_run", "load_function", "report", "resume",
           "run"]
