"""Worker processes on this machine: one per GPU (pinned with CUDA_VISIBLE_DEVICES), K per
GPU sharing its memory, or N on the CPU sharing its cores. A worker that dies (killed, out
of memory) is replaced and its stage retried, resuming from the stage's last epoch
checkpoint, at most ``retries`` times."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from mcbench.bench.load import Benchmark
from mcbench.run.book import RunBook
from mcbench.run.execute import Job, RunSpec, StageRunner, error_of
from mcbench.run.graph import StageGraph

log = logging.getLogger("mcbench")


@dataclass(frozen=True)
class Slot:
    """One worker: its name, the GPU it sees ("" for none, None to leave the environment
    as it is) and its torch threads."""

    name: str
    visible_devices: str | None
    threads: int | None
    memory_fraction: float | None = None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None and given.strip():
        return [g.strip() for g in given.split(",") if g.strip()][:count]
    return [str(i) for i in range(count)]


def local_slots(
    workers: int | None = None,
    workers_per_gpu: int = 1,
    gpus: list[str] | None = None,
    cores: int | None = None,
    threads: int | None = None,
) -> list[Slot]:
    """The workers of a local run: ``workers_per_gpu`` per GPU in ``gpus`` (the visible
    ones by default), or ``workers`` CPU workers when there is none. The cores are divided
    between the workers unless ``threads`` (per worker) is given."""
    gpus = visible_gpus() if gpus is None else gpus
    cores = cores or os.cpu_count() or 1
    if gpus:
        fraction = 0.95 / workers_per_gpu if workers_per_gpu > 1 else None
        names = [(f"gpu{g}.{k}" if workers_per_gpu > 1 else f"gpu{g}", g) for g in gpus
                 for k in range(workers_per_gpu)]  # fmt: skip
        each = threads or max(1, cores // len(names))
        return [Slot(name, g, each, fraction) for name, g in names]
    count = workers or cores
    each = threads or max(1, cores // count)
    return [Slot(f"cpu{i}", "", each) for i in range(count)]


@contextmanager
def _environment(**values: str | None):
    """os.environ with ``values`` set (None: left as it is) while a child is spawned."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_main(slot: Slot, spec: RunSpec, conn, benchmark: bytes | None = None) -> None:
    """A worker process: build a StageRunner once (on the pickled BENCHMARK, else on the
    one ``spec.source`` reads), then run the jobs it is sent."""
    try:
        import torch

        if slot.memory_fraction and torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(slot.memory_fraction)

        def progress(description: str, total: int):
            return lambda epoch, loss: conn.send(
                ("epoch", slot.name, description, epoch, total, float(loss))
            )

        parsed = pickle.loads(benchmark) if benchmark is not None else None
        runner = StageRunner(replace(spec, threads=slot.threads), parsed, worker=slot.name,
                             progress=progress)  # fmt: skip
        runner.load()
    except Exception as e:
        conn.send(("fatal", slot.name, error_of(e)))
        return
    conn.send(("ready", slot.name, str(runner.device), os.getpid()))
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(("outcome", slot.name, runner.run(job)))


class WorkerStartError(RuntimeError):
    pass


