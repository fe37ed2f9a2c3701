"""Reference pages generated at build time from the code, so that they cannot drift from it.

``benchmark_file_page()`` lists every key of a benchmark file: the top-level keys and the
track keys of ``mcbench.bench.load``, and every field of the settings sections (its type,
default and help, as ``mcbench.registry.params.describe`` gives them).
``plugins_page()`` lists every built-in plugin's parameters, kind by kind, as
``mcbench plugins`` does. ``record_page()`` lists every field of a result record, object by
object, from the schema's TypedDicts (``mcbench.results.records``): its type, when a reader
needs it, and what it holds (the field's comment in the schema, else the docstring of the
type it is declared with, else what the reader's messages call it). ``on_files`` is the
MkDocs hook that adds the pages to the site; nothing else here imports MkDocs.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import tokenize

BENCHMARK_FILE = "benchmark-file.md"
PLUGINS = "plugin-parameters.md"
RECORD = "result-record.md"

TOP_KEY_HELP = {
    "version": "the file format's version; only `1` is read (default `1`)",
    "description": "free text about the file",
    "defaults": "track keys that every track inherits (a track's own value wins)",
    "tracks": "a mapping of track names to track settings: the tracks to run",
    "profiles": (
        "a mapping of profile names to profiles; `--profile NAME` layers one on top of the "
        "file (see [Profiles](#profiles))"
    ),
}

TRACK_KEY_HELP = {
    "description": "free text about the track",
    "budgets": "bonafide budgets: how many of the defender's pool images a repair may use",
    "seeds": (
        "seeds of the cells; every random draw of a cell (endpoints A and B, budget, attack) "
        "derives from its seed"
    ),
}

SECTION_HELP = (
    "a mapping of the settings below; sections merge key by key across defaults, the track "
    "and the profile"
)

PROFILE_KEY_HELP = {
    "description": "free text about the profile",
    "defaults": "track keys laid over the file's `defaults`",
    "tracks": "per track (by name, declared under the file's `tracks`), track keys laid over it",
}


def _code(text: str) -> str:
    """TEXT as inline code (a table does not split a code span at its pipes)."""
    return f"`{text}`"


def _text(text: str) -> str:
    """TEXT as plain words inside a table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _yaml(value: object) -> str:
    """VALUE as a benchmark file spells it: true, null, [32, 64], {name: pgd, ...}."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _default(param) -> str:
    from mcbench.registry.params import is_plugin_type, to_plain

    value = param.default
    if value is dataclasses.MISSING:
        return "required"
    if is_plugin_type(type(value)):
        value = {"name": value.name, **to_plain(value)}
    if isinstance(value, tuple):
        value = list(value)
    return _code(_yaml(value))


def _parameter_table(cls: type) -> list[str]:
    from mcbench.registry.params import describe

    params = describe(cls)
    if not params:
        return ["No parameters.", ""]
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for p in params:
        lines.append(f"| `{p.name}` | {_code(p.type_name)} | {_default(p)} | {_text(p.help)} |")
    return lines + [""]


def _key_table(rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {meaning} |" for key, meaning in rows]
    return lines + [""]


def _help(table: dict[str, str], key: str, where: str) -> str:
    if key not in table:
        raise KeyError(f"docs/hooks/reference_pages.py: describe the {where} key {key!r}")
    return table[key]


def benchmark_file_page() -> str:
    from mcbench.bench.load import AXES, REQUIRED, SECTIONS, TOP_KEYS, TRACK_KEYS

    lines = [
        "# The benchmark file",
        "",
        "A benchmark file (such as `benchmarks.yaml`) is YAML. `mcbench validate FILE` checks "
        "it without computing anything; an invalid file is refused with one line naming the "
        "file, the line and the key. This page is generated from the code that reads the "
        "file, so it lists every key there is.",
        "",
        "## Top level",
        "",
        *_key_table([(key, _help(TOP_KEY_HELP, key, "top-level")) for key in TOP_KEYS]),
        "## Tracks",
        "",
        "Each track, and `defaults`, holds these keys. Every list of plugins is an axis; the "
        "cells of a track are the cartesian product of its datasets, architectures, attacks, "
        "repairs, budgets and seeds, and of the connections for a repair that uses one. A "
        "plugin is named by a string (`bezier`) or by a mapping with its parameters "
        "(`{name: bezier, bends: 3}`); [Plugin parameters](plugin-parameters.md) lists "
        "them. Keys marked *required* must be set by the track or by `defaults`.",
        "",
    ]
    rows = []
    for key in TRACK_KEYS:
        if key in AXES:
            meaning = f"a list of {AXES[key]} plugins"
            if key == "attacks":
                meaning += " (may be left out: one cell without an attack)"
        elif key in SECTIONS:
            meaning = f"[{key} settings](#{key}): {SECTION_HELP}"
        else:
            meaning = _help(TRACK_KEY_HELP, key, "track")
        if key in REQUIRED:
            meaning = f"*required*; {meaning}"
        rows.append((key, meaning))
    lines += _key_table(rows)
    lines += [
        "Layers merge in this order, later winning: `defaults`, the track, the profile's "
        "`defaults`, the profile's entry for the track. A settings section merges key by key; "
        "any other key (an axis, `budgets`, `seeds`) is replaced whole.",
        "",
    ]
    for key, cls in SECTIONS.items():
        doc = (cls.__doc__ or "").strip()
        lines += [f"## {key}", "", " ".join(doc.split()), ""]
        lines += _parameter_table(cls)
    lines += [
        "## Profiles",
        "",
        "A profile (`profiles.NAME`, chosen with `--profile NAME`) holds:",
        "",
        *_key_table([(key, PROFILE_KEY_HELP[key]) for key in PROFILE_KEY_HELP]),
    ]
    return "\n".join(lines)


def plugins_page() -> str:
    from mcbench.registry.registry import load_registry
    from mcbench.vocabulary import KINDS

    registry = load_registry()
    lines = [
        "# Plugin parameters",
        "",
        "Every built-in plugin and its parameters, as `mcbench plugins` prints them (that "
        "command also lists the plugins of installed third-party packages). A parameter is "
        "set in the benchmark file by naming the plugin with a mapping, "
        "`{name: PLUGIN, KEY: VALUE, ...}`; a parameter without a default must be given.",
        "",
    ]
    for kind in KINDS:
        entries = [e for e in registry.all(kind.name) if e.distribution == "mcbench"]
        lines += [f"## {kind.axis.capitalize()}", ""]
        for entry in entries:
            lines += [f"### `{entry.name}`", "", entry.description, ""]
            lines += _parameter_table(entry.cls)
    return "\n".join(lines)


# --- the result record -------------------------------------------------------------------


def _schema_notes(module) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """From the schema's source: each TypedDict field's comment (on its lines, or on the
    lines just above it), by (class, field); and the docstring of each module-level name
    (the string right after its assignment), by name."""
    source = inspect.getsource(module)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and "fmt:" not in token.string:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    fields: dict[tuple[str, str], str] = {}
    docs: dict[str, str] = {}
    body = ast.parse(source).body
    for statement, following in zip(body, [*body[1:], None]):
        if isinstance(statement, ast.ClassDef):
            for item in statement.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    above, n = [], item.lineno - 1
                    while n in comments and lines[n - 1].lstrip().startswith("#"):
                        above.insert(0, comments[n])
                        n -= 1
                    own = [comments.get(n, "") for n in range(item.lineno, item.end_lineno + 1)]
                    text = "; ".join(c for c in [*above, *own] if c)
                    if text:
                        fields[statement.name, item.target.id] = text
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if (
                isinstance(target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[target.id] = " ".join(following.value.value.split())
    return fields, docs


def _declared_with(annotation_source: ast.expr, docs: dict[str, str]) -> str | None:
    """The docstring of the named type a field's annotation is made of, if it has one
    (``Score``, ``T``, ``Identifier``: through ``NotRequired[...]`` and ``Annotated[...]``)."""
    node = annotation_source
    while isinstance(node, ast.Subscript):
        node = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
    return docs.get(node.id) if isinstance(node, ast.Name) else None


def _declaration(name: str, key: str, classes: dict[str, ast.ClassDef]) -> tuple[str, ast.expr]:
    """(the class, among NAME and its bases, that declares KEY; its annotation's source)."""
    node = classes[name]
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and getattr(item.target, "id", None) == key:
            return name, item.annotation
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            try:
                return _declaration(base.id, key, classes)
            except KeyError:
                continue
    raise KeyError(f"{name}.{key}")


def _anchor(name: str) -> str:
    return name.lower()


def _type_text(tp: object, objects: dict[type, list[str]]) -> str:
    """A field's type in words of JSON, each object of the schema linked to its section
    and added to OBJECTS, with the types of the keys it holds besides its fields."""
    import types
    import typing

    from mcbench.typed import ExtraItems, markers

    bare, found = markers(tp)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if bare is type(None):
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if bare in names:
        return names[bare]
    if bare is object or bare is typing.Any:
        return "any JSON value"
    if origin is typing.Literal:
        return " or ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a, objects) for a in args)
    if origin is list:
        return f"list of {_type_text(args[0], objects)}"
    if origin is dict:
        return f"object of {_type_text(args[1], objects)}"
    if typing.is_typeddict(bare):
        extras = objects.setdefault(bare, [])
        for marker in found:
            if isinstance(marker, ExtraItems):
                text = _type_text(marker.type, objects)
                if text not in extras:
                    extras.append(text)
        return f"[{bare.__name__}](#{_anchor(bare.__name__)})"
    return _text(repr(bare))


def _when_needed(tp: type, key: str) -> str:
    """When a reader refuses the record without the field (``mcbench.results.record_checks``
    flags: RAN for a cell that ran read for the tables, RERUN to rebuild the cell)."""
    from mcbench.results.records import RAN, RERUN
    from mcbench.typed import declared

    def required(flags: frozenset[str]) -> bool:
        return any(k == key and missing for k, _, missing in declared(tp, flags))

    if required(frozenset()):
        return "always"
    if required(frozenset({RAN})):
        return "when the cell ran"
    if required(frozenset({RERUN})) or required(frozenset({RAN, RERUN})):
        return "to rebuild the cell"
    return "no"


def _checked(tp: object) -> list[str]:
    """What the reader checks of a field beyond its type, in words."""
    from mcbench.results.records import RERUN
    from mcbench.typed import AtLeast, Finite, Matches, MaxDepth, MinLen, markers

    notes = []
    for flags, when in ((frozenset(), ""), (frozenset({RERUN}), " (to rebuild the cell)")):
        for marker in markers(tp, flags)[1]:
            if isinstance(marker, Finite):
                text = "finite"
            elif isinstance(marker, AtLeast):
                text = f"at least {marker.minimum}"
            elif isinstance(marker, Matches):
                text = marker.expected
            elif isinstance(marker, MinLen):
                text = f"at least {marker.length} long"
            elif isinstance(marker, MaxDepth):
                text = f"nested at most {marker.levels} deep"
            else:
                continue
            if not any(n.startswith(text) for n in notes):
                notes.append(text + when)
    return notes


def record_page() -> str:
    from mcbench.results import records
    from mcbench.typed import Expect, describe, fields, markers

    field_notes, docs = _schema_notes(records)
    classes = {
        node.name: node
        for node in ast.parse(inspect.getsource(records)).body
        if isinstance(node, ast.ClassDef)
    }
    lines = [
        "# The result record",
        "",
        "Each cell's result is one JSON object, `RESULTS/records/<cell_id>.json`, written by "
        "`mcbench run` and read by every command that builds tables, figures, comparisons "
        "or pages. This page is generated from the record's schema "
        f"(`mcbench.results.records`, schema {records.SCHEMA}; mcbench reads schemas "
        f"{', '.join(map(str, records.READABLE))}), so it lists every field there is. The "
        "reader refuses a record with a field of the wrong type, or without a field it "
        "needs, naming the file, the field and what was expected. *Needed* says when a "
        "field must be there: always, in the record of a cell that ran (read for its "
        "tables), or to rebuild the cell (`mcbench verify`).",
        "",
    ]
    objects: dict[type, list[str]] = {records.Record: []}
    sections: dict[type, list[str]] = {}
    while len(sections) < len(objects):
        tp = next(t for t in objects if t not in sections)
        rows = sections[tp] = []
        for key, annotation in fields(tp).items():
            owner, source = _declaration(tp.__name__, key, classes)
            expect = any(isinstance(m, Expect) for m in markers(annotation)[1])
            parts = [
                _declared_with(source, docs),
                describe(annotation) if expect else None,
                field_notes.get((owner, key)),
            ]
            said: list[str] = []
            for part in parts:
                if part and not any(part.rstrip(".").lower() in s.lower() for s in said):
                    said.append(part.rstrip("."))
            holds = "; ".join(said) or describe(annotation)
            checked = [c for c in _checked(annotation) if c not in holds]
            if checked:
                holds = f"{holds} ({'; '.join(checked)})"
            kind = _type_text(annotation, objects)
            rows.append(f"| `{key}` | {kind} | {_when_needed(tp, key)} | {_text(holds)} |")
    for tp, rows in sections.items():
        name = tp.__name__
        doc = " ".join((tp.__doc__ or "").split())
        lines += [f"## {name}", ""]
        if doc and not doc.startswith(f"{name}("):  # a TypedDict without one has its repr
            lines += [doc, ""]
        lines += ["| field | type | needed | holds |", "|---|---|---|---|", *rows]
        for extra in objects[tp]:
            lines.append(f"| *any other key* | {extra} | no | |")
        lines.append("")
    return "\n".join(lines)


def on_files(files, config):
    """MkDocs hook: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    pages = ((BENCHMARK_FILE, benchmark_file_page), (PLUGINS, plugins_page), (RECORD, record_page))
    for name, page in pages:
        files.append(File.generated(config, name, content=page()))
    return files
