"""The page's own style and script, inline so that the page works opened from disk, with no
server and no network. The script reads cell texts through textContent and the sort values
that the tables carry in data-* attributes; it writes texts only through textContent."""

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
td[data-links] { text-align: left; }
th button { font: inherit; font-weight: bold; border: 0; background: none; padding: 0;
            cursor: pointer; color: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr.budget-heading th { background: #e8eef6; }
.controls { display: flex; gap: 1.5em; align-items: center; flex-wrap: wrap; font-size: 0.9em; }
.controls[hidden] { display: none; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
.meta { color: #555; }
img { max-width: 100%; }
"""

SCRIPT = """
"use strict";
document.getElementById("generated-count").textContent =
  document.querySelectorAll('[data-table="summary"] tbody tr').length;

function board(root) {
  const body = root.querySelector("tbody");
  if (!body) return;
  const heads = Array.from(root.querySelectorAll("thead th"));
  const rows = Array.from(body.rows);
  const filter = root.querySelector("[data-filter]");
  const choice = root.querySelector("[data-budget-choice]");
  const shown = root.querySelector("[data-shown]");
  const words = rows.map(function (row) {
    return Array.from(row.cells)
      .filter(function (cell) { return !cell.hasAttribute("data-links"); })
      .map(function (cell) { return cell.textContent; })
      .join(" ").toLowerCase();
  });
  const order = { column: -1, descending: false };

  function compare(a, b) {
    if (order.column < 0) return a - b;
    const x = rows[a].cells[order.column], y = rows[b].cells[order.column];
    const xEmpty = x.hasAttribute("data-empty"), yEmpty = y.hasAttribute("data-empty");
    if (xEmpty || yEmpty) return xEmpty === yEmpty ? a - b : (xEmpty ? 1 : -1);
    let c;
    if (heads[order.column].dataset.type === "number") {
      c = parseFloat(x.dataset.sort) - parseFloat(y.dataset.sort);
    } else {
      c = x.textContent.trim().localeCompare(y.textContent.trim(), undefined, { numeric: true });
    }
    if (order.descending) c = -c;
    return c || a - b;
  }

  function budgetOf(i) {
    const b = rows[i].dataset.budget;
    return b === "" ? Infinity : parseFloat(b);
  }

  function heading(budget) {
    const tr = document.createElement("tr"), th = document.createElement("th");
    tr.className = "budget-heading";
    th.colSpan = heads.length;
    th.textContent = budget === "" ? "no budget" : "budget " + budget;
    tr.appendChild(th);
    return tr;
  }

  function update() {
    const terms = filter ? filter.value.toLowerCase().split(/\\s+/).filter(Boolean) : [];
    const picked = choice ? choice.value : "";
    const grouped = picked === "group";
    const indices = rows.map(function (row, i) { return i; });
    indices.sort(function (a, b) {
      return (grouped && budgetOf(a) - budgetOf(b)) || compare(a, b);
    });
    let count = 0, group = null, groupHeading = null, groupShown = false;
    const parts = [];
    indices.forEach(function (i) {
      const row = rows[i];
      const visible = terms.every(function (t) { return words[i].includes(t); }) &&
        (picked === "" || grouped || row.dataset.budget === picked);
      row.hidden = !visible;
      count += visible ? 1 : 0;
      if (grouped && row.dataset.budget !== group) {
        if (groupHeading) groupHeading.hidden = !groupShown;
        group = row.dataset.budget;
        groupHeading = heading(group);
        groupShown = false;
        parts.push(groupHeading);
      }
      groupShown = groupShown || visible;
      parts.push(row);
    });
    if (groupHeading) groupHeading.hidden = !groupShown;
    body.replaceChildren.apply(body, parts);
    if (shown) shown.textContent = count + " of " + rows.length + " rows";
  }

  heads.forEach(function (th, column) {
    const button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", function () {
      order.descending = order.column === column ? !order.descending : false;
      order.column = column;
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", order.descending ? "descending" : "ascending");
      update();
    });
  });
  if (filter) filter.addEventListener("input", update);
  if (choice) choice.addEventListener("change", update);
  const controls = root.querySelector(".controls");
  if (controls) controls.hidden = false;
  update();
}

document.querySelectorAll("[data-table]").forEach(board);
"""
