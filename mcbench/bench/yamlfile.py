"""YAML loading that remembers the line of every key, for errors that point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mcbench.errors import ConfigError

KeyPath = tuple  # ("tracks", "backdoor-repair", "attacks", 0, "name")


def load_with_lines(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", file=str(path)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise ConfigError(f"not valid YAML: {e.problem}", file=str(path), line=line) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk(node, (), lines, str(path))
    return data, lines


def _walk(node, at: KeyPath, lines: dict, file: str) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if key.value in seen:
                raise ConfigError(
                    f"key {key.value!r} appears twice",
                    file=file,
                    line=key.start_mark.line + 1,
                    key=format_key(at),
                )
            seen.add(key.value)
            lines[at + (key.value,)] = key.start_mark.line + 1
            _walk(value, at + (key.value,), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, at + (i,), lines, file)


def format_key(at: KeyPath) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
