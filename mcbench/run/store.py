"""Results on disk: cached stage artifacts (safetensors + JSON) and one record per cell.

Every file is written to a temporary name and renamed into place
(``mcbench.toolkit.checkpoint.atomic_write``), so a kill leaves either the old state or
the new one, never half a file. The tensors are written last: their file is the done
marker of a stage.

    RESULTS/artifacts/<stage>/<key>.safetensors   tensors (no pickle)
    RESULTS/artifacts/<stage>/<key>.json          what produced them (or, for a stage
                                                  without tensors, its result)
    RESULTS/artifacts/<stage>/<key>.partial.pt    per-epoch training state while running
    RESULTS/records/<cell_id>.json                one result record per cell
    RESULTS/quarantine/...                        files that could not be read back

A stored file that cannot be read back (a disk that filled up, a copy cut short, an edit
by hand) is moved into RESULTS/quarantine with a warning that names it, and counts as
not stored: the run computes it again instead of failing on it every time.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from mcbench.toolkit.checkpoint import Checkpoint, atomic_write

if TYPE_CHECKING:
    from mcbench.results.records import Record

log = logging.getLogger("mcbench")

QUARANTINE = "quarantine"


def atomic_write_json(path: Path, value: Any) -> None:
    data = (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()
    atomic_write(path, lambda f: f.write(data))


class DamagedArtifact(RuntimeError):
    """A stored file could not be read back; it was moved aside."""


def safetensors_damage(path: Path) -> str | None:
    """Why the safetensors file at ``path`` is not whole, or None: its header must parse
    and its tensors must end where the file ends (a cheap check: no tensor is read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a header"
            length = int.from_bytes(head, "little")
            if length > size - 8:
                return f"{size} bytes, cut inside its header"
            header = json.loads(f.read(length))
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
            default=0,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return f"unreadable header ({type(e).__name__})"
    if 8 + length + end != size:
        return f"{size} bytes where its header says {8 + length + end}"
    return None


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.records = self.root / "records"

    def _path(self, stage: str, key: str, suffix: str) -> Path:
        return self.artifacts / stage / f"{key}{suffix}"

    def quarantine(self, path: Path, reason: str) -> Path | None:
        """Move the damaged file at ``path`` into RESULTS/quarantine; None if another
        process moved it first."""
        try:
            relative = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            relative = Path(path.name)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        target = self.root / QUARANTINE / relative.parent / f"{relative.name}.{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None
        log.warning("%s cannot be read (%s): moved to %s, to be computed again", path, reason,
                    target)  # fmt: skip
        return target

    def _damaged(self, path: Path, reason: str) -> DamagedArtifact:
        moved = self.quarantine(path, reason)
        return DamagedArtifact(
            f"{path} cannot be read ({reason}); moved to {moved}; the next run computes it again"
        )

    def has_tensors(self, stage: str, key: str) -> bool:
        path = self._path(stage, key, ".safetensors")
        if not path.exists():
            return False
        damage = safetensors_damage(path)
        if damage is not None:
            self.quarantine(path, damage)
            return False
        return self.has_json(stage, key)

    def save_tensors(
        self, stage: str, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
    ) -> None:
        """The meta first: tensors present means their meta is there too."""
        atomic_write_json(self._path(stage, key, ".json"), meta)
        data = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        atomic_write(self._path(stage, key, ".safetensors"), lambda f: f.write(data))

    def load_tensors(self, stage: str, key: str) -> dict[str, torch.Tensor]:
        path = self._path(stage, key, ".safetensors")
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise self._damaged(path, f"{type(e).__name__}: {e}") from None

    def has_json(self, stage: str, key: str) -> bool:
        path = self._path(stage, key, ".json")
        if not path.exists():
            return False
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            self.quarantine(path, f"{type(e).__name__}: {str(e)[:200]}")
            return False
        return True

    def save_json(self, stage: str, key: str, value: Any) -> None:
        atomic_write_json(self._path(stage, key, ".json"), value)

    def load_json(self, stage: str, key: str) -> Any:
        """A stage's JSON: the meta of its tensors, or its whole result."""
        path = self._path(stage, key, ".json")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise self._damaged(path, f"{type(e).__name__}: {str(e)[:200]}") from None

    def checkpoint(self, stage: str, key: str) -> Checkpoint:
        path = self._path(stage, key, ".partial.pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        return Checkpoint(path, on_damaged=self.quarantine)

    def record_path(self, cell_id: str) -> Path:
        return self.records / f"{cell_id}.json"

    def load_record(self, cell_id: str) -> dict | None:
        """The cell's record; None when there is none, or it could not be read (it is then
        moved aside, and the cell runs again)."""
        path = self.record_path(cell_id)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            self.quarantine(path, f"{type(e).__name__}: {str(e)[:200]}")
            return None
        if not isinstance(record, dict):
            self.quarantine(path, "not a JSON object")
            return None
        return record

    def save_record(self, record: Record) -> None:
        atomic_write_json(self.record_path(record["cell_id"]), record)
