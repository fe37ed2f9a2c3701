"""The one reader of records: a file under RESULTS/records, or a JSON object, to a ``Record``
of the current schema, or a ConfigError naming the file and the field.

A file that is not a regular file, not UTF-8, not JSON (or repeats a key), or a record with a
field of the wrong type, a missing field that a reader needs, or an identifier that could
name a file outside its folder is refused."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from mcbench.errors import ConfigError
from mcbench.files import regular_file_bytes
from mcbench.results.record_checks import Bad, check_figures, check_record, shown
from mcbench.results.records import (
    READABLE,
    REQUIRED,
    SCHEMA_1_CORRELATE_WITH,
    SCHEMA_1_PLOT_AXIS,
    SCHEMA_1_REPORT_FIGURES,
    WRITTEN_ID,
    MetricInfo,
    Need,
    Record,
    default_plot_axis,
)

MAX_BYTES = 64 * 2**20  # a record is kilobytes; a larger file is not one
_REQUIRED = frozenset(REQUIRED)


def written_id(value: object, file: str | None = None) -> str:
    """VALUE, a cell id or stage key about to name a file, in the shape mcbench writes it;
    anything else is refused rather than made into a path."""
    if not isinstance(value, str) or not WRITTEN_ID.fullmatch(value):
        raise ConfigError(
            f"{shown(value)} is not a cell id (expected 16 lowercase hex digits)", file=file
        )
    return value


def from_json(data: object, file: str | None = None, *, need: Need = "record") -> Record:
    """A record as read from FILE, in the current shape whatever its schema (``schema``
    still says which one it was written with). A ConfigError names the file and the field
    when DATA is not a record this mcbench reads as deeply as NEED asks."""
    if not isinstance(data, dict) or not data.keys() >= _REQUIRED:
        raise ConfigError(
            "not a result record: expected an object with cell_id, status and config", file=file
        )
    schema = data.get("schema")
    if isinstance(schema, bool) or schema not in READABLE:
        found = "no schema field" if schema is None else f"record schema {schema!r}"
        raise ConfigError(
            f"{found}: this mcbench reads record schemas "
            f"{', '.join(map(str, READABLE))} (a newer mcbench may have written it)",
            file=file,
        )
    try:
        check_record(data, need)
    except Bad as e:
        raise ConfigError(e.message, file=file, key=e.where) from None
    record: Record = dict(data)  # type: ignore[assignment]
    if schema == 1:
        record = _from_schema_1(record)
    else:
        record["metric_info"] = _filled(record.get("metric_info", {}))
    try:
        check_figures(record)
    except Bad as e:
        raise ConfigError(e.message, file=file, key=e.where) from None
    return record


def _filled(info: dict[str, MetricInfo]) -> dict[str, MetricInfo]:
    """Each metric's info with every field, as mcbench writes it (hand-made records leave
    some out)."""
    out: dict[str, MetricInfo] = {}
    for key, entry in info.items():
        percent = entry.get("percent", False)
        out[key] = {
            "name": entry.get("name", key),
            "percent": percent,
            "higher_is_better": entry.get("higher_is_better"),
            "plot_axis": entry.get("plot_axis") or default_plot_axis(percent),
            "correlate_with": list(entry.get("correlate_with", [])),
        }
    return out


def _from_schema_1(record: Record) -> Record:
    info: dict[str, MetricInfo] = {}
    for key, entry in (record.get("metric_info") or {}).items():
        name = entry.get("name", key)
        percent = bool(entry.get("percent", False))
        info[key] = {
            "name": name,
            "percent": percent,
            "higher_is_better": entry.get("higher_is_better"),
            "plot_axis": SCHEMA_1_PLOT_AXIS.get(name, default_plot_axis(percent)),
            "correlate_with": list(SCHEMA_1_CORRELATE_WITH.get(name, [])),
        }
    attack = record["config"].get("attack")
    figures = SCHEMA_1_REPORT_FIGURES if record.get("tamper") else []
    out = record.copy()
    out["metric_info"] = info
    out["attack_info"] = (
        {"name": attack["name"], "report_figures": list(figures)} if attack else None
    )
    return out


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


# \ud800-\udfff written as an escape: text that is no character on its own
_SURROGATE = re.compile(r"\\u[dD][89abAB]|\\u[dD][c-fC-F]")

_FAST_NESTING = 500  # brackets in all, well below the depth that the json module refuses


def _fast_parse(data: bytes) -> object:
    """The document in DATA as orjson reads it, or _SLOW where the json module (the
    reference) could read it otherwise or refuse it: anything orjson refuses (NaN,
    Infinity, ...); an escape ``\\u`` (it could write a ':' that the count of keys below
    would miss); a key repeated in one object (orjson keeps one of them): outside a string
    a colon ends a key, inside one it is the same character in DATA and in orjson's compact
    rewriting of the value, so DATA has more colons than the rewriting exactly when a key
    (and its value) was dropped; an integer beyond 64 bits (orjson reads it as a float, of
    at least 1e16, which it writes with "e+"); or nesting that could run into the json
    module's recursion limit."""
    if b"\\" in data and b"\\u" in data:
        return _SLOW
    try:
        value = orjson.loads(data)
        compact = orjson.dumps(value)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _SLOW
    if (
        compact.count(b":") != data.count(b":")
        or b"e+" in compact
        or compact.count(b"[") + compact.count(b"{") > _FAST_NESTING
    ):
        return _SLOW
    return value


