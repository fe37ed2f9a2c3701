"""No import cycles between the modules of mcbench and its plugins, counting the imports
inside functions and under ``if TYPE_CHECKING:`` (import-linter's contracts leave those out)."""

from __future__ import annotations

import grimp
import networkx as nx

PACKAGES = ("mcbench", "mcbench_plugins")


def import_cycles(*packages: str) -> list[str]:
    """One cycle per group of modules that import each other, as "a -> b -> a"."""
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=False, cache_dir=None)
    edges = nx.DiGraph(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
    )
    cycles = []
    for group in nx.strongly_connected_components(edges):
        if len(group) > 1:
            path = [importer for importer, _ in nx.find_cycle(edges.subgraph(group))]
            cycles.append(" -> ".join([*path, path[0]]))
    return sorted(cycles)


def test_mcbench_and_its_plugins_have_no_import_cycle():
    cycles = import_cycles(*PACKAGES)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_sees_lazy_and_typing_only_imports(tmp_path, monkeypatch):
    package = tmp_path / "circles"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from circles import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circles.a import f\n"
    )
    (package / "c.py").write_text("import circles.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("circles") in (
        ["circles.a -> circles.b -> circles.a"],
        ["circles.b -> circles.a -> circles.b"],
    )
