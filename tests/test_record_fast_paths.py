"""The record reader's fast paths read exactly what the reference paths read.

orjson reads a record file only where it reads it as the json module does (values, types
and every refusal, with the json module's message); the predicate generated from the
schema (``mcbench.typed``) accepts a value only where the schema's checks do, and accepts
every published record (so that reading them takes the fast path)."""

from __future__ import annotations

import json
import math
import random
from functools import cache
from pathlib import Path

import pytest

from mcbench import typed
from mcbench.errors import ConfigError
from mcbench.results import record_reader
from mcbench.results.record_checks import flags
from mcbench.results.records import Record
from mcbench.typed import Bad

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
PUBLISHED = sorted(LEADERBOARDS.glob("*/records/*.json"))


def same(a: object, b: object) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0, NaN is NaN)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return False
            pending += [(x[k], y[k]) for k in x]
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending += zip(x, y)
        elif isinstance(x, float) and isinstance(y, float):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
        elif x != y:
            return False
    return True


def read(data: bytes) -> object:
    """What parse_json makes of DATA: its value, or its error message."""
    try:
        return record_reader.parse_json(data, "r.json")
    except ConfigError as e:
        return f"error: {e}"


def read_slowly(data: bytes, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(record_reader, "_fast_parse", lambda data: record_reader._SLOW)
        return read(data)


DOCUMENTS = [
    b"{}",
    b' {"a": 1} ',
    b'{"a": 1, "a": 2}',
    b'{"a": {"b": 1, "b": {"c": 2}}}',
    b'{"a": [{"x": 1}, {"x": 1, "x": 1}]}',
    b'{"a:b": 1, "a:b": 2}',
    b'{"a": "x:y", "b": "\\u003a", "b": 1}',
    b'{"a\\u003ab": 1, "a:b": 2}',
    b'{"n": 12345678901234567890123}',
    b'{"n": -12345678901234567890123}',
    b'{"n": 9223372036854775807, "m": 18446744073709551615, "k": -9223372036854775808}',
    b'{"n": -9223372036854775809}',
    b'{"n": 1e400}',
    b'{"n": -1e400, "m": 1e-400}',
    b'{"n": NaN}',
    b'{"n": Infinity, "m": -Infinity}',
    b'{"n": 1e+16, "m": 1.5E3, "k": -0.0, "j": -0}',
    b'{"label": "one+two e+3"}',
    b"\xef\xbb\xbf{}",
    b'{"a": "\xff"}',
    b'{"a": "\xed\xa0\x80"}',
    b'{"a": "\xc3"}',
    b'{"a": "caf\xc3\xa9 \xf0\x9f\x98\x80"}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\ud83d\\ude00"}',
    b'{"a": "tab\there"}',
    b'{"a": "\\t\\n\\"\\\\\\/"}',
    b'{"a": 1,}',
    b'{"a": 01}',
    b'{"a": 1} x',
    b'{"a": 1}\x0c',
    b"",
    b"[1, 2",
    b'"just a string"',
    b"[" * 499 + b"]" * 499,
    b"[" * 600 + b"]" * 600,
    b"[" * 1100 + b"]" * 1100,
    b'{"a": ' * 700 + b"1" + b"}" * 700,
]


@pytest.mark.parametrize("data", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_orjson_reads_as_the_json_module(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = read(data), read_slowly(data, monkeypatch)
    assert same(fast, slow), (fast, slow)


def test_orjson_reads_the_published_records_and_their_damaged_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(26)
    taken = 0
    for path in PUBLISHED[::6]:
        data = path.read_bytes()
        taken += record_reader._fast_parse(data) is not record_reader._SLOW
        lines = data.split(b"\n")
        for _ in range(15):
            i, j = rng.randrange(len(data)), rng.randrange(len(lines))
            for damaged in (
                data[:i] + data[i + 1 :],
                data[:i] + bytes([rng.randrange(256)]) + data[i:],
                b"\n".join(lines[: j + 1] + lines[j:]),  # a line twice: often a key twice
            ):
                fast, slow = read(damaged), read_slowly(damaged, monkeypatch)
                assert same(fast, slow), (path.name, damaged[max(0, i - 20) : i + 20])
    assert taken == len(PUBLISHED[::6])


# --- the predicate generated from the schema ----------------------------------------------

NEEDS = ("record", "tables", "rerun")
_fits = cache(typed._fits)  # the predicate of the fast path
_compile = cache(typed._compile)  # the checks, which say why
ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    3,
    2**60,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    "",
    "x",
    "0123456789abcdef",
    "fixed",
    "bonafide",
    [],
    [1.0],
    [[0.0, 0.0]],
    {},
    {"rule": "fixed"},
    {"name": "n", "params": {}},
]


def fits_agrees(value: dict[str, object]) -> None:
    for need in NEEDS:
        if not (need == "record" or "status" in value):
            continue
        chosen = flags(value, need)
        if _fits(Record, chosen)(value):
            _compile(Record, chosen)(value)  # raises Bad where the predicate was wrong


def paths_of(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += paths_of(v, (*prefix, i))
    return out


def test_the_generated_predicate_accepts_the_published_records() -> None:
    for path in PUBLISHED:
        record = json.loads(path.read_text(encoding="utf-8"))
        for need in NEEDS:
            assert _fits(Record, flags(record, need))(record), (path.name, need)


def test_the_generated_predicate_accepts_only_what_the_checks_accept() -> None:
    rng = random.Random(2026)
    for path in PUBLISHED[::9]:
        record = json.loads(path.read_text(encoding="utf-8"))
        places = paths_of(record)[1:]
        for place in rng.sample(places, min(len(places), 60)):
            *parents, last = place
            for change in rng.sample(ODD_VALUES, 6) + ["delete"]:
                damaged = json.loads(json.dumps(record))
                holder = damaged
                for key in parents:
                    holder = holder[key]
                if change == "delete":
                    if isinstance(holder, dict):
                        del holder[last]
                    else:
                        holder.pop(last)
                else:
                    holder[last] = change
                try:
                    fits_agrees(damaged)
                except Bad as e:
                    raise AssertionError(f"{path.name}: {place} = {change!r}: {e}") from None
