"""Experiments: one recipe over many seeds, run serially, in local worker processes or on a Dask
cluster, summarised in an experiment record.

- :mod:`~purenn.experiments.seeds`: ``"0-9"``, ``"1,4,7"`` -> seeds.
- :mod:`~purenn.experiments.tasks`: what one seed's run is (an MNIST preset run, an XOR run), as
  picklable functions a worker process calls.
- :mod:`~purenn.experiments.runner`: running a list of them with progress reports, retrying or
  reporting the runs whose worker died.
- :mod:`~purenn.experiments.record`: the experiment record (the runs, their results, a summary).
"""
