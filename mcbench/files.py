"""Reading a file a user names (a benchmark file, a record) without ever blocking on it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mcbench.errors import ConfigError


def regular_file_bytes(path: str | Path, *, limit: int, expected: str) -> bytes:
    """The bytes of PATH, a regular file of at most LIMIT bytes. Anything else (a directory,
    a FIFO or a device, whose reading could wait forever, a socket) is refused before it is
    opened; the file is opened non-blocking and checked again, in case something else was
    put in its place in between. Every refusal is a ConfigError naming the file and saying
    it expected EXPECTED ("a YAML benchmark file")."""
    file = os.fspath(path)
    try:
        _check_regular(os.stat(path).st_mode, file, expected)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            stat = os.fstat(f.fileno())
            _check_regular(stat.st_mode, file, expected)
            # sized from the file: a read of LIMIT bytes would allocate LIMIT bytes each time
            data = f.read(min(limit, stat.st_size) + 1)
            if len(data) > stat.st_size:  # it grew since: read on, up to the limit
                data += f.read(limit + 1 - len(data))
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror or e}", file=file) from None
    except ValueError as e:  # a path no file can have, e.g. with a NUL character
        raise ConfigError(f"cannot read the file: {e}", file=file) from None
    if len(data) > limit:
        raise ConfigError(
            f"the file is larger than {limit // 2**20} MiB; expected {expected}", file=file
        )
    return data


def _check_regular(mode: int, file: str, expected: str) -> None:
    if stat.S_ISREG(mode):
        return
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            raise ConfigError(f"is {kind}; expected {expected}", file=file)
    raise ConfigError(f"is not a regular file; expected {expected}", file=file)
