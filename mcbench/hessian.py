"""Moved to ``mcbench.toolkit.hessian``; this name keeps working for one release."""

import importlib
import sys
import warnings

warnings.warn("mcbench.hessian moved to mcbench.toolkit.hessian", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("mcbench.toolkit.hessian")
