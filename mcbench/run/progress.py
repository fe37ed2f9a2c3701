"""Progress bars (tqdm) and the run log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm


class TqdmHandler(logging.Handler):
    def emit(self, record):
        tqdm.write(self.format(record))


def setup_logging(log_file: Path) -> None:
    log = logging.getLogger("mcbench")
    log.setLevel(logging.INFO)
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    to_console = TqdmHandler()
    to_console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(to_file)
    log.addHandler(to_console)


def progress_factory() -> Callable[[str, int], Callable[[int, float], None]]:
    """progress(description, epochs) -> on_epoch(epoch, loss), one bar per training run."""

    def start(description: str, total: int) -> Callable[[int, float], None]:
        bars: list[tqdm] = []  # opened at the first epoch: a cached stage shows no bar

        def on_epoch(epoch: int, loss: float) -> None:
            if not bars:
                bars.append(
                    tqdm(
                        total=total,
                        desc=description,
                        unit="epoch",
                        position=1,
                        leave=False,
                        initial=epoch,
                    )
                )
            bar = bars[0]
            bar.n = epoch + 1
            bar.set_postfix(loss=f"{loss:.3f}")
            if bar.n >= total:
                bar.close()

        return on_epoch

    return start
