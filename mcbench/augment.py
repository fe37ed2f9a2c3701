"""Moved to ``mcbench.toolkit.augment``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn("mcbench.augment moved to mcbench.toolkit.augment", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.augment")
