"""Whether a record read from JSON fits the shape of ``mcbench.results.records``, as deeply
as a reader needs (``Need``): each check raises ``Bad`` with the key path of the first field
that does not fit, what it holds and what was expected."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from mcbench.results.records import NAME, PLOT_AXES, RESERVED, WRITTEN_ID, Need
from mcbench.vocabulary import PLUGIN_AXES

MAX_DEPTH = 32  # nesting of plugin parameters and settings; the published records use 4
MAX_INT = 2**53  # integers beyond this lose their value as table numbers


class Bad(Exception):
    """A field that does not fit: where (a key path), what it is and what was expected."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where, self.message = where, message


def shown(value) -> str:
    """A value as an error message shows it: its JSON, on one line, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
        kind = "the number"
    elif isinstance(value, str):
        text, kind = json.dumps(value), "the string"
    elif isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    elif isinstance(value, dict):
        return "an object" if value else "an empty object"
    else:
        return f"a {type(value).__name__}"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def bad(where: str, value, expected: str) -> Bad:
    return Bad(where, f"{shown(value)} (expected {expected})")


def _at(where: str, key) -> str:
    """The key path of KEY inside WHERE: ``path[2].loss``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def _is_number(value) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_INT


def object_at(value, where: str, expected: str = "an object") -> dict:
    if not isinstance(value, dict):
        raise bad(where, value, expected)
    return value


