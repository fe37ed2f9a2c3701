"""The published leaderboards as one static HTML page: no torch, no network, no external
resources; its inline script sorts, filters and groups the tables by budget. Every text taken
from a file is escaped, and only regular files inside a table's folder are read or copied
beside the page: a symbolic link out of the folder (which would publish whatever it points
to), a FIFO (which would block), a device or a socket is left out with a warning."""

from __future__ import annotations

import html
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from markdown_it import MarkdownIt

from mcbench.errors import ConfigError, printable
from mcbench.files import regular_file_bytes
from mcbench.results.leaderboard import TITLES, build_tables
from mcbench.results.record_reader import Invalid, read_records, record_files, settled
from mcbench.results.records import MetricInfo, Provenance, Record, metric_info
from mcbench.results.site_links import row_links
from mcbench.results.site_page import CSS, SCRIPT
from mcbench.results.site_table import controls, html_table

Warn = Callable[[str], None]
COPY_LIMIT = 256 * 2**20  # a README, a figure or a record; anything larger is not one

# commonmark with raw HTML off: any markup in a README is shown as text, never run
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def _markdown(text: str, tables: bool = True) -> str:
    """A README as HTML, without its first heading (the page names the section)."""
    if text.startswith("# "):
        text = text.partition("\n")[2]
    if not tables:
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    page: str = MARKDOWN.render(text)
    return page


def _readme(folder: Path, within: _Within) -> tuple[str, str]:
    """(the README's title, the README as HTML)."""
    text = within.text(folder / "README.md")
    if text is None:
        return "", ""
    title = text.splitlines()[0].lstrip("#").strip() if text.startswith("#") else ""
    return title, _relative_to(folder.name, _markdown(text))


class _Within:
    """What may be published from FOLDER: a path whose real location (symbolic links
    followed) is inside the folder and that is a regular file; anything else is reported
    through WARN and left out."""

    def __init__(self, folder: Path, warn: Warn):
        self.folder, self.real, self.warn = folder, Path(os.path.realpath(folder)), warn
        self.refused: set[str] = set()  # reported once each

    def refuse(self, path: Path, why: str) -> bool:
        if printable(str(path)) not in self.refused:
            self.refused.add(printable(str(path)))
            self.warn(f"{printable(str(path))}: {why}; left out")
        return False

    def inside(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        if real == self.real or self.real in real.parents:
            return True
        return self.refuse(path, f"a symbolic link out of {printable(str(self.folder))}")

    def regular(self, path: Path) -> bool:
        """Whether PATH may be read: inside the folder and a regular file."""
        if printable(str(path)) in self.refused or not self.inside(path):
            return False
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            return self.refuse(path, f"cannot be read ({e.strerror or e})")
        if not stat.S_ISREG(mode):
            return self.refuse(path, "not a regular file")
        return True

    def text(self, path: Path) -> str | None:
        """The UTF-8 text of PATH; None when there is no such file or it may not be read."""
        if not os.path.lexists(path) or not self.regular(path):
            return None
        data = regular_file_bytes(path, limit=COPY_LIMIT, expected="a README in Markdown")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
                "(expected Markdown in UTF-8)",
                file=printable(str(path)),
            ) from None


def _provenance(records: list[Record], failed: list[Record]) -> str:
    prov: list[Provenance] = [r.get("provenance") or {} for r in records]
    commits = sorted({c[:7] for p in prov if (c := p.get("git_commit"))})
    devices = sorted({d for p in prov if (d := p.get("device"))})
    dates = sorted(d[:10] for p in prov if (d := p.get("date")))
    parts = [f"{len(records)} records" + (f" ({len(failed)} failed, not shown)" if failed else "")]
    if commits:
        parts.append("commit " + ", ".join(commits))
    if devices:
        parts.append("device " + "; ".join(devices))
    if dates:
        parts.append(
            "dates " + (dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}")
        )
    return f'<p class="meta">{html.escape(" · ".join(parts))}</p>'


def _table(
    name: str, table: pd.DataFrame, info: Mapping[str, MetricInfo], links: list[str] | None
) -> str:
    """A table with its filter and budget choice (the page's script sorts, filters and
    groups its rows)."""
    return (
        f"<h3>{html.escape(TITLES[name])}</h3>\n"
        f'<div class="board" data-table="{name}">\n{controls(table)}'
        f'<div class="table">\n{html_table(table, info, links)}</div>\n</div>'
    )


def _copy_files(folder: Path, out: Path, within: _Within, left_out: set[str]) -> set[str]:
    """The folder's tables, records and plots beside the page, so that its links work
    (regular files inside the folder only; LEFT_OUT: record files already reported as
    unreadable). Returns the paths copied, relative to the folder."""
    target = out / folder.name
    _folder(target)
    copied = set()
    for name in ("table.md", "table.csv", "README.md"):
        if os.path.lexists(folder / name) and within.regular(folder / name):
            _copy(folder / name, target / name)
            copied.add(name)
    output = Path(os.path.realpath(out))
    for sub in ("records", "plots"):
        if not (folder / sub).is_dir() or not within.inside(folder / sub):
            continue
        for top, dirs, files in os.walk(folder / sub):
            here = Path(top)
            for name in sorted(dirs):
                real = Path(os.path.realpath(here / name))
                if (here / name).is_symlink() or real == output or output in real.parents:
                    dirs.remove(name)  # not followed: a link, or the page's own folder
                    if (here / name).is_symlink():
                        within.refuse(here / name, "a symbolic link to a folder")
            for name in sorted(files):
                source = here / name
                if printable(str(source)) in left_out or not within.regular(source):
                    continue
                relative = source.relative_to(folder)
                _folder(target / relative.parent)
                _copy(source, target / relative)
                copied.add(relative.as_posix())
    return copied


