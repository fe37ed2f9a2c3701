"""regular_file_bytes: the whole file up to the limit, a larger one refused, however the
read is sized."""

from __future__ import annotations

import pytest

from mcbench.errors import ConfigError
from mcbench.files import regular_file_bytes

MIB = 2**20


@pytest.mark.parametrize("size", [0, 1, 4096, MIB - 1, MIB])
def test_a_file_up_to_the_limit_is_read_whole(tmp_path, size):
    path = tmp_path / "f.json"
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path.write_bytes(content)
    assert regular_file_bytes(path, limit=MIB, expected="a record") == content


def test_a_file_past_the_limit_is_refused(tmp_path):
    path = tmp_path / "f.json"
    path.write_bytes(b"x" * (MIB + 1))
    with pytest.raises(ConfigError, match="larger than 1 MiB; expected a record"):
        regular_file_bytes(path, limit=MIB, expected="a record")
