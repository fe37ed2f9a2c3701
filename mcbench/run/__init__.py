"""Cells -> records: the only layer that trains or evaluates. Stage functions, the runner
that composes them into cells, the results store, provenance, progress and devices."""
