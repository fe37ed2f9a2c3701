"""Malformed benchmark files: `mcbench validate` answers exit code 2 and one line naming the
file (and line), never a traceback, a crash or a hang, and writes nothing.

The property tests damage the valid TINY benchmark the ways real files get damaged (a key
deleted, a half-written file, a value mistyped, another encoding) and check that contract
on each damaged copy; tests/test_malformed_benchmarks_slow.py runs many more of them."""

from __future__ import annotations

import copy
import math
import os
import re
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.errors import ConfigError
from tests.conftest import TINY

MESSAGE_LIMIT = 300
"""Characters an error line may take besides the file's path."""

WHOLE_FILE = ("the file is ", "is a ", "cannot read the file")
"""How the errors about the whole file (its encoding, its kind) begin: they have no line."""

CASE_SECONDS = 2.0
"""The time one damaged file may take to be refused (hypothesis' deadline)."""


# --- the contract ----------------------------------------------------------------------------


def contract_violations(path: Path, command: tuple[str, ...] = ("validate",)) -> list[str]:
    """What `mcbench COMMAND PATH` did against the contract for bad input (empty: nothing):
    exit code 0 or 2, no exception, and on 2 one short line naming the file and a line
    (but for errors about the whole file). The command runs in PATH's folder, so a file
    written relative to it is seen too."""
    folder = path.parent
    before = sorted(os.listdir(folder))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(cli, [*command, str(path)])
    finally:
        os.chdir(cwd)
    problems = []
    if result.exit_code not in (0, 2):
        problems.append(f"exit code {result.exit_code}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"raised {type(result.exception).__name__}: {result.exception!s:.200}")
    if "Traceback" in result.output:
        problems.append("a traceback in the output")
    if result.exit_code == 2:
        lines = result.output.splitlines()
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines of output: {result.output!r:.400}")
        elif not lines[0].startswith("error: ") or str(path) not in lines[0]:
            problems.append(f"not an error line naming the file: {lines[0]!r:.400}")
        elif len(lines[0]) - len(str(path)) > MESSAGE_LIMIT:
            problems.append(f"a message of {len(lines[0])} characters")
        elif not re.match(rf"error: {re.escape(str(path))}:\d+: ", lines[0]) and not any(
            lines[0].startswith(f"error: {path}: {whole}") for whole in WHOLE_FILE
        ):
            problems.append(f"no line number: {lines[0]!r:.400}")
    after = sorted(os.listdir(folder))
    if after != before:
        problems.append(f"wrote {sorted(set(after) - set(before))}")
    return problems


def check_file(data: bytes, command: tuple[str, ...] = ("validate",)) -> list[str]:
    """Write DATA as the only file of a fresh folder and check the contract on it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_bytes(data)
        return contract_violations(path, command)


# --- damage ----------------------------------------------------------------------------------

TINY_TREE = yaml.safe_load(TINY)

ODD_SCALARS = (
    ".nan", ".NaN", "-.nan", ".inf", "-.inf", "+.inf", ".Inf", "1e999", "-1e999", "1e308",
    "2.5e-324", "0", "-1", "-0", "1", "2", "3.5", "-3.5", "1000000000000", "10000000000000000",
    "18446744073709551616", "-9223372036854775809", "9223372036854775807", "9" * 30,
    "0x" + "f" * 1200, "0o777", "0b101", "1_000", "1" * 5000, "[]", "{}", "[[]]", "[{}]",
    "{a: {b: {c: 1}}}", "{name: {name: x}}", "{name: convnet}", "{name: []}", "[1, 2, 3]",
    "[0.5, .nan]", "[1000000000000]", "[-1]", "[0]", "[1, 1]", "~", "null", "true", "false",
    "no", "on", "yes", "''", '""', "'a b'", "2001-99-99", "2001-01-01", "2001-02-30 10:00:00",
    "2001-12-14t21:59:43.10-05:00", "!!binary aGVsbG8=", "!!binary ###", "!!set {a, b}",
    "!!omap [a: 1, a: 2]", "!!python/object:os.system x", "!!python/name:os.system",
    "!!str 1", "!!int x", "!!float x", "!!bool maybe", "!!null x", "!custom 1", "&a 1",
    "*undefined", "&a [*a]", "[" * 150 + "]" * 150, '"\\x07"', '"\\u0000"', '"a\\nb"',
    '"\\e[31mred"', '"\\u2028"', "|\n  multi\n  line", ">-", "- a", "? a", "@x", "`x", "%x",
    "<<: {a: 1}", "{<<: *undefined}", "a: b: c", "'unterminated", '"unterminated', "[1, 2",
    "{a: 1", "#", "x" * 2000, "synthetic", "convnet", "badnets", "path", "linear", "pgd",
    "bitflip", "clean_accuracy",
)  # fmt: skip

CONTROL = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
CONTROL += ["\x85", "\u2028", "\ufeff", "\ufffe", "\uffff", "\ud800", "\x1b[31m", "\r"]

ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252")


def _yaml_numbers():
    return st.one_of(
        st.integers().map(str),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(
            lambda f: {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(repr(f), repr(f))
        ),
    )


def raw_scalars():
    """YAML text for a value: odd values, numbers of every size, random text."""
    return st.one_of(
        st.sampled_from(ODD_SCALARS),
        _yaml_numbers(),
        st.text(max_size=12),
        st.lists(_yaml_numbers(), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    )


def _paths(tree, at=()):
    """Every (path, is-a-mapping-key) inside a parsed tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield at + (key,), True
            yield from _paths(value, at + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield at + (i,), False
            yield from _paths(value, at + (i,))


ALL_PATHS = list(_paths(TINY_TREE))
KEY_PATHS = [p for p, is_key in ALL_PATHS if is_key]


def _holder(tree, path):
    for part in path[:-1]:
        tree = tree[part]
    return tree


KNOWN_NAMES = (
    "name", "epochs", "batch_size", "lr", "momentum", "weight_decay", "widths",
    "convs_per_stage", "batch_norm", "depth", "model", "kwargs", "num_classes", "image_size",
    "channels", "train_per_class", "noise", "seed", "target", "poison_rate", "patch_size",
    "kappa", "steps", "eps", "attack", "grid", "report_t", "eval_size", "defender_pool",
    "endpoints", "tracks", "defaults", "profiles", "description", "version", "adversarial",
)  # fmt: skip
"""Keys a benchmark or a plugin knows, to add where they may or may not belong."""


def _sentinel(i: int) -> str:
    return f"zzreplaced{i}zz"


@st.composite
def structural(draw, max_ops: int = 1):
    """TINY re-dumped after up to MAX_OPS changes to its tree: a key deleted, renamed or
    added, a value replaced by odd YAML text or wrapped in a list or a mapping."""
    tree = copy.deepcopy(TINY_TREE)
    raws = []
    for i in range(draw(st.integers(min_value=1, max_value=max_ops))):
        paths = list(_paths(tree))
        keys = [p for p, is_key in paths if is_key]
        mappings = [()] + [p for p, _ in paths if isinstance(_holder(tree, p + (0,)), dict)]
        op = draw(st.sampled_from(["delete", "replace", "replace", "rename", "wrap", "add"]))
        if op in ("delete", "rename") and keys:
            path = draw(st.sampled_from(keys))
            holder = _holder(tree, path)
            value = holder.pop(path[-1])
            if op == "rename":
                holder[draw(st.sampled_from([*KNOWN_NAMES, "nme", "x", _sentinel(i)]))] = value
                raws.append(draw(raw_scalars()))
        elif op == "add":
            path = draw(st.sampled_from(mappings))
            _holder(tree, path + (0,))[draw(st.sampled_from(KNOWN_NAMES))] = _sentinel(i)
            raws.append(draw(raw_scalars()))
        elif paths:
            path = draw(st.sampled_from([p for p, _ in paths]))
            holder = _holder(tree, path)
            if op == "wrap":
                value = holder[path[-1]]
                holder[path[-1]] = {"name": value} if draw(st.booleans()) else [value]
            else:
                holder[path[-1]] = _sentinel(i)
                raws.append(draw(raw_scalars()))
        else:
            raws.append(None)
        while len(raws) <= i:
            raws.append(None)
    style = draw(st.sampled_from([None, False, True]))
    text = yaml.safe_dump(tree, default_flow_style=style, sort_keys=False, width=10**6)
    for i, raw in enumerate(raws):
        if raw is not None:
            # a value that does not fit on its line is given as a quoted scalar
            if "\n" in raw:
                raw = '"' + raw.encode("unicode_escape").decode() + '"'
            text = text.replace(_sentinel(i), raw)
    return text.encode("utf-8", "surrogatepass")


VALUE = re.compile(r"(?<=: )[^,{}\[\]\n]+|(?<=\[)[^,{}\[\]\n]+|(?<=, )[^,{}\[\]\n:]+(?=[,\]])")
KEY_VALUE = re.compile(r"[\w-]+: [^,{}\[\]\n]+")


def _text_op(draw, data: bytes) -> bytes:
    op = draw(
        st.sampled_from(
            [
                "truncate", "insert_bytes", "control", "delete_span", "duplicate_line",
                "duplicate_key", "value", "value", "encode", "tab",
            ]
        )
    )  # fmt: skip
    at = draw(st.integers(min_value=0, max_value=len(data)))
    if op == "truncate":
        return data[:at]
    if op == "insert_bytes":
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if op == "control":
        char = draw(st.sampled_from(CONTROL)).encode("utf-8", "surrogatepass")
        return data[:at] + char + data[at:]
    if op == "delete_span":
        return data[:at] + data[at + draw(st.integers(min_value=1, max_value=40)) :]
    text = data.decode("utf-8", "surrogateescape")
    if op == "duplicate_line":
        lines = text.splitlines(keepends=True) or [""]
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        lines.insert(i, lines[i])
        text = "".join(lines)
    elif op == "duplicate_key":
        found = list(KEY_VALUE.finditer(text))
        if found:
            m = draw(st.sampled_from(found))
            text = text[: m.start()] + m.group() + ", " + text[m.start() :]
    elif op == "value":
        found = list(VALUE.finditer(text))
        if found:
            m = draw(st.sampled_from(found))
            raw = draw(raw_scalars())
            text = text[: m.start()] + raw + text[m.end() :]
    elif op == "tab":
        text = re.sub(r"(?m)^  ", "\t", text, count=draw(st.integers(min_value=1, max_value=3)))
    elif op == "encode":
        encoding = draw(st.sampled_from(ENCODINGS))
        text = text.replace("synthetic", draw(st.sampled_from(["synthetic", "synthétic"])))
        return text.encode(encoding, "replace")
    return text.encode("utf-8", "surrogateescape")


@st.composite
def damaged(draw, max_text_ops: int = 2, max_tree_ops: int = 1):
    """TINY's bytes after changes to its tree (see structural) and/or up to MAX_TEXT_OPS
    changes to its text: truncation, random bytes, control characters, duplicates, odd
    values, another encoding, tabs."""
    if draw(st.booleans()):
        data = draw(structural(max_tree_ops))
    else:
        data = TINY.encode()
    for _ in range(
        draw(st.integers(min_value=0 if data != TINY.encode() else 1, max_value=max_text_ops))
    ):
        data = _text_op(draw, data)
    return data


def refused(data: bytes | str, tmp_path: Path, name: str = "bench.yaml") -> str:
    """The one error line `mcbench validate` prints for DATA, checked against the contract."""
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    start = time.monotonic()
    assert contract_violations(path) == []
    assert time.monotonic() - start < 10
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    return result.output.strip()


# --- 1. bytes that are not UTF-8 text ---------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        (TINY.encode("utf-16"), "bench.yaml: the file is UTF-16 text; expected UTF-8"),
        (TINY.encode("utf-32"), "bench.yaml: the file is UTF-32 text; expected UTF-8"),
        (TINY.encode("utf-16-le"), "bench.yaml:1: a NUL byte is not allowed in YAML"),
        (TINY.replace("synthetic", "synthétic").encode("latin-1"), "bench.yaml:4: not UTF-8"),
        (bytes(range(256)) * 8, "bench.yaml:2: not UTF-8 text: byte 0x80"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "bench.yaml:1: not UTF-8 text: byte 0x89"),
        (
            TINY.replace("seeds: [0]", "seeds: [0]\x07").encode(),
            "bench.yaml:10: control character ",
        ),
        (TINY.replace("budgets", "bud\x1b[31mgets").encode(), "bench.yaml:9: control character "),
        (TINY.replace("version: 1", "version: 1\x00").encode(), "bench.yaml:1: a NUL byte"),
    ],
    ids=["utf-16", "utf-32", "utf-16-no-bom", "latin-1", "binary", "png", "bel", "escape", "nul"],
)
def test_bytes_that_are_not_utf8_text_are_one_error(data, expected, tmp_path):
    assert expected in refused(data, tmp_path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


# --- 2. nesting and recursive aliases ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\ntracks: " + "[" * 1000 + "]" * 1000 + "\n",
        "version: 1\ntracks: " + "[" * 100_000 + "\n",
        "version: 1\ntracks: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
        "".join(" " * i + f"k{i}:\n" for i in range(1000)),
        "".join(" " * i + "-\n" for i in range(1000)),
        # each alias nests the one before: 20 anchors of depth 10 make 200 levels
        "".join(f"a{i}: &a{i} " + "[" * 9 + (f"*a{i - 1}" if i else "1") + "]" * 9 + "\n"
                for i in range(20)),
    ],
    ids=["flow-list", "unclosed-brackets", "flow-mapping", "block-mapping", "block-list",
         "aliases"],
)  # fmt: skip
def test_deep_nesting_is_refused(text, tmp_path):
    line = refused(text, tmp_path)
    assert "nested more than 100 levels deep" in line
    assert re.match(r"error: .*bench\.yaml:\d+: ", line)


