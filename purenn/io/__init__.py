"""Everything that touches files: IDX data sets, checkpoints, run records, JSON encoding of
records and params, atomic writes. The math elsewhere in purenn never does I/O."""
