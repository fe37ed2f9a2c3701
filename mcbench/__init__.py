"""mcbench: mode connectivity as a robustness benchmark, built from plugins."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("mcbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

hookimpl = pluggy.HookimplMarker("mcbench")
"""Decorator for a plugin's hook implementations: ``@mcbench.hookimpl``."""

__all__ = ["__version__", "hookimpl"]
