"""YAML loading that remembers the line of every key, for errors that point at it.

Whatever the file holds, loading it either succeeds or raises one ConfigError naming the
file (and the line where there is one): binary or non-UTF-8 bytes, control characters,
nesting too deep for the recursive code that reads the values, aliases that refer to
themselves, or aliases that multiply into millions of values (a "billion laughs" file)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# PyYAML ships no type information (its stubs, types-PyYAML, are not installed)
import yaml  # type: ignore[import-untyped]
from yaml.constructor import ConstructorError  # type: ignore[import-untyped]

from mcbench.errors import KEY_LIMIT, ConfigError, clip, printable, shown
from mcbench.files import regular_file_bytes

KeyPath = tuple[
    Any, ...
]  # the keys and indexes down to a value: ("tracks", "backdoor-repair", "attacks", 0, "name")

MAX_BYTES = 16 * 2**20
"""A benchmark file is a few kilobytes; anything this large is not one."""
MAX_DEPTH = 100
"""Lists and mappings nested inside one another, aliases expanded."""
MAX_NODES = 100_000
"""Values (keys included) once every alias is expanded: the values are walked, merged and
hashed expanded, so a few nested anchors could otherwise hold the loader for hours."""

NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
"""What YAML counts as a line break, for line numbers that agree with its own."""
MERGE_TAG = "tag:yaml.org,2002:merge"
BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def load_with_lines(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    file = str(path)
    text = _read_text(Path(path), file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        if node is not None:
            _walk(node, (), lines, file, loader)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = "; ".join(part for part in (e.context, e.problem) if part) or "unreadable"
        raise ConfigError(
            clip(f"not valid YAML: {problem}"), file=file, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(clip(f"not valid YAML: {e}"), file=file) from None
    except RecursionError:
        raise ConfigError(
            f"values nested too deeply; expected at most {MAX_DEPTH} levels", file=file
        ) from None
    finally:
        loader.dispose()
    return data, lines


def _read_text(path: Path, file: str) -> str:
    """The file's text, refusing what is not a regular file and what is not UTF-8 text."""
    data = regular_file_bytes(path, limit=MAX_BYTES, expected="a YAML benchmark file")
    for bom, encoding in BOMS:
        if data.startswith(bom):
            raise ConfigError(
                f"the file is {encoding} text; expected UTF-8 (save it as UTF-8)", file=file
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"not UTF-8 text: byte {data[e.start]:#04x} at byte offset {e.start} "
            f"({e.reason}); expected a UTF-8 YAML file",
            file=file,
            line=data.count(b"\n", 0, e.start) + 1,
        ) from None
    bad = NON_PRINTABLE.search(text)
    if bad:
        char = bad.group()
        what = "a NUL byte" if char == "\0" else f"control character U+{ord(char):04X}"
        raise ConfigError(
            f"{what} is not allowed in YAML; expected printable UTF-8 text",
            file=file,
            line=len(LINE_BREAK.findall(text, 0, bad.start())) + 1,
        )
    return text


class _Loader(yaml.SafeLoader):
    """The safe loader, measuring the document as it is composed: its depth and its size
    with aliases expanded, so that a file too deep or too large after expansion is refused
    before anything walks it. Values no Python type can hold (a timestamp on 30 February,
    an integer of 5000 digits) are YAML errors at their line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # composed so far, aliases expanded
        self._heights: list[int] = []  # per open node: the deepest level reached below it
        self._open: set[str] = set()  # anchors of the nodes being composed
        self._measured: dict[str, tuple[int, int]] = {}  # anchor: (nodes, height)

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # the scanner keeps a possible key per open bracket and checks them all at every
        # token: thousands of "[" would hold it for minutes before any node is composed
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, _too_deep("brackets"), self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise ConstructorError(
                    None,
                    None,
                    f"alias *{clip(printable(event.anchor), 40)} refers to a value that holds "
                    "it (a recursive alias)",
                    event.start_mark,
                )
            node = super().compose_node(parent, index)
            nodes, height = self._measured.get(event.anchor, (1, 1))
            self._grow(nodes, height, event.start_mark)
            return node
        self._grow(1, 1, event.start_mark)
        start = self._nodes
        self._heights.append(0)
        if event.anchor is not None:
            self._open.add(event.anchor)
        node = super().compose_node(parent, index)
        height = self._heights.pop() + 1
        if self._heights:
            self._heights[-1] = max(self._heights[-1], height)
        if event.anchor is not None:
            self._open.discard(event.anchor)
            self._measured[event.anchor] = (self._nodes - start + 1, height)
        return node

    def _grow(self, nodes: int, height: int, mark: Any) -> None:
        """Add a value of NODES values and HEIGHT levels at the current level."""
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise ConstructorError(
                None,
                None,
                f"more than {MAX_NODES} values once aliases are expanded (nested "
                "anchors multiplying?); expected a benchmark of a few hundred values",
                mark,
            )
        if len(self._heights) + height > MAX_DEPTH:
            raise ConstructorError(None, None, _too_deep("aliases expanded"), mark)
        if self._heights:
            self._heights[-1] = max(self._heights[-1], height)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, ArithmeticError, TypeError, LookupError) as e:
            tag = node.tag.rsplit(":", 1)[-1]
            value = shown(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
            raise ConstructorError(
                None, None, f"cannot read {value} as {tag}: {e}", node.start_mark
            ) from None


def _too_deep(counting: str) -> str:
    return (
        f"values nested more than {MAX_DEPTH} levels deep ({counting}); expected a few "
        "levels of mappings and lists"
    )


def _walk(node: Any, at: KeyPath, lines: dict[KeyPath, int], file: str, loader: _Loader) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key, value in node.value:
            name = _key_value(key, loader)
            if name is _NOT_A_KEY:
                continue
            if name in seen:
                raise ConfigError(
                    f"key {shown(name)} appears twice",
                    file=file,
                    line=key.start_mark.line + 1,
                    key=clip(format_key(at), KEY_LIMIT),
                )
            seen.add(name)
            lines[at + (name,)] = key.start_mark.line + 1
            _walk(value, at + (name,), lines, file, loader)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, at + (i,), lines, file, loader)


_NOT_A_KEY = object()


def _key_value(key: Any, loader: _Loader) -> object:
    """The key as the loaded mapping holds it (``1``, ``true`` and ``null`` are no
    strings), so that paths built from the loaded values find their lines; _NOT_A_KEY
    for a key that no mapping can hold (a list, a mapping: refused once the values are
    built) and for a merge (``<<``), whose keys are the merged mapping's."""
    if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
        return _NOT_A_KEY
    value = loader.construct_object(key)
    try:
        hash(value)
    except TypeError:
        return _NOT_A_KEY
    return value


def format_key(at: KeyPath) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
