"""`mcbench --help` starts quickly: when no installed plugin adds commands it imports no
torch, no pandas, no matplotlib, no registry and no plugin module."""

import json
import subprocess
import sys

SCRIPT = """
import importlib.metadata, json, sys
from mcbench.cli import cli
try:
    cli(["--help"])
except SystemExit:
    pass
plugins = {ep.module for ep in importlib.metadata.entry_points(group="mcbench")}
heavy = {"torch", "pandas", "matplotlib", "mcbench.registry.registry", *plugins}
print(json.dumps(sorted(m for m in sys.modules if m in heavy)))
"""


def test_help_imports_nothing_heavy():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "validate" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
