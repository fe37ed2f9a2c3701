"""One progress display for a whole run: stages done of their total per kind, what each
worker is doing (its stage and epoch), elapsed and remaining time."""

from __future__ import annotations

from collections import Counter

from tqdm.auto import tqdm

from mcbench.run.graph import KIND_ORDER


class Monitor:
    def __init__(self, totals: Counter, enabled: bool = True):
        self.totals, self.done = totals, Counter()
        self.enabled = enabled
        self.bar = tqdm(
            total=sum(totals.values()), desc="stages", unit="stage", position=0,
            disable=not enabled, dynamic_ncols=True,
        )  # fmt: skip
        self._workers: dict[str, tqdm] = {}
        self._refresh()

    def _refresh(self) -> None:
        self.bar.set_postfix_str(
            "  ".join(
                f"{kind} {self.done[kind]}/{self.totals[kind]}"
                for kind in KIND_ORDER
                if self.totals[kind]
            )
        )

    def _worker_bar(self, worker: str) -> tqdm:
        if worker not in self._workers:
            self._workers[worker] = tqdm(
                total=1, position=len(self._workers) + 1, leave=False, unit="epoch",
                disable=not self.enabled, dynamic_ncols=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s {postfix}",
            )  # fmt: skip
        return self._workers[worker]

    def started(self, worker: str, device: str, label: str) -> None:
        bar = self._worker_bar(worker)
        bar.set_description_str(f"{worker} [{device}] {label}")
        bar.reset(total=1)

    def epoch(self, worker: str, label: str, epoch: int, total: int, loss: float) -> None:
        bar = self._worker_bar(worker)
        bar.set_description_str(f"{bar.desc.split(']')[0]}] {label}")
        bar.total, bar.n = total, epoch + 1
        bar.set_postfix_str(f"loss {loss:.3f}")

    def finished(self, stage: str, worker: str | None) -> None:
        self.done[stage] += 1
        self.bar.update(1)
        self._refresh()
        if worker in self._workers:
            self._workers[worker].set_description_str(f"{worker} idle")
            self._workers[worker].set_postfix_str("")

    def close(self) -> None:
        for bar in self._workers.values():
            bar.close()
        self.bar.close()
