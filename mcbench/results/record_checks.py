"""Whether a record read from JSON fits the schema of ``mcbench.results.records``, as deeply
as a reader needs (``Need``): the check derived from its types, then by hand the rules that
tie fields together (the t rule read the path, reserved names, the surface's chosen point).
Each raises ``Bad`` with the key path of the first field that does not fit, what it holds
and what was expected."""

from __future__ import annotations

from mcbench.results.records import RAN, RERUN, RESERVED, Need, Record
from mcbench.typed import Bad, bad, checker, shown

__all__ = ["Bad", "check_figures", "check_record", "flags", "shown"]

_POINT_RESERVED = RESERVED - {"t", "notes"}


def flags(data: dict[str, object], need: Need) -> frozenset[str]:
    """The schema's flags for reading DATA as deeply as NEED asks: RAN for a cell that ran
    read for the tables (or more), RERUN to rebuild the cell."""
    ran = need != "record" and data.get("status") == "ok"
    return frozenset({RAN} if ran else ()) | frozenset({RERUN} if need == "rerun" else ())


def check_record(data: dict[str, object], need: Need) -> None:
    """Raise Bad for the first field of DATA (an object with cell_id, status and config)
    that does not fit the schema, or the first rule between fields that it breaks."""
    checker(Record, flags(data, need))(data)
    record: Record = data  # type: ignore[assignment]  # it fits, as just checked
    _metric_keys(record)
    _point_keys(record)
    _attack_figures(record)
    _t_rule_fits(record)
    _surface_chosen(record)


def _metric_keys(record: Record) -> None:
    """No metric is keyed by the name of a table column."""
    for i, spec in enumerate(record["config"].get("metrics", [])):
        key = spec.get("label") or spec["name"]
        if key in RESERVED:
            raise bad(f"config.metrics[{i}]", key, "a metric key that no table column has")


def _point_keys(record: Record) -> None:
    for i, point in enumerate(record.get("path", [])):
        if not _POINT_RESERVED.isdisjoint(point):
            name = sorted(_POINT_RESERVED.intersection(point))[0]
            raise bad(f"path[{i}]", name, "a metric key that no table column has")


def _attack_figures(record: Record) -> None:
    for name in (record.get("attack_info") or {"report_figures": []})["report_figures"]:
        if name in RESERVED:
            raise bad("attack_info.report_figures", name, "a key that no table column has")


def _t_rule_fits(record: Record) -> None:
    """The bonafide rule read one accuracy per point of the path, and chose the reported t."""
    rule = record.get("t_rule")
    if rule is None or rule["rule"] != "bonafide" or "path" not in record:
        return
    if len(rule["held_out_accuracy"]) != len(record["path"]):
        raise bad(
            "t_rule.held_out_accuracy",
            rule["held_out_accuracy"],
            f"one accuracy per point of the path, {len(record['path'])}",
        )
    if "reported_t" in record and rule["t"] != record["reported_t"]:
        raise bad("t_rule.t", rule["t"], f"the reported t, {shown(record['reported_t'])}")


def _surface_chosen(record: Record) -> None:
    """The surface's reported point is one of its evaluated points."""
    surface = record.get("surface")
    if surface is not None and surface["chosen"] not in [p["uv"] for p in surface["points"]]:
        raise bad("surface.chosen", surface["chosen"], "one of the points' uv")


def check_figures(record: Record) -> None:
    """The report figures the attack declares are table cells: plain values."""
    figures = (record.get("attack_info") or {"report_figures": []})["report_figures"]
    for role, report in (record.get("tamper") or {}).items():
        for name in figures:
            value = report.get(name)
            if isinstance(value, (dict, list)):
                raise bad(f"tamper.{role}.{name}", value, "a number, a string or null")
