"""The leaderboard page's script in headless Chromium, driven by Selenium with real clicks,
typing and choices: sorting by a column, filtering by text and choosing a budget give the
rows that the JSON records give, and a record's text is never run as markup."""

import json
import os
import shutil
from pathlib import Path

import pytest

from mcbench.results.site import build_site

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
TABLE = "backdoor-repair-cpu"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = '<img src=x onerror="window.pwned=1">'


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing (pip install selenium)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = _missing()
    if missing:
        if os.environ.get("MCBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing} and MCBENCH_REQUIRE_BROWSER=1")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
    ):
        options.add_argument(flag)
    # the driver named explicitly: Selenium Manager would otherwise look for one online
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def write_records(folder: Path, records: list[dict]) -> None:
    (folder / "records").mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A published table as it is, and a table of one record whose architecture is markup."""
    root = tmp_path_factory.mktemp("leaderboards")
    shutil.copytree(LEADERBOARDS / TABLE, root / TABLE)
    hostile = json.loads(next((root / TABLE / "records").glob("*.json")).read_text())
    hostile["config"]["architecture"]["name"] = HOSTILE
    write_records(root / "hostile", [hostile])
    out = tmp_path_factory.mktemp("site")
    return build_site(root, out)


def records() -> dict[str, dict]:
    """The published table's successful records, by cell id: what the rows must show."""
    found = {}
    for path in sorted((LEADERBOARDS / TABLE / "records").glob("*.json")):
        r = json.loads(path.read_text())
        if r["status"] == "ok":
            found[r["cell_id"]] = r
    return found


def loss(r: dict) -> float:
    """The loss at the reported t (no two published records share one)."""
    (point,) = [p for p in r["path"] if p["t"] == r["reported_t"]]
    return point["loss"]


def connection(r: dict) -> str | None:
    return (r["config"].get("connection") or {}).get("name")


ROWS = """
const rows = document.querySelectorAll(arguments[0] + " tbody tr");
return Array.from(rows).filter(r => !r.hidden).map(r => r.classList.contains("budget-heading")
  ? ["heading", r.textContent]
  : [r.querySelector("td[data-links] a").getAttribute("href"), r.cells[arguments[1]].textContent]);
"""


class Board:
    """One table on the loaded page, as a user sees it."""

    def __init__(self, driver, section: str, table: str = "summary"):
        from selenium.webdriver.common.by import By

        self.driver, self.by = driver, By
        self.css = f'section[id="{section}"] [data-table="{table}"]'
        self.root = driver.find_element(By.CSS_SELECTOR, self.css)
        self.heads = [h.text for h in self.root.find_elements(By.CSS_SELECTOR, "thead th")]

    def click(self, header: str) -> None:
        index = self.heads.index(header)
        self.root.find_elements(self.by.CSS_SELECTOR, "thead th button")[index].click()

    def rows(self, column: str = "budget") -> list[tuple[str, str]]:
        """(cell id, the text in COLUMN) of each row shown, ("heading", its text) for a
        budget's heading."""
        shown = self.driver.execute_script(ROWS, self.css, self.heads.index(column))
        return [
            (Path(href).stem if href != "heading" else href, text.strip()) for href, text in shown
        ]

    def type(self, text: str) -> None:
        box = self.root.find_element(self.by.CSS_SELECTOR, "[data-filter]")
        box.clear()
        box.send_keys(text)

    def choose_budget(self, label: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(
            self.root.find_element(self.by.CSS_SELECTOR, "[data-budget-choice]")
        ).select_by_visible_text(label)


def test_sort_filter_and_budget_in_chromium(browser, site):
    browser.get(site.resolve().as_uri())
    board = Board(browser, TABLE)
    expected = records()
    assert len(board.rows()) == len(expected)

    # a number column: ascending, then descending, by the records' own values
    values = {c: loss(r) for c, r in expected.items()}
    assert len(set(values.values())) == len(values), "ties would leave the order open"
    ascending = sorted(values, key=values.get)
    board.click("loss")
    assert [c for c, _ in board.rows()] == ascending
    board.click("loss")
    assert [c for c, _ in board.rows()] == ascending[::-1]

    # a text column: by name either way, the rows without a connection last
    named = sorted(connection(r) for r in expected.values() if connection(r))
    empty = ["-"] * sum(1 for r in expected.values() if not connection(r))
    board.click("connection")
    assert [text for _, text in board.rows("connection")] == named + empty
    board.click("connection")
    assert [text for _, text in board.rows("connection")] == named[::-1] + empty

    # filtering by text: every word must appear in some cell of the row, in any case
    for words, wanted in [
        ("bezier", lambda r: connection(r) == "bezier"),
        ("FINETUNE", lambda r: r["config"]["repair"]["name"] == "finetune"),
        (
            "polychain 2500",
            lambda r: connection(r) == "polychain" and r["config"]["budget"] == 2500,
        ),
    ]:
        board.type(words)
        shown = {c for c, _ in board.rows()}
        assert shown == {c for c, r in expected.items() if wanted(r)}, words
    board.type("path")
    path_rows = {c for c, r in expected.items() if r["config"]["repair"]["name"] == "path"}
    assert {c for c, _ in board.rows()} == path_rows

    # one budget, with the filter still on; then every row, grouped under its budget
    board.choose_budget("500")
    assert {c for c, _ in board.rows()} == {
        c for c in path_rows if expected[c]["config"]["budget"] == 500
    }
    board.type("")
    board.click("loss")  # ascending again
    board.choose_budget("grouped by budget")
    budgets = sorted({r["config"]["budget"] for r in expected.values()})
    wanted = []
    for budget in budgets:
        wanted.append(("heading", f"budget {budget}"))
        wanted += [(c, str(budget)) for c in ascending if expected[c]["config"]["budget"] == budget]
    assert board.rows() == wanted

    # each row links its record and its plots, copied beside the page
    folder = site.parent
    links = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('td[data-links] a'), a => a.href);",
        board.root,
    )
    assert len(links) >= len(expected)
    for href in links:
        assert href.startswith(folder.as_uri() + f"/{TABLE}/")
        assert (folder / href[len(folder.as_uri()) + 1 :]).is_file()
    for cell_id, _ in board.rows():
        if cell_id != "heading":
            copied = folder / TABLE / "records" / f"{cell_id}.json"
            assert json.loads(copied.read_text())["cell_id"] == cell_id

    # a record's markup is a text to match, never an element
    hostile = Board(browser, "hostile")
    hostile.type("onerror")
    assert [text for _, text in hostile.rows("architecture")] == [HOSTILE]
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(board.by.CSS_SELECTOR, "td img")
