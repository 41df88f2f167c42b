"""Updates: gradient transformations, the named optimizers built from them, schedules."""
