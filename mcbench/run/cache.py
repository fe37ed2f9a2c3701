"""The one cache-or-compute rule of every stage: a stage's result is stored under its
content key; it is loaded when present, after checking that it was computed from the same
copy of the data, and computed and stored otherwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mcbench.cell.plan import NamedRefs, StageRef
from mcbench.cell.stages.call import Artifact, Inputs
from mcbench.errors import ConfigError
from mcbench.kinds.data import Dataset
from mcbench.run.store import Store
from mcbench.toolkit.checkpoint import Checkpoint


@dataclass(frozen=True)
class DataCopy:
    """Which copy of a dataset a stage read: its content fingerprint, which tells copies
    apart (the same data moved or re-packed is the same copy), and where it was read from,
    for people."""

    fingerprint: str
    source: str


def data_copy(data: Dataset) -> DataCopy:
    return DataCopy(data.fingerprint, data.source)


class DataCopyMismatch(ConfigError):
    """A cached artifact was computed from another copy of the data than this run reads."""


class MissingInput(RuntimeError):
    """A stage's input is not in the store: the stages ran out of order."""


class StageCache:
    """The stages of cells on one copy of the data, stored in ``store``. With
    ``compute=False`` it only loads: a stage that is not stored raises MissingInput, so a
    stage reading its inputs never computes them behind the scheduler's back."""

    def __init__(self, store: Store, data: DataCopy, compute: bool = True):
        self.store, self.data, self.compute = store, data, compute
        self._stamp = {"data": data.fingerprint, "data_source": data.source}

    def _missing(self, stage: str, key: str) -> MissingInput:
        return MissingInput(f"the {stage} stage {key} is not in {self.store.root}")

    def check(self, stage: str, key: str) -> None:
        """Raise DataCopyMismatch if the stored artifact ``stage``/``key`` was computed from
        another copy of the data. An artifact that records no copy passes."""
        if not self.store.has_json(stage, key):
            return
        meta = self.store.load_json(stage, key)
        stored = meta.get("data")
        if stored is not None and stored != self.data.fingerprint:
            raise DataCopyMismatch(
                f"results folder {self.store.root}: the cached {stage} artifact {key} was "
                f"computed from another copy of the data (cached: "
                f"{meta.get('data_source', '?')}, sha256 of the decoded data {stored}; this "
                f"run: {self.data.source}, {self.data.fingerprint}); use another --results "
                f"folder for this copy"
            )

    def load(self, stage: str, key: str) -> Artifact:
        """The stored tensors and meta of ``stage``/``key``; MissingInput if absent."""
        if not self.store.has_tensors(stage, key):
            raise self._missing(stage, key)
        self.check(stage, key)
        return Artifact(self.store.load_tensors(stage, key), self.store.load_json(stage, key), True)

    def load_stage(self, ref: StageRef) -> Artifact:
        """The stored result of ``ref``, whatever its definition stores; MissingInput if
        absent."""
        stores = ref.definition.stores
        if stores == "tensors":
            return self.load(ref.stage, ref.key)
        if stores == "json":
            if not self.store.has_json(ref.stage, ref.key):
                raise self._missing(ref.stage, ref.key)
            return self._stored_json(ref.stage, ref.key)
        record = self.store.load_record(ref.key)
        if not record:
            raise self._missing(ref.stage, ref.key)
        return Artifact(None, record, True)

    def load_inputs(self, named: NamedRefs) -> Inputs:
        """The stored results of a stage's inputs, by the names it reads them under."""
        return {
            name: tuple(self.load_stage(r) for r in value)
            if isinstance(value, tuple)
            else self.load_stage(value)
            for name, value in named.items()
        }

    def tensors(
        self,
        stage: str,
        key: str,
        inputs: tuple[str, ...],
        compute: Callable[[Checkpoint], tuple[dict[str, torch.Tensor], dict[str, Any]]],
    ) -> Artifact:
        """The tensors and meta stored for ``stage``/``key``, else those of
        ``compute(checkpoint)``, stored with the data copy and the keys of the stage's
        ``inputs`` added to the meta. ``checkpoint`` is where the computation may keep
        per-epoch state; it is removed once the result is stored."""
        if self.store.has_tensors(stage, key):
            self.check(stage, key)
            return Artifact(
                self.store.load_tensors(stage, key), self.store.load_json(stage, key), True
            )
        if not self.compute:
            raise self._missing(stage, key)
        checkpoint = self.store.checkpoint(stage, key)
        tensors, meta = compute(checkpoint)
        meta = {**meta, **self._stamp, "inputs": list(inputs)}
        self.store.save_tensors(stage, key, tensors, meta)
        checkpoint.remove()
        return Artifact(tensors, meta, False)

    def json(
        self,
        stage: str,
        key: str,
        inputs: tuple[str, ...],
        compute: Callable[[], dict[str, Any]],
    ) -> Artifact:
        """Like ``tensors``, for a stage whose whole result is JSON (``meta["result"]``)."""
        if self.store.has_json(stage, key):
            return self._stored_json(stage, key)
        if not self.compute:
            raise self._missing(stage, key)
        meta = {"result": compute(), **self._stamp, "inputs": list(inputs)}
        self.store.save_json(stage, key, meta)
        return Artifact(None, meta, False)

    def _stored_json(self, stage: str, key: str) -> Artifact:
        self.check(stage, key)
        stored = self.store.load_json(stage, key)
        if "result" not in stored:  # written before results were stored with their data
            stored = {"result": stored}
        return Artifact(None, stored, True)
