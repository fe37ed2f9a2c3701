"""Moved to ``mcbench.toolkit.evaluation``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn(
    "mcbench.evaluation moved to mcbench.toolkit.evaluation", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.evaluation")
