"""Keep freed memory in the process (glibc), so that large tensors allocated every step
reuse pages instead of being mapped and faulted in afresh each time.

glibc serves allocations above a (dynamic) threshold with fresh mmap()s and returns them
on free; a training step that allocates tens of megabytes of new tensors then pays page
faults on every step. Measured with timings/curve_step_cost.py on a 2-core CPU, this
made curve-training steps 5-25% slower than they need to be. The cost: the process keeps
its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Ask glibc to serve every allocation from its heap and never trim it. Returns
    whether it applied (False on other C libraries and systems)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
