"""The file names of plots, shared by the figures and the page that links to them."""

from __future__ import annotations

import hashlib
import re


def plot_name(*parts: object) -> str:
    """A file name: the group's labels, lower case, [a-z0-9._-] only, joined by '--'."""
    cleaned: list[str] = []
    for part in parts:
        text = str(part)
        if text == "-":
            continue
        safe = re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-.")
        if len(safe) > 40:
            safe = f"{safe[:31]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        cleaned.append(safe or hashlib.sha1(text.encode()).hexdigest()[:8])
    return "--".join(cleaned)
