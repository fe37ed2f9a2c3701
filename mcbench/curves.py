"""Moved to ``mcbench.toolkit.curves``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn("mcbench.curves moved to mcbench.toolkit.curves", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.curves")
