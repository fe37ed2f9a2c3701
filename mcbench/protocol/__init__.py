"""The benchmark's protocol, free of torch: how a cell's seeds are derived and which point
of a repaired path a cell reports. Both execution (``mcbench.run``) and the records-only
results layer (``mcbench.results``) read it."""
