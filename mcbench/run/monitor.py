"""One progress display for a whole run: stages done of their total per kind, what each
worker is doing (its stage and epoch), elapsed and remaining time."""

from __future__ import annotations

from collections import Counter

from tqdm.auto import tqdm

from mcbench.run.graph import KIND_ORDER


class Monitor:
    def __init__(self, totals: Counter[str], enabled: bool = True):
        self.totals = totals
        self.done: Counter[str] = Counter()
        self.enabled = enabled
        self.bar = tqdm(
            total=sum(totals.values()), desc="stages", unit="stage", position=0,
            disable=not enabled, dynamic_ncols=True,
        )  # fmt: skip
        self._lines: list[tqdm] = []
        self._owner: dict[str, int] = {}
        """Worker -> the line it shows on while it computes a stage."""
        self._last: dict[int, str] = {}
        self._device: dict[str, str] = {}
        self._refresh()

    def _refresh(self) -> None:
        self.bar.set_postfix_str(
            "  ".join(
                f"{kind} {self.done[kind]}/{self.totals[kind]}"
                for kind in KIND_ORDER
                if self.totals[kind]
            )
        )

    def _line(self, worker: str) -> tqdm:
        """The display line of ``worker``: its own line from before if it is free, else
        any free line, else a new one (Ray may start a new process for every stage)."""
        if worker in self._owner:
            return self._lines[self._owner[worker]]
        taken = set(self._owner.values())
        free = [i for i in range(len(self._lines)) if i not in taken]
        mine = [i for i in free if self._last.get(i) == worker]
        if mine or free:
            index = (mine or free)[0]
        else:
            index = len(self._lines)
            self._lines.append(
                tqdm(
                    total=1,
                    position=index + 1,
                    leave=False,
                    unit="epoch",
                    disable=not self.enabled,
                    dynamic_ncols=True,
                    bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s{postfix}",
                )  # fmt: skip
            )
        self._owner[worker], self._last[index] = index, worker
        return self._lines[index]

    def started(self, worker: str, device: str, label: str) -> None:
        line = self._line(worker)
        self._device[worker] = device
        line.set_description_str(f"{worker} [{device}] {label}")
        line.set_postfix_str("")
        line.reset(total=1)

    def epoch(self, worker: str, label: str, epoch: int, total: int, loss: float) -> None:
        line = self._line(worker)
        line.set_description_str(f"{worker} [{self._device.get(worker, '?')}] {label}")
        line.total, line.n = total, epoch + 1
        line.set_postfix_str(f"loss {loss:.3f}")

    def finished(self, stage: str, worker: str | None) -> None:
        self.done[stage] += 1
        self.bar.update(1)
        self._refresh()
        if worker in self._owner:
            line = self._lines[self._owner.pop(worker)]
            line.set_description_str("idle")
            line.set_postfix_str("")

    def close(self) -> None:
        for line in self._lines:
            line.close()
        self.bar.close()
