"""Content hashes of canonical JSON: the keys of cached stages and result records."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(value: Any):
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot hash {type(value).__name__}: {value!r}")


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:length]
