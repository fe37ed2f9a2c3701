"""The record of a cell: what ran, with which plugins and where. Built here only, in the
schema that ``mcbench.results.records`` reads."""

from __future__ import annotations

import traceback
from typing import Any, cast

import torch

from mcbench.bench.cells import Cell, PluginSpec
from mcbench.cell import plan
from mcbench.results.records import (
    SCHEMA,
    AttackInfo,
    BaseRecord,
    CellResults,
    Config,
    MetricInfo,
    Provenance,
    Record,
    RecordError,
    default_plot_axis,
    to_json,
)
from mcbench.run.provenance import environment


def metric_entry(spec: PluginSpec) -> MetricInfo:
    """What the results layer needs to know about a metric, from its plugin's class."""
    cls: Any = spec.entry.cls  # a metric plugin's class: its declared presentation
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
    cls: Any = cell.attack.entry.cls
    figures = cls.report_figures if cell.attack_stage == "tamper" else ()
    return {"name": cell.attack.name, "report_figures": list(figures)}


def base_record(cell: Cell, device: torch.device) -> BaseRecord:
    """What a cell's record says before it runs."""
    base: BaseRecord = {
        "schema": SCHEMA,
        "cell_id": cell.cell_id,
        "label": cell.label(),
        "config": cast(Config, cell.config()),
        "keys": {
            stage.id.record_key: stage.key
            for stage in plan.cell_stages(cell)
            if stage.definition.reusable
        },
        "plugins": cell.plugin_provenance(),
        "metric_info": {m.key: metric_entry(m) for m in cell.metrics},
        "attack_info": attack_entry(cell),
        "provenance": cast(Provenance, environment(device)),
    }
    if cell.compiled_stages:
        base["compiled"] = list(cell.compiled_stages)
    return base


def finished_record(base: BaseRecord, results: CellResults, seconds: float) -> Record:
    """The record of a cell that ran: BASE with what the cell's stages returned."""
    record = cast(Record, {**base, **results, "status": "ok", "seconds": seconds})
    return to_json(record)


def failed_record(base: BaseRecord, error: BaseException | RecordError, seconds: float) -> Record:
    """The record of a cell that raised ERROR (an exception, or the ``type``/``message``/
    ``traceback`` of one raised in another process)."""
    if isinstance(error, BaseException):
        error = {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(error)),
        }
    record = cast(Record, {**base, "status": "failed", "error": error, "seconds": seconds})
    return to_json(record)
