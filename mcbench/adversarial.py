"""Moved to ``mcbench.toolkit.adversarial``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn(
    "mcbench.adversarial moved to mcbench.toolkit.adversarial", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.adversarial")
