"""The purenn command line (installed as the `purenn` command, imported as `purenn_cli`)."""
