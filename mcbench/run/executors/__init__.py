"""Executors run a graph of stages: ``serial`` in this process, ``local`` in worker
processes on this machine (one per GPU, or several sharing the cores), ``ray`` as tasks on
a Ray cluster. Each calls ``RunBook.started``/``finished`` for the stages it runs."""
