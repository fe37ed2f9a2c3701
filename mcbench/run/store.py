"""Results on disk: cached stage artifacts (safetensors + JSON) and one record per cell.

Every file is written to a temporary name and renamed into place
(``mcbench.toolkit.checkpoint.atomic_write``), so a kill leaves either the old state or
the new one, never half a file.

    RESULTS/artifacts/<stage>/<key>.safetensors   tensors (no pickle)
    RESULTS/artifacts/<stage>/<key>.json          what produced them (or, for a stage
                                                  without tensors, its result)
    RESULTS/artifacts/<stage>/<key>.partial.pt    per-epoch training state while running
    RESULTS/records/<cell_id>.json                one result record per cell
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from mcbench.toolkit.checkpoint import Checkpoint, atomic_write


def atomic_write_json(path: Path, value: Any) -> None:
    data = (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()
    atomic_write(path, lambda f: f.write(data))


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.records = self.root / "records"

    def _path(self, stage: str, key: str, suffix: str) -> Path:
        return self.artifacts / stage / f"{key}{suffix}"

    def has_tensors(self, stage: str, key: str) -> bool:
        return self._path(stage, key, ".safetensors").exists()

    def save_tensors(
        self, stage: str, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
    ) -> None:
        """The meta first: tensors present means their meta is there too."""
        atomic_write_json(self._path(stage, key, ".json"), meta)
        data = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        atomic_write(self._path(stage, key, ".safetensors"), lambda f: f.write(data))

    def load_tensors(self, stage: str, key: str) -> dict[str, torch.Tensor]:
        return load_file(self._path(stage, key, ".safetensors"))

    def has_json(self, stage: str, key: str) -> bool:
        return self._path(stage, key, ".json").exists()

    def save_json(self, stage: str, key: str, value: Any) -> None:
        atomic_write_json(self._path(stage, key, ".json"), value)

    def load_json(self, stage: str, key: str) -> Any:
        """A stage's JSON: the meta of its tensors, or its whole result."""
        return json.loads(self._path(stage, key, ".json").read_text())

    def checkpoint(self, stage: str, key: str) -> Checkpoint:
        path = self._path(stage, key, ".partial.pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        return Checkpoint(path)

    def record_path(self, cell_id: str) -> Path:
        return self.records / f"{cell_id}.json"

    def load_record(self, cell_id: str) -> dict | None:
        path = self.record_path(cell_id)
        return json.loads(path.read_text()) if path.exists() else None

    def save_record(self, record: dict) -> None:
        atomic_write_json(self.record_path(record["cell_id"]), record)
