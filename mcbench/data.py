"""Moved to ``mcbench.kinds.data``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn("mcbench.data moved to mcbench.kinds.data", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("mcbench.kinds.data")
