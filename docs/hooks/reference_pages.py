"""Reference pages generated at build time from the code, so that they cannot drift from it.

``benchmark_file_page()`` lists every key of a benchmark file: the top-level keys and the
track keys of ``mcbench.bench.load``, and every field of the settings sections (its type,
default and help, as ``mcbench.registry.params.describe`` gives them).
``plugins_page()`` lists every built-in plugin's parameters, kind by kind, as
``mcbench plugins`` does. ``on_files`` is the MkDocs hook that adds both pages to the site;
nothing else here imports MkDocs.
"""

from __future__ import annotations

import dataclasses

BENCHMARK_FILE = "benchmark-file.md"
PLUGINS = "plugin-parameters.md"

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


def on_files(files, config):
    """MkDocs hook: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for name, page in ((BENCHMARK_FILE, benchmark_file_page), (PLUGINS, plugins_page)):
        files.append(File.generated(config, name, content=page()))
    return files
