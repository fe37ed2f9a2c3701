"""Moved to ``mcbench.toolkit.tampering``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn(
    "mcbench.tampering moved to mcbench.toolkit.tampering", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.tampering")
