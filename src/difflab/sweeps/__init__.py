"""Sweeps: a table of every job's results and early checks of sweep overrides (Hydra callbacks)."""