def _folder(path: Path) -> None:
    if path.is_symlink():
        raise ConfigError(
            "a symbolic link in the output folder (expected a folder the page writes)",
            file=printable(str(path)),
        )
    path.mkdir(parents=True, exist_ok=True)


def _copy(source: Path, target: Path) -> None:
    """SOURCE's bytes into TARGET, a file replaced rather than written through."""
    data = regular_file_bytes(source, limit=COPY_LIMIT, expected="a file to publish")
    if target.is_symlink():
        target.unlink()
    elif target.is_dir():
        raise ConfigError("a folder where the page writes a file", file=printable(str(target)))
    target.write_bytes(data)
    info = os.stat(source)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _plots(folder: Path, copied: set[str]) -> str:
    pngs = sorted(p for p in copied if re.fullmatch(r"plots/[^/]+\.png", p))
    if not pngs:
        return ""
    figures = []
    for png in pngs:
        stem = Path(png).stem
        src = html.escape(quote(f"{folder.name}/{png}"))
        figure = f'<img src="{src}" alt="{html.escape(stem)}">'
        if f"plots/{stem}.svg" in copied:
            svg = html.escape(quote(f"{folder.name}/plots/{stem}.svg"))
            figure += f'<br><a href="{svg}">SVG</a>'
        figures.append(f"<figure>{figure}</figure>")
    return "<h3>Plots</h3>\n" + "\n".join(figures)


def _relative_to(folder: str, page: str) -> str:
    """Links of a folder's README, made relative to the page (raw HTML is off, so every
    href comes from a Markdown link)."""
    return re.sub(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)', rf'\1="{quote(folder)}/', page)


def _section(folder: Path, out: Path, invalid: Invalid | None, warn: Warn) -> str:
    within = _Within(folder, warn)
    paths = [p for p in record_files(folder) if within.inside(p)]
    left_out: set[str] = set()

    def skipped(error: ConfigError) -> None:
        left_out.add(error.file or "")
        if invalid is not None:
            invalid(error)

    records, failed = read_records(paths, invalid=skipped if invalid else None)
    with settled():
        tables, info = build_tables(records), metric_info(records)
    title, readme = _readme(folder, within)
    name = html.escape(folder.name)
    parts = [f'<section id="{name}">', f"<h2>{name}</h2>"]
    if title:
        parts.append(f"<p><strong>{html.escape(title)}</strong></p>")
    parts += [_provenance(records, failed), readme]
    copied = _copy_files(folder, out, within, left_out)

    def table(t: str) -> str:
        return _table(t, tables[t], info, row_links(folder.name, t, tables[t], records, copied))

    parts += [table(t) for t in ("summary", "barriers", "tamper") if t in tables]
    if "path" in tables:
        parts.append(
            f"<details><summary>{html.escape(TITLES['path'])}</summary>\n{table('path')}\n</details>"
        )
    parts += [_plots(folder, copied), "</section>"]
    return "\n".join(p for p in parts if p)


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def build_site(
    leaderboards: Path,
    out: Path,
    *,
    invalid: Invalid | None = None,
    warn: Warn | None = None,
) -> Path:
    """Write OUT/index.html (and OUT/<table>/ plots) from every published table under
    LEADERBOARDS (a folder holding records/); returns the page's path. INVALID: what to do
    with a record that does not read (see ``load_records``); WARN: how to report a file
    left out (stderr by default)."""
    leaderboards, out, warn = Path(leaderboards), Path(out), warn or _stderr
    if not leaderboards.is_dir():
        raise ConfigError(
            "not a folder (expected the folder of published tables)",
            file=printable(str(leaderboards)),
        )
    root = _Within(leaderboards, warn)
    try:
        entries = sorted(leaderboards.iterdir())
    except OSError as e:
        raise ConfigError(
            f"cannot be listed: {e.strerror or e}", file=printable(str(leaderboards))
        ) from None
    folders = [
        p
        for p in entries
        if (p / "records").is_dir() and root.inside(p) and _Within(p, warn).inside(p / "records")
    ]
    _folder(out)
    # the index's table of links is replaced by the navigation list
    index = root.text(leaderboards / "README.md")
    intro = _markdown(index, tables=False) if index is not None else ""
    nav = "\n".join(
        f'<li><a href="#{html.escape(f.name)}">{html.escape(f.name)}</a></li>' for f in folders
    )
    sections = "\n".join(_section(f, out, invalid, warn) for f in folders)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcbench leaderboards</title>
<style>{CSS}</style>
</head>
<body>
<h1>mcbench leaderboards</h1>
<nav><ul>
{nav}
</ul></nav>
{intro}
<p class="meta">Summary rows on this page: <span id="generated-count"></span></p>
{sections}
<script>{SCRIPT}</script>
</body>
</html>
"""
    path = out / "index.html"
    if path.is_symlink():
        path.unlink()
    path.write_text(page, encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m mcbench.results.site LEADERBOARDS OUT
    print(build_site(Path(sys.argv[1]), Path(sys.argv[2])))
