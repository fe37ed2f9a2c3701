"""The published leaderboards as one static HTML page: no torch, no network, no external
resources. Every text taken from a file is escaped."""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt

from mcbench.results.format import render
from mcbench.results.leaderboard import TITLES, build_tables
from mcbench.results.records import load_records, metric_info

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em;
       line-height: 1.45; color: #222; }
section { border-top: 1px solid #ccc; margin-top: 2em; }
.table { overflow-x: auto; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
th { background: #f3f3f3; text-align: left; }
tbody tr:nth-child(even) { background: #fafafa; }
td { text-align: right; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
.meta { color: #555; }
img { max-width: 100%; }
"""

# Counts the summary rows once the page is loaded: present only where JavaScript ran
# (the browser test checks it); the page reads the same without it.
SCRIPT = """
document.getElementById("generated-count").textContent =
  document.querySelectorAll('[data-table="summary"] tbody tr').length;
"""


# commonmark with raw HTML off: any markup in a README is shown as text, never run
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def _markdown(text: str, tables: bool = True) -> str:
    """A README as HTML, without its first heading (the page names the section)."""
    if text.startswith("# "):
        text = text.partition("\n")[2]
    if not tables:
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    return MARKDOWN.render(text)


def _readme(folder: Path) -> tuple[str, str]:
    """(the README's title, the README as HTML)."""
    path = folder / "README.md"
    if not path.is_file():
        return "", ""
    text = path.read_text()
    title = text.splitlines()[0].lstrip("#").strip() if text.startswith("#") else ""
    return title, _relative_to(folder.name, _markdown(text))


def _provenance(records: list[dict], failed: list[dict]) -> str:
    prov = [r.get("provenance") or {} for r in records]
    commits = sorted({p["git_commit"][:7] for p in prov if p.get("git_commit")})
    devices = sorted({p["device"] for p in prov if p.get("device")})
    dates = sorted(p["date"][:10] for p in prov if p.get("date"))
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


def _table(name: str, table, info) -> str:
    return (
        f"<h3>{html.escape(TITLES[name])}</h3>\n"
        f'<div class="table" data-table="{name}">\n{render(table, info, "html")}</div>'
    )


def _copy_files(folder: Path, out: Path) -> None:
    """The folder's tables, records and plots beside the page, so that its links work."""
    target = out / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("table.md", "table.csv", "README.md"):
        if (folder / name).is_file():
            shutil.copy2(folder / name, target / name)
    for sub in ("records", "plots"):
        if (folder / sub).is_dir():
            shutil.copytree(folder / sub, target / sub, dirs_exist_ok=True)


def _plots(folder: Path) -> str:
    pngs = sorted((folder / "plots").glob("*.png"))
    if not pngs:
        return ""
    figures = []
    for png in pngs:
        src = html.escape(quote(f"{folder.name}/plots/{png.name}"))
        figure = f'<img src="{src}" alt="{html.escape(png.stem)}">'
        if png.with_suffix(".svg").is_file():
            svg = html.escape(quote(f"{folder.name}/plots/{png.stem}.svg"))
            figure += f'<br><a href="{svg}">SVG</a>'
        figures.append(f"<figure>{figure}</figure>")
    return "<h3>Plots</h3>\n" + "\n".join(figures)


def _relative_to(folder: str, page: str) -> str:
    """Links of a folder's README, made relative to the page (raw HTML is off, so every
    href comes from a Markdown link)."""
    return re.sub(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)', rf'\1="{quote(folder)}/', page)


def _section(folder: Path, out: Path) -> str:
    records, failed = load_records(folder)
    tables, info = build_tables(records), metric_info(records)
    title, readme = _readme(folder)
    name = html.escape(folder.name)
    parts = [f'<section id="{name}">', f"<h2>{name}</h2>"]
    if title:
        parts.append(f"<p><strong>{html.escape(title)}</strong></p>")
    parts += [_provenance(records, failed), readme]
    parts += [_table(t, tables[t], info) for t in ("summary", "barriers", "tamper") if t in tables]
    if "path" in tables:
        parts.append(
            f"<details><summary>{html.escape(TITLES['path'])}</summary>\n"
            f"{_table('path', tables['path'], info)}\n</details>"
        )
    _copy_files(folder, out)
    parts += [_plots(folder), "</section>"]
    return "\n".join(p for p in parts if p)


def build_site(leaderboards: Path, out: Path) -> Path:
    """Write OUT/index.html (and OUT/<table>/ plots) from every published table under
    LEADERBOARDS (a folder holding records/); returns the page's path."""
    leaderboards, out = Path(leaderboards), Path(out)
    folders = sorted(p for p in leaderboards.iterdir() if (p / "records").is_dir())
    out.mkdir(parents=True, exist_ok=True)
    index = leaderboards / "README.md"
    # the index's table of links is replaced by the navigation list
    intro = _markdown(index.read_text(), tables=False) if index.is_file() else ""
    nav = "\n".join(
        f'<li><a href="#{html.escape(f.name)}">{html.escape(f.name)}</a></li>' for f in folders
    )
    sections = "\n".join(_section(f, out) for f in folders)
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
    path.write_text(page, encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m mcbench.results.site LEADERBOARDS OUT
    print(build_site(Path(sys.argv[1]), Path(sys.argv[2])))
