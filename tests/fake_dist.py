"""Installed-looking plugin distributions for tests: a module and a ``*.dist-info``
folder with an ``mcbench`` entry point, in a temporary folder put on ``sys.path``.

``install`` returns a function that removes every trace (sys.path, the imported modules,
the import caches); call it at teardown.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path


def install(folder: Path, dist: str, version: str, modules: dict[str, str]):
    """Write ``modules`` ({module name: source}) and a distribution ``dist`` at
    ``version`` whose ``mcbench`` entry points are the modules, each named after its
    module."""
    folder.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    points = "".join(f"{module} = {module}\n" for module in modules)
    (info / "entry_points.txt").write_text(f"[mcbench]\n{points}")
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()

    def remove():
        sys.path.remove(str(folder))
        for module in modules:
            sys.modules.pop(module, None)
        sys.path_importer_cache.pop(str(folder), None)
        importlib.invalidate_caches()

    return remove
