import platform
import sys

import pytest

from mcbench.run.allocator import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_glibc_accepts_the_settings():
    assert keep_freed_memory() is True
