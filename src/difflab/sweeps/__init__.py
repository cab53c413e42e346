"""Sweeps: a table of every job's results, early checks of sweep overrides, DDP ranks inside sweep jobs."""
