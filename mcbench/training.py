"""Moved to ``mcbench.toolkit.training``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn(
    "mcbench.training moved to mcbench.toolkit.training", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.training")