_SLOW = object()


def parse_json(data: bytes, file: str) -> object:
    """The JSON document in DATA: UTF-8 text, each key once per object. It reads as the
    json module reads it, errors included; orjson reads the documents that the two read
    alike, faster (it refuses what is not UTF-8 as the json module's reader does)."""
    value = _fast_parse(data)
    if value is not _SLOW:
        return value
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
            f"(expected a JSON record in UTF-8)",
            file=file,
        ) from None
    value = _json_module_parse(text, file)
    if "\\u" in text and _SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                "not a valid record: a string holds half of a UTF-16 pair (\\ud800-\\udfff) "
                "(expected text)",
                file=file,
            ) from None
    return value


def _json_module_parse(text: str, file: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise ConfigError(
            f"not a valid record: key {json.dumps(e.args[0])} repeated in one object "
            "(expected each key once)",
            file=file,
        ) from None
    except RecursionError:
        raise ConfigError(
            "not a valid record (JSON): nested too deeply (expected a record)", file=file
        ) from None
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        raise ConfigError(f"not a valid record (JSON): {e}", file=file) from None


def read_record(path: str | Path, *, need: Need = "record") -> Record:
    """The record in the file PATH (RESULTS/records/<cell_id>.json), checked as deeply as
    NEED asks; its file name must be its cell id (the runner looks a record up by it)."""
    file = os.fspath(path)
    data = regular_file_bytes(file, limit=MAX_BYTES, expected="a JSON result record")
    record = from_json(parse_json(data, file), file, need=need)
    name = os.fsdecode(os.path.basename(file))
    if name != f"{record['cell_id']}.json":
        raise ConfigError(
            f"cell_id {json.dumps(record['cell_id'])} is not the file's name "
            f"(expected the file {record['cell_id']}.json)",
            file=file,
        )
    return record


def record_files(results: str | Path) -> list[Path]:
    """The record files under RESULTS/records (every *.json entry), in file-name order."""
    folder = Path(results) / "records"
    if not folder.is_dir():
        raise FileNotFoundError(f"{results}: no records folder (expected {folder})")
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".json"))
    except OSError as e:
        raise ConfigError(f"cannot be listed: {e.strerror or e}", file=str(folder)) from None
    return [folder / name for name in names]


Invalid = Callable[[ConfigError], None]
"""What to do with a record that does not read: report it and go on (it is left out)."""


def read_records(
    paths: Iterable[str | Path], *, need: Need = "tables", invalid: Invalid | None = None
) -> tuple[list[Record], list[Record]]:
    """(ok records, failed records) of the files PATHS, in their order. A file that is not a
    record raises its ConfigError, or, given INVALID, is passed to it and left out."""
    ok: list[Record] = []
    failed: list[Record] = []
    with _collector_paused():
        for path in paths:
            try:
                record = read_record(path, need=need)
            except ConfigError as e:
                if invalid is None:
                    raise
                invalid(e)
                continue
            (ok if record["status"] == "ok" else failed).append(record)
    return ok, failed


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """While tables and figures are built from records just read: every object alive now
    (above all, the records) kept out of the cyclic garbage collector's passes, which would
    otherwise walk hundreds of thousands of them a few times over for nothing; back in
    when done. Left alone when something else has frozen objects already."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while records are read: parsed JSON holds no
    cycles, and otherwise the collector walks the growing heap of records again and again
    (about a third of the reading time for 10,000 records). When done, what was read goes
    straight to the oldest generation (a freeze and a thaw, which walk nothing), where the
    records would end after two collections anyway; else the first collection after the
    pause walks every object read (a tenth of the reading time). Not when something else
    has frozen objects: the thaw would release those as well."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def load_records(
    results: str | Path, *, need: Need = "tables", invalid: Invalid | None = None
) -> tuple[list[Record], list[Record]]:
    """(ok records, failed records) found under RESULTS/records, in file-name order, each
    checked as deeply as NEED asks (by default: for the tables and figures)."""
    return read_records(record_files(results), need=need, invalid=invalid)
