"""A surface repair through three endpoints, end to end on a tiny synthetic benchmark: the
third endpoint is trained like the others, the record holds the grid and reports one
point of it, the leaderboard shows it beside the curve between two of the same endpoints,
and the plots draw it as a heat map."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mcbench.bench.load import load_benchmark
from mcbench.cell import plan
from mcbench.protocol.t_rule import choose_point
from mcbench.results.leaderboard import build_tables
from mcbench.results.plots import write_plots
from mcbench.results.record_reader import from_json
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from tests.conftest import TINY

CPU = torch.device("cpu")
SURFACE = TINY.replace(
    "repairs: [{name: path, epochs: 2, batch_size: 32}]",
    "repairs: [{name: path, epochs: 2, batch_size: 32}, "
    "{name: surface, shape: triangle, degree: 2, epochs: 2, batch_size: 32, grid: 3}]",
).replace("connections: [linear, bezier]", "connections: [bezier]")
TRIANGLE_GRID = [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, 0.5], [0.5, 0.5], [0.0, 1.0]]


def quiet(description, total):
    return lambda epoch, loss: None


def run(folder, registry, text):
    (folder / "bench.yaml").write_text(text)
    results = folder / "results"
    bench = load_benchmark(folder / "bench.yaml", registry)
    summary = run_benchmark(bench, Store(results), CPU, None, results / "cache", quiet)
    assert not summary.failed
    records = {}
    for cell in bench.cells:
        records[cell.repair.name] = json.loads(
            (results / "records" / f"{cell.cell_id}.json").read_text()
        )
    return {c.repair.name: c for c in bench.cells}, records, results


@pytest.fixture(scope="module")
def ran(tmp_path_factory, registry):
    return run(tmp_path_factory.mktemp("surface"), registry, SURFACE)


def test_the_surface_cell_trains_a_third_endpoint_and_shares_the_other_two(ran):
    cells, records, _ = ran
    path, surface = cells["path"], cells["surface"]
    assert surface.roles == ("A", "B", "C") and path.roles == ("A", "B")
    assert [surface.endpoint_key(r) for r in "AB"] == [path.endpoint_key(r) for r in "AB"]
    assert len({surface.endpoint_key(r) for r in "ABC"}) == 3
    repair_inputs = plan.repair(surface).inputs
    assert repair_inputs == tuple(plan.endpoint(surface, r).node for r in "ABC")
    assert set(records["surface"]["endpoints"]) == {"A", "B", "C"}
    assert set(records["surface"]["keys"]) >= {"endpoint_A", "endpoint_B", "endpoint_C"}


def test_the_record_holds_the_grid_and_reports_the_point_nearest_the_centre(ran):
    _, records, _ = ran
    rec = records["surface"]
    grid = rec["surface"]
    assert [p["uv"] for p in grid["points"]] == TRIANGLE_GRID
    assert grid["corners"] == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    centre = (1 / 3, 1 / 3)
    nearest = min(grid["points"], key=lambda p: math.dist(p["uv"], centre))
    assert grid["chosen"] == nearest["uv"] == [0.5, 0.5]
    assert grid["rule"] == {"rule": "fixed"}
    # the reported model is the chosen point: one entry, no t (like a single-model repair)
    [reported] = rec["path"]
    assert reported["t"] is None and rec["reported_t"] is None
    for metric in ("clean_accuracy", "attack_success_rate", "loss"):
        assert reported[metric] == nearest[metric]
    assert from_json(rec, need="rerun")["surface"] == grid


def test_a_corner_of_the_surface_is_the_curve_s_endpoint(ran):
    """At (0, 0) the surface is endpoint A, as is the curve at t = 0: with BatchNorm
    recomputed on the same bonafide images, every score is the same."""
    _, records, _ = ran
    corner = records["surface"]["surface"]["points"][0]
    start = records["path"]["path"][0]
    assert corner["uv"] == [0.0, 0.0] and start["t"] == 0.0
    for metric in ("clean_accuracy", "attack_success_rate", "loss"):
        assert corner[metric] == start[metric]


def test_the_leaderboard_shows_the_surface_beside_the_curve(ran):
    _, records, _ = ran
    tables = build_tables(list(records.values()))
    summary = tables["summary"]
    assert set(summary["repair"]) == {"path", "surface"}
    row = summary[summary["repair"] == "surface"].iloc[0]
    chosen = records["surface"]["path"][0]
    assert row["clean_accuracy_mean"] == pytest.approx(chosen["clean_accuracy"])


def test_the_plots_draw_the_surface_as_a_heat_map(ran, tmp_path):
    _, records, _ = ran
    written = write_plots(list(records.values()), tmp_path, formats=("png",))
    surfaces = [p for p in written if p.name.startswith("surface--")]
    assert len(surfaces) == 1 and surfaces[0].stat().st_size > 10_000


def test_a_damaged_grid_is_refused(ran):
    from mcbench.errors import ConfigError

    _, records, _ = ran
    rec = json.loads(json.dumps(records["surface"]))
    rec["surface"]["chosen"] = [0.9, 0.9]
    with pytest.raises(ConfigError, match="one of the points' uv"):
        from_json(rec, need="tables")
    rec = json.loads(json.dumps(records["surface"]))
    rec["surface"]["points"][2]["clean_accuracy"] = "high"
    with pytest.raises(ConfigError, match="a number or null"):
        from_json(rec, need="tables")


def test_the_bonafide_rule_chooses_the_surface_point_from_held_out_data(tmp_path_factory, registry):
    text = SURFACE.replace("evaluate: {grid: 3}", "evaluate: {grid: 3, t_rule: bonafide}")
    _, records, _ = run(tmp_path_factory.mktemp("surface-rule"), registry, text)
    grid = records["surface"]["surface"]
    rule = grid["rule"]
    assert rule["rule"] == "bonafide" and rule["fit_size"] + rule["held_out_size"] == 40
    positions = [tuple(p["uv"]) for p in grid["points"]]
    corners = [tuple(c) for c in grid["corners"]]
    choice = choose_point(positions, rule["held_out_accuracy"], corners, rule["tolerance"])
    assert grid["chosen"] == list(choice.position)
    assert rule["endpoints_accuracy"] == pytest.approx(choice.reference)
