"""The record of a cell: what ran, with which plugins and where. Built here only, in the
schema that ``mcbench.results.records`` reads."""

from __future__ import annotations

import traceback

import torch

from mcbench.bench.cells import Cell, PluginSpec
from mcbench.results.records import SCHEMA, AttackInfo, MetricInfo, default_plot_axis, to_json
from mcbench.run import plan
from mcbench.run.provenance import environment

# The stages whose artifacts a record names, as "endpoint_A", "tamper_B", "repair".
ARTIFACT_STAGES = (plan.ENDPOINT, plan.TAMPER, plan.REPAIR)


def metric_entry(spec: PluginSpec) -> MetricInfo:
    """What the results layer needs to know about a metric, from its plugin's class."""
    cls = spec.entry.cls
    return {
        "name": spec.name,
        "percent": cls.percent,
        "higher_is_better": cls.higher_is_better,
        "plot_axis": cls.plot_axis or default_plot_axis(cls.percent),
        "correlate_with": list(cls.correlate_with),
    }


def attack_entry(cell: Cell) -> AttackInfo | None:
    """What the results layer needs to know about the cell's attack, from its class."""
    if cell.attack is None:
        return None
    cls = cell.attack.entry.cls
    figures = cls.report_figures if cell.attack_stage == "tamper" else ()
    return {"name": cell.attack.name, "report_figures": list(figures)}


def base_record(cell: Cell, device: torch.device) -> dict:
    """What a cell's record says before it runs."""
    return {
        "schema": SCHEMA,
        "cell_id": cell.cell_id,
        "label": cell.label(),
        "config": cell.config(),
        "keys": {
            stage.label.replace(" ", "_"): stage.key
            for stage in plan.cell_stages(cell)
            if stage.stage in ARTIFACT_STAGES
        },
        "plugins": cell.plugin_provenance(),
        "metric_info": {m.key: metric_entry(m) for m in cell.metrics},
        "attack_info": attack_entry(cell),
        "provenance": environment(device),
    }


def finished_record(base: dict, results: dict, seconds: float) -> dict:
    """The record of a cell that ran: BASE with what the cell's stages returned."""
    return to_json({**base, **results, "status": "ok", "seconds": seconds})


def failed_record(base: dict, error: BaseException | dict, seconds: float) -> dict:
    """The record of a cell that raised ERROR (an exception, or the ``type``/``message``/
    ``traceback`` of one raised in another process)."""
    if isinstance(error, BaseException):
        error = {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(error)),
        }
    return to_json({**base, "status": "failed", "error": error, "seconds": seconds})
