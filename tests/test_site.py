"""The static leaderboard page: built from records (fast, no browser), then loaded in
headless Chromium, which must show a number that matches the records."""

import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mcbench.results.site import build_site

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
CHROMIUM = Path("/usr/bin/chromium")
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Page(HTMLParser):
    """Sections, tables (by section and data-table), element texts by id; checks that
    every non-void element is closed in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack, self.sections, self.tables, self.by_id = [], [], {}, {}
        self.scripts, self.section, self.kind, self.rows, self.row = 0, None, None, None, None
        self.cell = self.open_id = None
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed elements: {self.stack}"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "section":
            self.section = attrs["id"]
            self.sections.append(self.section)
        elif tag == "div" and "data-table" in attrs:
            self.kind = attrs["data-table"]
        elif tag == "table" and self.kind:
            self.rows = self.tables.setdefault((self.section, self.kind), {"head": [], "body": []})
        elif tag == "tr" and self.rows is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
        elif tag == "script":
            self.scripts += 1
        if "id" in attrs and tag not in VOID:
            self.open_id = (attrs["id"], len(self.stack))
            self.by_id[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows["head" if self.stack[-1] == "thead" else "body"].append(self.row)
            self.row = None
        elif tag == "table":
            self.rows, self.kind = None, None
        elif tag == "section":
            self.section = None
        if self.open_id and len(self.stack) < self.open_id[1]:
            self.open_id = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.open_id:
            self.by_id[self.open_id[0]] += data

    def table(self, section: str, kind: str) -> list[dict]:
        rows = self.tables[(section, kind)]
        (head,) = rows["head"]
        return [dict(zip(head, r)) for r in rows["body"]]


def record(cell_id, connection, acc_mid, budget=500):
    spec = lambda name, **params: {"name": name, "params": params, "version": "x"}
    return {
        "schema": 1,
        "cell_id": cell_id,
        "status": "ok",
        "label": cell_id,
        "config": {
            "track": "backdoor-repair",
            "dataset": spec("cifar10"),
            "architecture": spec("convnet"),
            "attack": spec("badnets", target=0),
            "repair": spec("path"),
            "connection": spec(connection),
            "budget": budget,
            "seed": 0,
            "metrics": [spec("clean_accuracy")],
        },
        "metric_info": {"clean_accuracy": {"percent": True, "higher_is_better": True}},
        "reported_t": 0.5,
        "path": [
            {"t": 0.0, "clean_accuracy": 0.9},
            {"t": 0.5, "clean_accuracy": acc_mid},
            {"t": 1.0, "clean_accuracy": 0.91},
        ],
        "provenance": {
            "git_commit": "abcdef0123456789",
            "device": "cpu (test)",
            "date": "2026-01-02T03:04:05+00:00",
        },
    }


@pytest.fixture
def boards(tmp_path):
    root = tmp_path / "leaderboards"
    for folder, rows in {
        "b-table": [record("x1", "bezier", 0.42), record("x2", "linear", 0.1)],
        "a-table": [record("y1", "bezier", 0.5, budget=40)],
    }.items():
        (root / folder / "records").mkdir(parents=True)
        for r in rows:
            (root / folder / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
    (root / "b-table" / "README.md").write_text(
        "# B table\n\nMade with <script>alert('x')</script> & care.\n\n- a list item\n\n"
        "See [the table](table.md) and [elsewhere](https://example.org/x).\n"
    )
    (root / "b-table" / "table.md").write_text("| a |\n|---|\n| 1 |\n")
    (root / "b-table" / "plots").mkdir()
    (root / "b-table" / "plots" / "acc.png").write_bytes(b"\x89PNG fake")
    (root / "b-table" / "plots" / "acc.svg").write_text("<svg/>")
    (root / "notes").mkdir()  # no records/: not a table
    (root / "README.md").write_text("# Index\n\nAll the tables.\n")
    return root


def test_page_from_records(boards, tmp_path):
    index = build_site(boards, tmp_path / "site")
    text = index.read_text()
    page = Page(text)
    assert page.sections == ["a-table", "b-table"]
    assert "<title>mcbench leaderboards</title>" in text and 'href="#b-table"' in text
    # README text is escaped: the only script is the page's own
    assert page.scripts == 1
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; care" in text
    assert "All the tables." in text
    summary = page.table("b-table", "summary")
    assert [(r["connection"], r["clean_accuracy %"]) for r in summary] == [
        ("bezier", "42.0"),
        ("linear", "10.0"),
    ]
    assert "1 records · commit abcdef0 · device cpu (test) · dates 2026-01-02" in text
    # the plot is copied next to the page, with its SVG linked
    assert (tmp_path / "site" / "b-table" / "plots" / "acc.png").read_bytes() == b"\x89PNG fake"
    assert (tmp_path / "site" / "b-table" / "plots" / "acc.svg").is_file()
    assert '<img src="b-table/plots/acc.png"' in text
    assert 'href="b-table/plots/acc.svg"' in text
    # the README's relative links point into the copied folder; absolute ones are kept
    assert 'href="b-table/table.md"' in text
    assert (tmp_path / "site" / "b-table" / "table.md").is_file()
    assert 'href="https://example.org/x"' in text


def test_rows_carry_what_the_script_sorts_by_and_link_their_files(boards, tmp_path):
    """Numbers in data-sort (a mean ± std by its unscaled mean), data-empty on a cell
    without a value, each row's budget, and links to the row's records copied beside."""
    summary = b_summary(build_site(boards, tmp_path / "site"))
    rows = re.findall(r"<tr data-budget=\"(\d+)\">(.*?)</tr>", summary)
    assert [budget for budget, _ in rows] == ["500", "500"]
    first = rows[0][1]
    assert '<td data-sort="0.42">42.0</td>' in first and '<td data-sort="500">500</td>' in first
    assert '<td data-sort="0.5">0.5</td>' in first  # t
    assert '<td data-links><a href="b-table/records/x1.json">seed 0</a></td>' in first
    assert (tmp_path / "site" / "b-table" / "records" / "x1.json").is_file()
    assert '<th data-type="text"><button type="button">connection</button></th>' in summary
    assert '<option value="500">500</option>' in summary
    # a single-model repair has no connection and no t: empty cells, sorted last
    single = record("z1", "linear", 0.3)
    del single["config"]["connection"]
    single["reported_t"] = None
    single["path"] = [{"t": None, "clean_accuracy": 0.3}]
    (boards / "b-table" / "records" / "z1.json").write_text(json.dumps(single))
    # a second seed: the row's mean ± std sorts by its mean, and links both records
    again = record("x3", "bezier", 0.44)
    again["config"]["seed"] = 1
    (boards / "b-table" / "records" / "x3.json").write_text(json.dumps(again))
    summary = b_summary(build_site(boards, tmp_path / "site"))
    assert summary.count("<td data-empty>-</td>") == 2
    (mean,) = re.findall(r'<td data-sort="([^"]+)">43.0 ± 1.4</td>', summary)
    assert float(mean) == pytest.approx(0.43)
    assert (
        '<a href="b-table/records/x1.json">seed 0</a> <a href="b-table/records/x3.json">seed 1</a>'
        in summary
    )


def b_summary(index: Path) -> str:
    text = index.read_text()
    section = text[text.index('<section id="b-table">') :]
    return section[section.index('data-table="summary"') : section.index("</table>")]


def expected_clean_accuracy(folder: Path, repair: str, connection: str, budget: int) -> str:
    """From the JSON records alone: 100 x clean accuracy at the reported t, mean over the
    records of that configuration, 1 decimal."""
    values = []
    for path in sorted((folder / "records").glob("*.json")):
        r = json.loads(path.read_text())
        c = r["config"]
        if (
            r.get("status") == "ok"
            and c["repair"]["name"] == repair
            and c["budget"] == budget
            and (c.get("connection") or {}).get("name") == connection
        ):
            (point,) = [p for p in r["path"] if p["t"] == r["reported_t"]]
            values.append(point["clean_accuracy"])
    assert values, f"no {repair}/{connection}/{budget} record in {folder}"
    return f"{100 * sum(values) / len(values):.1f}"


def expected_summary_rows(leaderboards: Path) -> int:
    """From the JSON records alone: one summary row per distinct configuration (track,
    plugins with their parameters, budget, reported t) of the successful records of each
    table, whatever its seeds."""
    total = 0
    for folder in sorted(p for p in leaderboards.iterdir() if (p / "records").is_dir()):
        rows = set()
        for path in (folder / "records").glob("*.json"):
            r = json.loads(path.read_text())
            if r.get("status") != "ok":
                continue
            c = r["config"]
            plugins = [
                json.dumps({"name": s["name"], "params": s["params"]}, sort_keys=True)
                if s
                else None
                for s in (c["dataset"], c["architecture"], c.get("attack"), c["repair"])
                + (c.get("connection"),)
            ]
            rows.add((c["track"], *plugins, c["budget"], r["reported_t"]))
        total += len(rows)
    return total


def test_the_expected_row_count_from_the_records():
    """The count above, a second way: per table, the successful records grouped by their
    whole configuration but the seed, and their reported t (seeds of one configuration
    share a row where they report the same t)."""
    groups = set()
    for path in LEADERBOARDS.glob("*/records/*.json"):
        r = json.loads(path.read_text())
        if r["status"] == "ok":
            config = {k: v for k, v in r["config"].items() if k != "seed"}
            groups.add(
                (path.parent.parent.name, json.dumps(config, sort_keys=True), r["reported_t"])
            )
    assert expected_summary_rows(LEADERBOARDS) == len(groups)


def dump_dom(index: Path, profile: Path) -> str:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--dump-dom",
        index.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_page_in_chromium(tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("MCBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and MCBENCH_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    folder = LEADERBOARDS / "backdoor-repair-cpu"
    index = build_site(LEADERBOARDS, tmp_path / "site")
    page = Page(dump_dom(index, tmp_path / "profile"))

    rows = [
        r
        for r in page.table(folder.name, "summary")
        if r["repair"].split("(")[0] == "path"
        and r["connection"].split("(")[0] == "bezier"
        and r["budget"] == "2500"
    ]
    assert len(rows) == 1
    shown = rows[0]["clean_accuracy %"].split(" ±")[0]
    assert shown == expected_clean_accuracy(folder, "path", "bezier", 2500)

    # filled in by the page's script: proof that Chromium ran it on this DOM
    total = expected_summary_rows(LEADERBOARDS)
    assert total > 0 and page.by_id["generated-count"].strip() == str(total)