@dataclass
class _Worker:
    slot: Slot
    process: BaseProcess
    conn: Connection
    device: str = "?"
    job: Job | None = None
    ready: bool = False


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        spec: RunSpec,
        slots: list[Slot],
        retries: int = 2,
        benchmark: Benchmark | None = None,
    ):
        if spec.source is None and benchmark is None:
            raise ValueError("worker processes need the benchmark or the file to read it from")
        self.spec, self.slots, self.retries = spec, slots, retries
        self.benchmark = benchmark
        """The parsed benchmark the workers compute (None: each reads ``spec.source``)."""
        self.workers = len(slots)
        self._context = multiprocessing.get_context("spawn")
        self._pickled: bytes | None = None
        self._workers: dict[str, _Worker] = {}

    def _start(self, slot: Slot) -> _Worker:
        ours, theirs = self._context.Pipe()
        if self._pickled is None and self.benchmark is not None:
            self._pickled = pickle.dumps(self.benchmark)
        process = self._context.Process(
            target=_worker_main, args=(slot, self.spec, theirs, self._pickled),
            name=f"mcbench-{slot.name}", daemon=True,
        )  # fmt: skip
        with _environment(CUDA_VISIBLE_DEVICES=slot.visible_devices):
            process.start()
        theirs.close()
        return _Worker(slot, process, ours)

    def start(self) -> None:
        """Spawn the worker processes; they import torch and read the benchmark while the
        run sets itself up."""
        if not self._workers:
            self._workers = {s.name: self._start(s) for s in self.slots}

    def close(self) -> None:
        """Ask every worker to stop, and kill one that has not stopped within 10 s."""
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in workers.values():
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()

    def execute(self, graph: StageGraph, book: RunBook) -> None:
        self._book = book
        if not graph.to_compute():
            return
        self.start()
        workers = self._workers
        waiting = {n.name: set(graph.needs(n)) for n in graph.to_compute()}
        ready = deque(name for name, needs in waiting.items() if not needs)
        for name in ready:
            del waiting[name]
        attempts: Counter = Counter()

        def done(outcome: dict) -> None:
            lost = set(book.finished(outcome))
            for name in lost:
                waiting.pop(name, None)
            if outcome["ok"]:
                for name, needs in list(waiting.items()):
                    needs.discard(outcome["node"])
                    if not needs:
                        ready.append(name)
                        del waiting[name]

        try:
            while ready or waiting or any(w.job for w in workers.values()):
                for worker in workers.values():
                    if worker.ready and worker.job is None and ready:
                        node = graph.nodes[ready.popleft()]
                        worker.job = book.job(node)
                        worker.conn.send(worker.job)
                        book.started(worker.job, worker.slot.name, worker.device)
                if not ready and not any(w.job for w in workers.values()) and waiting:
                    raise RuntimeError(f"stages whose inputs never ran: {sorted(waiting)}")
                conns = {w.conn: w for w in workers.values()}
                sentinels = {w.process.sentinel: w for w in workers.values()}
                for event in wait([*conns, *sentinels], timeout=1.0):
                    if event in conns:
                        self._receive(conns[event], done)
                for event in [s for s in sentinels if not sentinels[s].process.is_alive()]:
                    worker = sentinels[event]
                    while worker.conn.poll():  # what it sent before it died
                        if not self._receive(worker, done):
                            break
                    if not worker.process.is_alive():
                        workers[worker.slot.name] = self._replace(worker, attempts, ready, done)
        finally:
            self.close()

    def _receive(self, worker: _Worker, done) -> bool:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        kind = message[0]
        if kind == "ready":
            worker.ready, worker.device = True, message[2]
            log.info("worker %s started on %s (pid %s)", worker.slot.name, message[2], message[3])
        elif kind == "epoch":
            _, name, description, epoch, total, loss = message
            self._book.epoch(name, description, epoch, total, loss)
        elif kind == "outcome":
            worker.job = None
            done(message[2])
        elif kind == "fatal":
            error = message[2]
            raise WorkerStartError(
                f"worker {worker.slot.name} could not start: {error['type']}: {error['message']}"
            )
        return True

    def _replace(self, worker: _Worker, attempts: Counter, ready: deque, done) -> _Worker:
        """A new worker in the dead one's slot; its stage goes back to the front of the
        queue, or fails once it has killed ``retries`` + 1 workers."""
        code = worker.process.exitcode
        worker.conn.close()
        if not worker.ready and worker.job is None:
            raise WorkerStartError(f"worker {worker.slot.name} died while starting (exit {code})")
        job = worker.job
        if job is not None:
            attempts[job.ref.node] += 1
            tries = attempts[job.ref.node]
            if tries <= self.retries:
                log.warning(
                    "worker %s died (exit code %s) running %s; retry %d of %d",
                    worker.slot.name, code, job.ref.label, tries, self.retries,
                )  # fmt: skip
                ready.appendleft(job.ref.node)
            else:
                done(
                    {
                        "node": job.ref.node, "label": job.ref.label, "cell_id": job.cell_id,
                        "worker": worker.slot.name, "device": worker.device, "host": None,
                        "ok": False, "computed": False, "seconds": 0.0,
                        "error": {
                            "type": "WorkerDied",
                            "message": f"the worker running it died {tries} times "
                            f"(last exit code {code})",
                            "traceback": "",
                        },
                    }
                )  # fmt: skip
        return self._start(worker.slot)