def _string(value, where: str, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise bad(where, value, expected)
    return value


def _t(value, where: str) -> None:
    """A position along the path: a finite number, or null for a single model."""
    if value is not None and not (_is_number(value) and math.isfinite(value)):
        raise bad(where, value, "a finite number, or null for a single model")


def _depth(value, where: str, limit: int = MAX_DEPTH) -> None:
    """Refuse settings nested deeper than LIMIT (they are compared and printed recursively)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise Bad(where, f"nested more than {limit} levels deep (expected plain settings)")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def _shallow(settings: dict) -> bool:
    """Whether no value of SETTINGS nests a container in a container (the parameters of
    most plugins: numbers, strings, lists of numbers), so that no depth walk is needed."""
    for value in settings.values():
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        for inner in value:
            if isinstance(inner, (dict, list)):
                return False
    return True


def identifier(value, where: str, written: bool) -> str:
    if not isinstance(value, str):
        raise bad(where, value, "a string")
    if written:
        if not WRITTEN_ID.fullmatch(value):
            raise bad(where, value, "16 lowercase hex digits, as mcbench writes it")
    elif not NAME.fullmatch(value):
        raise bad(
            where, value, "a name of letters, digits, '-', '_' and '.' (not first), at most 64"
        )
    return value


def _spec(value, where: str, rerun: bool, metric: bool = False) -> None:
    """A plugin as the configuration names it: {name, params, version} (a metric may add
    its label)."""
    spec = object_at(value, where, "a plugin: an object with name and params")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise bad(_at(where, "name"), name, "the plugin's name, a string")
    params = spec.get("params")
    if not isinstance(params, dict):
        raise bad(_at(where, "params"), params, "the plugin's parameters, an object")
    if not _shallow(params):
        _depth(params, _at(where, "params"))
    if (rerun or "version" in spec) and not isinstance(spec.get("version"), str):
        raise bad(_at(where, "version"), spec.get("version"), "the plugin's version, a string")
    if metric and spec.get("label") is not None and not isinstance(spec["label"], str):
        raise bad(_at(where, "label"), spec["label"], "the metric's label, a string")


KNOWN_CONFIG = frozenset(
    {
        *PLUGIN_AXES,
        "track",
        "budget",
        "seed",
        "metrics",
        "train",
        "split",
        "evaluate",
        "adversarial",
        "compute",
    }
)


def _config(config: dict, ran: bool, rerun: bool) -> None:
    if ("budget" in config or ran) and not _is_int(config.get("budget"), 1):
        raise bad("config.budget", config.get("budget"), "an integer of at least 1")
    if ("seed" in config or ran) and not _is_int(config.get("seed"), 0):
        raise bad("config.seed", config.get("seed"), "an integer of at least 0")
    _config_fields(config, ran, rerun)


def _config_fields(config: dict, ran: bool, rerun: bool) -> None:
    for axis in PLUGIN_AXES:
        spec = config.get(axis)
        if spec is not None:
            _spec(spec, f"config.{axis}", rerun)
        elif rerun and axis in ("dataset", "architecture", "repair"):
            raise bad(f"config.{axis}", spec, "a plugin: an object with name and params")
    if "track" in config or ran:
        _string(config.get("track"), "config.track", "the track's name, a string")
    if "metrics" in config or ran:
        metrics = config.get("metrics")
        if not isinstance(metrics, list):
            raise bad("config.metrics", metrics, "a list of metrics")
        for i, spec in enumerate(metrics):
            _spec(spec, f"config.metrics[{i}]", rerun, metric=True)
            key = spec.get("label") or spec["name"]
            if key in RESERVED:
                raise bad(f"config.metrics[{i}]", key, "a metric key that no table column has")
    for section in ("train", "split", "evaluate", "adversarial", "compute"):
        if section in config or (rerun and section not in ("adversarial", "compute")):
            value = config.get(section)
            if value is not None or rerun:
                object_at(value, f"config.{section}", "an object of settings")
                if not _shallow(value):
                    _depth(value, f"config.{section}")
    for key, value in config.items():
        if key not in KNOWN_CONFIG and isinstance(value, (dict, list)):
            _depth(value, _at("config", key))
    adversarial = config.get("adversarial") or {}
    if "endpoints" in adversarial and not isinstance(adversarial["endpoints"], list):
        raise bad("config.adversarial.endpoints", adversarial["endpoints"], "a list of roles")


def _scores(value, where: str) -> None:
    """Each model's scores, by endpoint role: metric -> number or null, and free-form
    notes."""
    for role, scores in object_at(value, where, "an object keyed by endpoint role").items():
        if not isinstance(scores, dict):
            raise bad(_at(where, role), scores, "an object of scores")
        for metric, score in scores.items():
            if score is None or type(score) is float or metric == "notes":
                continue
            if not _is_number(score):
                raise bad(_at(_at(where, role), metric), score, "a number or null")


def _path(path, where: str) -> None:
    if not isinstance(path, list):
        raise bad(where, path, "a list of points along the path")
    for i, point in enumerate(path):
        if not isinstance(point, dict):
            raise bad(f"{where}[{i}]", point, "a point: an object with t and the scores")
        if "t" not in point:
            raise Bad(f"{where}[{i}].t", "missing (expected a number, or null for one model)")
        t = point["t"]
        if t is not None and not (type(t) is float and math.isfinite(t)):
            _t(t, f"{where}[{i}].t")
        for metric, score in point.items():
            if score is None or type(score) is float or metric == "notes" or metric == "t":
                continue
            if not _is_number(score):
                raise bad(_at(f"{where}[{i}]", metric), score, "a number or null")
        if not _POINT_RESERVED.isdisjoint(point):
            name = sorted(_POINT_RESERVED.intersection(point))[0]
            raise bad(f"{where}[{i}]", name, "a metric key that no table column has")


_POINT_RESERVED = RESERVED - {"t", "notes"}


def _finite(value, where: str, expected: str) -> None:
    if not (_is_number(value) and math.isfinite(value)):
        raise bad(where, value, expected)


def _t_rule(value, where: str) -> None:
    """How the reported t was chosen: the fixed rule's report_t, or the bonafide rule with
    what it read (the held-out accuracy at every point of the path)."""
    rule = object_at(value, where, "an object: the t rule and what it read")
    name = rule.get("rule")
    if name == "fixed":
        _finite(rule.get("report_t"), _at(where, "report_t"), "the rule's t, a finite number")
        return
    if name != "bonafide":
        raise bad(_at(where, "rule"), name, '"fixed" or "bonafide"')
    for key in ("holdout", "tolerance", "endpoints_accuracy", "t"):
        _finite(rule.get(key), _at(where, key), "a finite number")
    for key in ("fit_size", "held_out_size"):
        if not _is_int(rule.get(key), 1):
            raise bad(_at(where, key), rule.get(key), "a number of images, at least 1")
    accuracy = rule.get("held_out_accuracy")
    if not isinstance(accuracy, list):
        raise bad(_at(where, "held_out_accuracy"), accuracy, "a list: one accuracy per point")
    for i, a in enumerate(accuracy):
        _finite(a, f"{_at(where, 'held_out_accuracy')}[{i}]", "an accuracy, a finite number")


def _t_rule_fits(data: dict) -> None:
    """The bonafide rule read one accuracy per point of the path, and chose the reported t."""
    rule = data.get("t_rule")
    if not isinstance(rule, dict) or rule.get("rule") != "bonafide" or "path" not in data:
        return
    if len(rule["held_out_accuracy"]) != len(data["path"]):
        raise bad(
            "t_rule.held_out_accuracy",
            rule["held_out_accuracy"],
            f"one accuracy per point of the path, {len(data['path'])}",
        )
    if "reported_t" in data and rule["t"] != data["reported_t"]:
        raise bad("t_rule.t", rule["t"], f"the reported t, {shown(data['reported_t'])}")


def _position(value, where: str, expected: str) -> None:
    if not (isinstance(value, list) and value and all(_is_number(c) for c in value)):
        raise bad(where, value, expected)
    for c in value:
        _finite(c, where, expected)


def _surface(value, where: str) -> None:
    """A surface repair's grid: every evaluated (u, v) with its scores, the corners, and
    the point the record reports (its one model)."""
    surface = object_at(value, where, "an object: corners, points and the chosen point")
    corners = surface.get("corners")
    if not isinstance(corners, list) or len(corners) < 3:
        raise bad(_at(where, "corners"), corners, "a list of at least 3 corner positions")
    for i, corner in enumerate(corners):
        _position(corner, f"{_at(where, 'corners')}[{i}]", "a position, a list of numbers")
    points = surface.get("points")
    if not isinstance(points, list) or not points:
        raise bad(_at(where, "points"), points, "a non-empty list of evaluated points")
    for i, point in enumerate(points):
        at = f"{_at(where, 'points')}[{i}]"
        point = object_at(point, at, "an object: uv and the metrics' scores")
        _position(point.get("uv"), _at(at, "uv"), "a position, a list of numbers")
        for metric, score in point.items():
            if metric not in ("uv", "notes") and score is not None and not _is_number(score):
                raise bad(_at(at, metric), score, "a number or null")
    _position(surface.get("chosen"), _at(where, "chosen"), "a position, a list of numbers")
    if surface["chosen"] not in [p["uv"] for p in points]:
        raise bad(_at(where, "chosen"), surface["chosen"], "one of the points' uv")


def _reports(value, where: str) -> None:
    for role, report in object_at(value, where, "an object keyed by endpoint role").items():
        _report(report, _at(where, role))


def _report(value, where: str) -> None:
    """A weight attack's report: its size (L0, L2, L-inf) and run time, then free-form."""
    report = object_at(value, where, "the weight attack's report, an object")
    if "size" in report:
        size = object_at(report["size"], _at(where, "size"), "an object with l0, l2 and linf")
        for norm in ("l0", "l2", "linf"):
            if size.get(norm) is not None and not _is_number(size[norm]):
                raise bad(_at(_at(where, "size"), norm), size[norm], "a number or null")
    if report.get("seconds") is not None and not _is_number(report["seconds"]):
        raise bad(_at(where, "seconds"), report["seconds"], "a number of seconds or null")


def check_figures(record: dict) -> None:
    """The report figures the attack declares are table cells: plain values."""
    figures = (record.get("attack_info") or {}).get("report_figures", [])
    for role, report in (record.get("tamper") or {}).items():
        for name in figures:
            value = report.get(name)
            if isinstance(value, (dict, list)):
                raise bad(f"tamper.{role}.{name}", value, "a number, a string or null")


def _metric_info(value) -> None:
    for key, entry in object_at(value, "metric_info", "an object: metric -> its info").items():
        if not isinstance(entry, dict):
            raise bad(_at("metric_info", key), entry, "the metric's info, an object")
        problem = _metric_entry(entry)
        if problem:
            field, expected = problem
            raise bad(_at(_at("metric_info", key), field), entry[field], expected)


def _metric_entry(entry: dict) -> tuple[str, str] | None:
    """(field, what was expected) of the first field of a metric's info that is wrong."""
    if "name" in entry and not isinstance(entry["name"], str):
        return "name", "the metric's name, a string"
    if "percent" in entry and not isinstance(entry["percent"], bool):
        return "percent", "true or false"
    better = entry.get("higher_is_better")
    if better is not None and not isinstance(better, bool):
        return "higher_is_better", "true, false or null"
    if "plot_axis" in entry and entry["plot_axis"] not in PLOT_AXES:
        return "plot_axis", "top, bottom or right"
    names = entry.get("correlate_with", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "correlate_with", "a list of metric names"
    return None


def _attack_info(value) -> None:
    if value is None:
        return
    info = object_at(value, "attack_info", "an object with name and report_figures, or null")
    _string(info.get("name"), "attack_info.name", "the attack's name, a string")
    figures = info.get("report_figures")
    if not isinstance(figures, list) or not all(isinstance(f, str) for f in figures):
        raise bad("attack_info.report_figures", figures, "a list of report keys")
    for name in figures:
        if name in RESERVED:
            raise bad("attack_info.report_figures", name, "a key that no table column has")


def _provenance(value) -> None:
    provenance = object_at(value, "provenance", "an object: versions, commit, device, date")
    for key in ("git_commit", "device", "date"):
        if provenance.get(key) is not None:
            _string(provenance[key], f"provenance.{key}", "a string or null")


def _error(value) -> None:
    if value is None:
        return
    error = object_at(value, "error", "an object with type, message and traceback")
    for key in ("type", "message", "traceback"):
        if error.get(key) is not None:
            _string(error[key], f"error.{key}", "a string")


def _typed(expected: str, test: Callable[[object], bool]) -> Callable[[object, str], None]:
    def check(value, where):
        if not test(value):
            raise bad(where, value, expected)

    return check


# Each field a record may have, and its check (applied when the field is there).
FIELDS: dict[str, Callable[[object, str], None]] = {
    "label": lambda v, w: _string(v, w),
    "plugins": lambda v, w: object_at(v, w, "an object: plugin -> distribution version"),
    "metric_info": lambda v, w: _metric_info(v),
    "attack_info": lambda v, w: _attack_info(v),
    "provenance": lambda v, w: _provenance(v),
    "seconds": _typed("a number of seconds", lambda v: v is None or _is_number(v)),
    "path": _path,
    "reported_t": _t,
    "t_rule": _t_rule,
    "surface": _surface,
    "endpoints": _scores,
    "untampered": _scores,
    "tamper": _reports,
    "injection": lambda v, w: object_at(v, w),
    "sizes": lambda v, w: object_at(v, w, "an object of sizes"),
    "timings": lambda v, w: object_at(v, w, "an object of seconds"),
    "reused": _typed("a list of stage names", lambda v: isinstance(v, list)),
    "data_source": lambda v, w: _string(v, w),
    "error": lambda v, w: _error(v),
}
RAN = ("path", "reported_t")  # what the tables read of every cell that ran


def check_fields(data: dict, need: Need) -> None:
    """Raise _Bad for the first field of DATA (an identified record) that does not fit."""
    ran = need != "record" and data["status"] == "ok"
    rerun = need == "rerun"
    _config(data["config"], ran, rerun)
    for key, check in FIELDS.items():
        if key in data:
            check(data[key], key)
        elif ran and key in RAN:
            raise Bad(key, "missing (expected it in the record of a cell that ran)")
    _t_rule_fits(data)
    keys = object_at(data.get("keys", {}), "keys", "an object: stage -> artifact key")
    pattern = WRITTEN_ID if rerun else NAME
    for stage, key in keys.items():
        if not isinstance(key, str) or not pattern.fullmatch(key):
            identifier(key, _at("keys", stage), rerun)


def check_identity(data: dict, need: Need) -> None:
    """The fields every record has: its cell id, status and configuration."""
    identifier(data["cell_id"], "cell_id", need == "rerun")
    if data["status"] not in ("ok", "failed"):
        raise bad("status", data["status"], '"ok" or "failed"')
    object_at(data["config"], "config", "an object: the cell's configuration")
