"""The generated references (docs/hooks/reference_pages.py) name every key of a benchmark file
and every field of a result record."""

import dataclasses
import importlib.util
import inspect
from pathlib import Path

from mcbench.bench import load, settings

HOOK = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "reference_pages.py"


def _reference_page() -> str:
    spec = importlib.util.spec_from_file_location("reference_pages", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.benchmark_file_page()


def _sections(page: str) -> dict[str, str]:
    """The page's text under each second-level heading, by heading."""
    parts = page.split("\n## ")[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def _rows(text: str) -> set[str]:
    """The keys named in the first column of the tables in TEXT."""
    return {
        line.split("|")[1].strip().strip("`")
        for line in text.splitlines()
        if line.startswith("| `")
    }


def test_reference_names_every_key_and_setting():
    sections = _sections(_reference_page())
    assert _rows(sections["Top level"]) == set(load.TOP_KEYS)
    assert _rows(sections["Tracks"]) == set(load.TRACK_KEYS)
    classes = [
        cls
        for _, cls in inspect.getmembers(settings, dataclasses.is_dataclass)
        if cls.__module__ == settings.__name__
    ]
    assert set(classes) == set(load.SECTIONS.values())
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        assert _rows(sections[cls.name]) == fields, cls.__name__


def test_record_page_lists_every_field_of_the_schema():
    """Every object of the record schema has a section, and each section one row per field
    (and one for the keys it holds besides, where it holds any)."""
    from typing import get_args, is_typeddict

    from mcbench.results.records import Record
    from mcbench.typed import ExtraItems, fields, markers

    spec = importlib.util.spec_from_file_location("reference_pages", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sections = _sections(module.record_page())

    reached, pending = {}, [Record]
    while pending:
        tp = pending.pop()
        if tp.__name__ in reached:
            continue
        reached[tp.__name__] = tp
        stack = list(fields(tp).values())
        while stack:
            bare, found = markers(stack.pop())
            stack += [m.type for m in found if isinstance(m, ExtraItems)]
            if is_typeddict(bare):
                pending.append(bare)
            else:
                stack += [a for a in get_args(bare) if not isinstance(a, (str, int))]
    assert set(sections) == set(reached)
    for name, tp in reached.items():
        assert _rows(sections[name]) == set(fields(tp)), name