@pytest.mark.parametrize(
    "text",
    [
        "a: &r [*r]\n",
        "a: &r {b: *r}\n",
        TINY.replace("seeds: [0]", "seeds: &s [0, [*s]]"),
        TINY.replace("split: {defender_pool: 60}", "split: &s {defender_pool: 60, x: *s}"),
    ],
)
def test_recursive_aliases_are_refused(text, tmp_path):
    assert "refers to a value that holds it (a recursive alias)" in refused(text, tmp_path)


def test_nesting_a_benchmark_needs_is_accepted(tmp_path):
    path = tmp_path / "bench.yaml"
    nested = "{name: robust_accuracy, attack: {name: pgd, steps: 2}}"
    path.write_text(TINY.replace("metrics: [", f"metrics: [{nested}, "))
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


# --- 3. alias bombs ---------------------------------------------------------------------------


def billion_laughs(levels: int = 9, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\nversion: 1\ntracks: {{t: {{seeds: *a{levels - 1}}}}}\n"


@pytest.mark.parametrize("levels, width", [(9, 10), (5, 100), (30, 2)])
def test_alias_bombs_are_refused_quickly_and_briefly(levels, width, tmp_path):
    start = time.monotonic()
    line = refused(billion_laughs(levels, width), tmp_path)
    assert time.monotonic() - start < CASE_SECONDS * 2
    assert "more than 100000 values once aliases are expanded" in line
    assert re.match(r"error: .*bench\.yaml:\d+: ", line)
    assert len(line) < MESSAGE_LIMIT + len(str(tmp_path))


def test_a_long_value_is_quoted_short(tmp_path):
    values = "[" + ", ".join(["0.1"] * 5000) + "]"
    line = refused(TINY.replace("lr: 0.05", f"lr: {values}"), tmp_path)
    assert (
        "train.lr: expected a number, got [0.1, " in line
        and "..." in line
        and len(line) < MESSAGE_LIMIT + len(str(tmp_path))
    )
    line = refused(TINY.replace("lr: 0.05", "lr: 0x" + "f" * 3000), tmp_path)
    assert "integer of 12000 bits" in line


def test_shared_anchors_within_the_bound_are_accepted(tmp_path):
    path = tmp_path / "bench.yaml"
    text = "defaults:\n  train: &t {epochs: 2, batch_size: 32, lr: 0.05}\n" + TINY.replace(
        "train: {epochs: 2, batch_size: 32, lr: 0.05}", "train: *t"
    )
    path.write_text(text)
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


# --- 4. networks that cannot be built or would not fit in memory ------------------------------


@pytest.mark.parametrize(
    "old, new, key, expected",
    [
        ("widths: [8, 16]", "widths: [1000000000000, 16]", "architectures[0].widths",
         "channel counts from 1 to 65536"),
        ("widths: [8, 16]", "widths: [8, 16], convs_per_stage: 1000000000000",
         "architectures[0].convs_per_stage", "convs_per_stage must be from 1 to 64"),
        ("widths: [8, 16]", "widths: [65536, 65536]", "architectures[0].widths",
         "parameters"),
        ("num_classes: 4", "num_classes: 18446744073709551616", "datasets[0].num_classes",
         "between -2**63 and 2**63"),
        ("num_classes: 4", "num_classes: 1000000000000", "datasets[0].num_classes",
         "at most 8 GiB of images"),
        ("num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40",
         "num_classes: 200000000, image_size: 4, channels: 1, train_per_class: 1, test_per_class: 1",
         "datasets[0].num_classes", "parameters, more than the 2e+09 allowed"),
        ("image_size: 16", "image_size: 1000000000000", "datasets[0].image_size",
         "at most 8 GiB of images"),
        ("{name: convnet, widths: [8, 16]}", "{name: preresnet, depth: 6000000002}",
         "architectures[0].depth", "depth must be at most 1202"),
        ("{name: convnet, widths: [8, 16]}",
         "{name: timm, model: vit_tiny_patch16_224, kwargs: {embed_dim: 1}}",
         "architectures[0].kwargs", "cannot be built for 4 classes of 16x16 images"),
        ("{name: convnet, widths: [8, 16]}",
         "{name: timm, model: vit_tiny_patch16_224, kwargs: {depth: 1000000000}}",
         "architectures[0].kwargs", "out of range"),
        ("{name: convnet, widths: [8, 16]}",
         "{name: timm, model: resnet18, kwargs: {drop_rate: .nan}}",
         "architectures[0].kwargs", "finite number"),
        ("train_per_class: 64", "train_per_class: 1000000000000",
         "datasets[0].train_per_class", "at most 8 GiB of images"),
        ("image_size: 16", "image_size: 16, channels: 100000000", "datasets[0].channels",
         "at most 8 GiB of images"),
    ],
    ids=["width-huge", "convs-huge", "too-many-parameters", "classes-2**64", "classes-1e12",
         "classes-1e8-head", "image-1e12", "preresnet-depth", "timm-embed-dim-1", "timm-depth", "timm-nan",
         "images-1e12", "channels-1e8"],
)  # fmt: skip
def test_networks_that_cannot_be_built_name_the_key(old, new, key, expected, tmp_path):
    assert old in TINY
    line = refused(TINY.replace(old, new), tmp_path)
    assert f"tracks.backdoor-repair.{key}: " in line and expected in line, line
    assert re.match(r"error: .*bench\.yaml:\d+: ", line)


def test_a_build_error_is_reported_against_the_architecture(tmp_path):
    # two stages halve a 16-pixel image twice; five would leave no pixel
    line = refused(TINY.replace("widths: [8, 16]", "widths: [8, 8, 8, 8, 8]"), tmp_path)
    assert "architectures[0].widths: " in line and "need images of at least 32 pixels" in line


def test_small_widths_build(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(TINY.replace("widths: [8, 16]", "widths: [1, 1]"))
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


# --- 5. what is not a regular file ------------------------------------------------------------


def _within(seconds: float, call):
    """CALL's outcome (its value or the exception it raised), failing if it takes longer."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: B036 - handed back to the test
            outcome["value"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome["value"]


def test_a_directory_is_refused(tmp_path, registry):
    error = _within(10, lambda: load_benchmark(tmp_path, registry))
    assert isinstance(error, ConfigError)
    assert str(error) == f"{tmp_path}: is a directory; expected a YAML benchmark file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting(tmp_path, registry):
    fifo = tmp_path / "bench.yaml"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    error = _within(10, lambda: load_benchmark(fifo, registry))
    assert isinstance(error, ConfigError) and "is a FIFO (named pipe)" in str(error)
    result = _within(10, lambda: CliRunner().invoke(cli, ["validate", str(fifo)]))
    assert result.exit_code == 2
    assert (
        result.output == f"error: {fifo}: is a FIFO (named pipe); expected a YAML benchmark file\n"
    )


def test_a_device_is_refused(registry):
    error = _within(10, lambda: load_benchmark("/dev/zero", registry))
    assert isinstance(error, ConfigError) and "is a device" in str(error)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_directory_given_to_the_cli_is_one_line(tmp_path, command):
    result = CliRunner().invoke(cli, [command, str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path}: is a directory; expected a YAML benchmark file\n"


# --- 6. NaN and infinities --------------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+999", "1" + "0" * 400])
@pytest.mark.parametrize(
    "old, new",
    [
        ("lr: 0.05", "lr: {}"),
        ("lr: 0.05", "lr: 0.05, weight_decay: {}"),
        ("poison_rate: 0.1", "poison_rate: {}"),
        ("evaluate: {grid: 3}", "evaluate: {{grid: 3, report_t: {}}}"),
        ("test_per_class: 40", "test_per_class: 40, noise: {}"),
        ("metrics: [", "metrics: [{{name: robust_accuracy, attack: {{name: cw, kappa: {}}}}}, "),
    ],
    ids=["lr", "weight_decay", "poison_rate", "report_t", "noise", "cw.kappa"],
)
def test_nan_and_infinities_are_refused(old, new, value, tmp_path):
    line = refused(TINY.replace(old, new.format(value)), tmp_path)
    assert "expected a finite number" in line
    assert re.match(r"error: .*bench\.yaml:\d+: tracks\.backdoor-repair\.", line)


def test_every_float_parameter_refuses_nan_and_infinities(registry):
    from mcbench.bench.load import SECTIONS
    from mcbench.registry.params import BadParam, build, describe

    classes = [e.cls for e in registry.all()] + list(SECTIONS.values())
    checked = 0
    for cls in classes:
        for p in describe(cls):
            if p.type not in (float, float | None):
                continue
            for value in (float("nan"), float("inf"), -float("inf"), 10**400):
                with pytest.raises(BadParam, match="finite number") as info:
                    build(cls, {p.name: value}, resolve=registry.resolve)
                assert info.value.key == p.name
            checked += 1
    assert checked >= 25


@dataclass(frozen=True)
class Clipped:
    name: ClassVar[str] = "clipped"
    bound: float = field(default=1.0, metadata={"nonfinite": True})
    scale: float = 1.0


def test_a_parameter_may_allow_nan_and_infinities():
    from mcbench.registry.params import BadParam, build

    assert build(Clipped, {"bound": float("inf")}).bound == float("inf")
    assert build(Clipped, {"bound": -(10**400)}).bound == -float("inf")
    assert math.isnan(build(Clipped, {"bound": float("nan")}).bound)
    with pytest.raises(BadParam, match="finite number"):
        build(Clipped, {"scale": float("inf")})


# --- 7. every error carries the file and the line ---------------------------------------------


def _deleted(tree, path):
    tree = copy.deepcopy(tree)
    del _holder(tree, path)[path[-1]]
    return tree


def _located(data: bytes, folder: Path, registry) -> None:
    """Load DATA: an error names the file, a line, and the line of its key where that
    key is in the file."""
    from mcbench.bench.yamlfile import format_key, load_with_lines

    path = folder / "bench.yaml"
    path.write_bytes(data)
    try:
        load_benchmark(path, registry)
    except ConfigError as e:
        assert e.file == str(path) and e.line is not None, str(e)
        try:
            lines = {format_key(k): n for k, n in load_with_lines(path)[1].items()}
        except ConfigError:
            lines = {}
        if e.key in lines:
            assert e.line == lines[e.key], str(e)


@pytest.mark.parametrize("style", [False, None], ids=["block", "flow-leaves"])
def test_deleting_any_key_gives_an_error_with_its_line(style, tmp_path, registry):
    for path in KEY_PATHS:
        tree = _deleted(TINY_TREE, path)
        text = yaml.safe_dump(tree, default_flow_style=style, sort_keys=False)
        _located(text.encode(), tmp_path, registry)


def test_truncating_the_file_gives_an_error_with_its_line(tmp_path, registry):
    data = TINY.encode()
    ends = {m.end() for m in re.finditer(rb"\n", data)} | set(range(0, len(data), 11))
    for at in sorted(ends):
        _located(data[:at], tmp_path, registry)


@pytest.mark.parametrize(
    "old, new, line",
    [
        ("    seeds: [0]\n", "", 3),  # a required key missing: the track's line
        ("{name: path, epochs: 2, batch_size: 32}", "{epochs: 2}", 7),
        ("version: 1", "on: 1", 1),  # a key YAML reads as true
        ("version: 1", "1: 1", 1),
        ("    budgets: [40]\n", "    budgets: [40]\n    null: 3\n", 10),
        ("patch_size: 3", "3.5: 3", 6),
        ("{defender_pool: 60}", "{~: 60}", 12),
        ("backdoor-repair:", "7:", 3),
    ],
)
def test_odd_and_missing_keys_are_located(old, new, line, tmp_path, registry):
    path = tmp_path / "bench.yaml"
    path.write_text(TINY.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry)
    assert info.value.file == str(path) and info.value.line == line, str(info.value)


def test_a_message_is_one_printable_line():
    error = ConfigError("a\nb\x1b[31m", file="f.yaml", line=3, key="k\tk")
    assert str(error) == "f.yaml:3: k\\tk: a\\nb\\x1b[31m" and str(error).isprintable()


# --- the property: any damage gives exit 0, or exit 2 and one line ----------------------------


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Load the plugins once, so the first generated case is timed like the others."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(TINY)
        assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


@settings(
    max_examples=200,
    deadline=int(CASE_SECONDS * 1000),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damaged())
def test_damaged_files_get_one_error_line(data):
    assert check_file(data) == []


@settings(
    max_examples=200,
    deadline=int(CASE_SECONDS * 1000),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(structural(max_ops=3))
def test_files_with_odd_values_get_one_error_line(data):
    assert check_file(data) == []
