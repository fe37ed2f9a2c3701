"""Records -> tables, ranks, figures and pages. Reads records only: never imports torch,
the runner or the store."""
