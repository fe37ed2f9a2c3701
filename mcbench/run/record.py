"""The record of a cell: what ran, with which plugins and where. Written here only."""

from __future__ import annotations

import torch

from mcbench.bench.cells import Cell
from mcbench.run.provenance import environment
from mcbench.vocabulary import ROLES

SCHEMA = 1


def base_record(cell: Cell, device: torch.device) -> dict:
    return {
        "schema": SCHEMA,
        "cell_id": cell.cell_id,
        "label": cell.label(),
        "config": cell.config(),
        "keys": {
            **{f"endpoint_{r}": cell.endpoint_key(r) for r in ROLES},
            **(
                {f"tamper_{r}": cell.tamper_key(r) for r in ROLES}
                if cell.attack_stage == "tamper"
                else {}
            ),
            "repair": cell.repair_key(),
        },
        "plugins": cell.plugin_provenance(),
        "metric_info": {
            m.key: {
                "name": m.name,
                "percent": m.entry.cls.percent,
                "higher_is_better": m.entry.cls.higher_is_better,
            }
            for m in cell.metrics
        },
        "provenance": environment(device),
    }
