"""The bonafide t rule: the choice worked out by hand on curves and surfaces, the fit and
held-out parts of the budget, a tiny benchmark end to end (whose choice never reads the
evaluation set), the cells' keys, the record's field and the comparison's protocol."""

import copy
import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

import mcbench.cell.data
import mcbench.toolkit.training
from mcbench.bench.cells import Cell
from mcbench.bench.load import load_benchmark
from mcbench.bench.settings import EvalSettings
from mcbench.cell import plan
from mcbench.cell.data import bonafide_for, split_for
from mcbench.cell.split import TestSplit
from mcbench.cell.stage_id import EVALUATE, StageId
from mcbench.cell.stages.call import StageCall
from mcbench.cell.stages.evaluate import evaluate_cell
from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.hashing import content_hash
from mcbench.kinds.data import ImageSet
from mcbench.protocol.t_rule import CURVE_ENDS, choose_point
from mcbench.results.compare import T_RULE_DEFAULTS, compare
from mcbench.results.record_reader import from_json
from mcbench.run.cache import StageCache, data_copy
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench_plugins.architectures.convnet import ConvNet
from tests import by_hand
from tests.conftest import TINY
from tests.test_compare import PUBLISHED, record, write

CPU = torch.device("cpu")
GRID5 = [(0.0,), (0.25,), (0.5,), (0.75,), (1.0,)]


def curve(accuracy, tolerance=0.02, positions=GRID5):
    return choose_point(positions, accuracy, CURVE_ENDS, tolerance)


# -- the rule ----------------------------------------------------------------------------
def test_the_farthest_qualifying_point_wins_and_a_tie_goes_to_the_more_accurate():
    # endpoints' mean (0.90 + 0.86) / 2 = 0.88; qualifying from 0.86 on: t = 0.5 does not,
    # 0.25 and 0.75 are equally far from the ends, and 0.75 is the more accurate
    choice = curve([0.90, 0.88, 0.50, 0.89, 0.86])
    assert choice.position == (0.75,) and choice.index == 3
    assert choice.reference == pytest.approx(0.88)


def test_equal_distance_and_accuracy_go_to_the_smaller_position():
    assert curve([0.90, 0.88, 0.50, 0.88, 0.86]).position == (0.25,)


def test_a_point_exactly_at_the_threshold_qualifies():
    # reference 0.75, tolerance 0: the middle's 0.75 is just enough
    assert curve([0.80, 0.70, 0.75, 0.70, 0.70], tolerance=0.0).position == (0.5,)
    assert curve([0.80, 0.70, 0.74, 0.70, 0.70], tolerance=0.0).position == (0.0,)
    # reference (0.90 + 0.86) / 2, less 0.02, is 0.86 up to rounding: t = 0.5 qualifies
    assert curve([0.90, 0.50, 0.86, 0.50, 0.86]).position == (0.5,)


def test_without_a_qualifying_interior_point_the_more_accurate_end_is_chosen():
    assert curve([0.80, 0.10, 0.10, 0.10, 0.90]).position == (1.0,)
    assert curve([0.90, 0.10, 0.10, 0.10, 0.90]).position == (0.0,)  # tie: the smaller


def test_a_larger_tolerance_lets_the_middle_qualify():
    accuracy = [0.90, 0.85, 0.80, 0.85, 0.90]
    assert curve(accuracy, tolerance=0.05).position == (0.25,)
    assert curve(accuracy, tolerance=0.10).position == (0.5,)


def test_grid_distances_that_differ_only_by_rounding_are_a_tie():
    # on an 11-point grid, 1 - 0.7 is 0.30000000000000004: still as far as 0.3 is
    positions = [(round(i / 10, 10),) for i in range(11)]
    accuracy = [0.9] + [0.1] * 9 + [0.9]
    accuracy[3], accuracy[7] = 0.95, 0.90
    assert curve(accuracy, positions=positions).position == (0.3,)


def test_a_surface_with_four_corners():
    positions = [(u, v) for u in (0.0, 0.5, 1.0) for v in (0.0, 0.5, 1.0)]
    corners = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    accuracy = {p: 0.9 for p in positions}
    accuracy[(0.5, 0.5)] = 0.5  # the centre (0.71 from every corner) does not qualify
    accuracy[(0.5, 0.0)] = 0.89  # the edge midpoints are 0.5 from their corners
    accuracy[(1.0, 0.5)] = 0.895
    choice = choose_point(positions, [accuracy[p] for p in positions], corners, 0.02)
    assert choice.position == (0.0, 0.5)  # 0.9, and the smaller of (0, .5) and (.5, 1)
    assert choice.reference == pytest.approx(0.9)
    accuracy[(0.5, 0.5)] = 0.88
    choice = choose_point(positions, [accuracy[p] for p in positions], corners, 0.02)
    assert choice.position == (0.5, 0.5)


def test_a_surface_with_three_corners():
    corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    third = 1 / 3
    # min distances: (0.5, 0) 0.5; (1/3, 1/3) 0.471; (0.5, 0.5) 0.707
    positions = [*corners, (0.5, 0.0), (third, third), (0.5, 0.5)]
    accuracy = [0.9, 0.9, 0.9, 0.89, 0.9, 0.5]
    choice = choose_point(positions, accuracy, corners, 0.02)
    assert choice.position == (0.5, 0.0) and choice.index == 3
    accuracy[5] = 0.88
    assert choose_point(positions, accuracy, corners, 0.02).position == (0.5, 0.5)


def test_the_rule_needs_the_corners_among_the_positions():
    with pytest.raises(ValueError, match="not among the evaluated positions"):
        choose_point([(0.0,), (0.5,)], [0.9, 0.9], CURVE_ENDS, 0.02)
    with pytest.raises(ValueError, match="3 positions but 2 accuracies"):
        choose_point([(0.0,), (0.5,), (1.0,)], [0.9, 0.9], CURVE_ENDS, 0.02)


# -- settings and cells ------------------------------------------------------------------
BONAFIDE = TINY.replace("connections: [linear, bezier]", "connections: [bezier]").replace(
    "evaluate: {grid: 3}", "evaluate: {grid: 5, t_rule: bonafide}"
)


def test_the_settings_are_checked():
    for bad, match in [
        (dict(holdout=0.0), "holdout must be in"),
        (dict(holdout=1.0), "holdout must be in"),
        (dict(tolerance=-0.01), "tolerance must be"),
        (dict(tolerance=float("inf")), "tolerance must be"),
        (dict(tolerance=float("nan")), "tolerance must be"),
        (dict(t_rule="best"), "t_rule must be"),
    ]:
        with pytest.raises(ValueError, match=match):
            EvalSettings(**bad)
    assert EvalSettings(holdout=0.2).holdout_sizes(40) == (32, 8)
    with pytest.raises(ValueError, match="holds out 0"):
        EvalSettings(holdout=0.2).holdout_sizes(2)
    with pytest.raises(ValueError, match="holds out 2"):
        EvalSettings(holdout=0.9).holdout_sizes(2)


def test_the_comparison_reads_a_missing_setting_as_its_default():
    defaults = EvalSettings()
    assert T_RULE_DEFAULTS == {k: getattr(defaults, k) for k in T_RULE_DEFAULTS}
    assert set(T_RULE_DEFAULTS) >= set(EvalSettings.RULE_FIELDS)


def test_a_budget_too_small_to_hold_out_from_is_refused_at_load(write_yaml, registry):
    text = BONAFIDE.replace("budgets: [40]", "budgets: [40, 2]")
    with pytest.raises(ConfigError, match="holds out 0") as e:
        load_benchmark(write_yaml(text), registry)
    assert e.value.key == "tracks.backdoor-repair.budgets[1]"
    # single-model repairs keep the whole budget, and the fixed rule holds out nothing
    load_benchmark(write_yaml(text.replace("{name: path,", "{name: finetune,")), registry)
    load_benchmark(write_yaml(text.replace(", t_rule: bonafide", "")), registry)


def cells(write_yaml, registry, evaluate: str, repair: str = "path") -> list[Cell]:
    text = TINY.replace("evaluate: {grid: 3}", f"evaluate: {evaluate}")
    if repair != "path":
        text = text.replace("{name: path, epochs: 2, batch_size: 32}", repair)
    return list(load_benchmark(write_yaml(text, f"{content_hash(text)}.yaml"), registry).cells)


def test_the_fixed_rule_keys_and_records_cells_as_before(write_yaml, registry):
    default = cells(write_yaml, registry, "{grid: 3}")
    explicit = cells(write_yaml, registry, "{grid: 3, t_rule: fixed, holdout: 0.5, tolerance: 0}")
    for a, b in zip(default, explicit):
        assert a.cell_id == b.cell_id and a.repair_key() == b.repair_key()
        assert a.config() == b.config() and a.holdout is None
        assert set(a.config()["evaluate"]) == {"grid", "report_t", "batch_size", "recalibrate_bn"}


def test_the_bonafide_rule_refits_the_path_but_shares_the_endpoints(write_yaml, registry):
    fixed = cells(write_yaml, registry, "{grid: 3}")
    rule = cells(write_yaml, registry, "{grid: 3, t_rule: bonafide}")
    other = cells(write_yaml, registry, "{grid: 3, t_rule: bonafide, holdout: 0.25}")
    for f, r, o in zip(fixed, rule, other):
        assert r.holdout == 0.2 and o.holdout == 0.25
        assert len({f.repair_key(), r.repair_key(), o.repair_key()}) == 3
        assert len({f.cell_id, r.cell_id, o.cell_id}) == 3
        for role in "AB":
            assert f.endpoint_key(role) == r.endpoint_key(role)
            assert f.endpoint_eval_key(role) == r.endpoint_eval_key(role)
        evaluate = r.config()["evaluate"]
        assert evaluate["t_rule"] == "bonafide" and "report_t" not in evaluate
    # report_t is unused by the bonafide rule; a single-model repair keeps its whole budget
    moved = cells(write_yaml, registry, "{grid: 3, t_rule: bonafide, report_t: 0.2}")
    assert [c.cell_id for c in moved] == [c.cell_id for c in rule]
    finetune = "{name: finetune, epochs: 1}"
    [single_fixed] = cells(write_yaml, registry, "{grid: 3}", finetune)
    [single_rule] = cells(write_yaml, registry, "{grid: 3, t_rule: bonafide}", finetune)
    assert single_rule.holdout is None
    assert single_fixed.repair_key() == single_rule.repair_key()


def test_the_fit_and_held_out_parts_are_disjoint_and_make_the_budget(write_yaml, registry):
    [cell] = load_benchmark(write_yaml(BONAFIDE), registry).cells
    pool = ImageSet(torch.zeros(60, 1, 2, 2, dtype=torch.uint8), torch.arange(60))
    evaluation = ImageSet(torch.zeros(5, 1, 2, 2, dtype=torch.uint8), torch.arange(60, 65))
    split = TestSplit(pool, evaluation)
    parts = bonafide_for(cell, split)
    fit, held = set(parts.fit.labels.tolist()), set(parts.held_out.labels.tolist())
    assert len(fit) == 32 and len(held) == 8 and not fit & held
    fixed = bonafide_for(dataclasses.replace(cell, evaluate=EvalSettings(grid=5)), split)
    assert fixed.held_out is None and set(fixed.fit.labels.tolist()) == fit | held
    again = bonafide_for(cell, split)
    assert torch.equal(again.held_out.labels, parts.held_out.labels)


# -- end to end --------------------------------------------------------------------------
def quiet(description, total):
    return lambda epoch, loss: None


@pytest.fixture(scope="module")
def ran(tmp_path_factory, registry):
    """A tiny bonafide-rule benchmark, run once: its cell, record, store and data."""
    folder = tmp_path_factory.mktemp("t_rule")
    (folder / "bench.yaml").write_text(BONAFIDE)
    results = folder / "results"
    fitted = []
    with pytest.MonkeyPatch.context() as patch:
        real_fit = mcbench.toolkit.training.fit
        patch.setattr(
            "mcbench_plugins.repairs.path.fit",
            lambda model, data, *a, **kw: (
                fitted.append(len(data)) or real_fit(model, data, *a, **kw)
            ),
        )
        bench = load_benchmark(folder / "bench.yaml", registry)
        summary = run_benchmark(bench, Store(results), CPU, None, results / "cache", quiet)
    assert not summary.failed
    [cell] = bench.cells
    rec = json.loads((results / "records" / f"{cell.cell_id}.json").read_text())
    data = cell.dataset.instance.load(None, folder)
    return cell, rec, results, data, fitted


def test_the_record_holds_the_rule_and_what_it_read(ran):
    cell, rec, _, _, fitted = ran
    rule = rec["t_rule"]
    assert rule["rule"] == "bonafide" and (rule["holdout"], rule["tolerance"]) == (0.2, 0.02)
    assert rule["fit_size"] + rule["held_out_size"] == rec["sizes"]["bonafide"] == 40
    assert (rule["fit_size"], rule["held_out_size"]) == (32, 8)
    assert fitted == [32]  # the path was fitted on the fit part alone
    positions = [(p["t"],) for p in rec["path"]]
    assert positions == GRID5 and len(rule["held_out_accuracy"]) == len(positions)
    choice = choose_point(positions, rule["held_out_accuracy"], CURVE_ENDS, rule["tolerance"])
    assert rec["reported_t"] == rule["t"] == choice.position[0]
    ends = (rule["held_out_accuracy"][0] + rule["held_out_accuracy"][-1]) / 2
    assert rule["endpoints_accuracy"] == pytest.approx(ends)
    assert from_json(rec, need="rerun")["t_rule"] == rule


def test_the_held_out_accuracy_at_an_end_by_hand(ran):
    """At t = 0 the path is endpoint A: BatchNorm recomputed on the fit part, scored on the
    held-out part."""
    cell, rec, results, data, _ = ran
    budget = by_hand.bonafide_images(data, rec["config"])
    order = by_hand.permutation(len(budget), int(content_hash(["holdout", 0], length=8), 16))
    fit, held = budget.subset(order[8:]), budget.subset(order[:8])
    net = ConvNet(widths=(8, 16)).build(4, 3, 16)
    model = by_hand.stored_model(results, "endpoint", rec["keys"]["endpoint_A"], net, data)
    by_hand.recalibrated(model, fit, batch_size=500)
    expected = by_hand.accuracy(model, held)
    assert rec["t_rule"]["held_out_accuracy"][0] == pytest.approx(expected, abs=1e-9)


def test_the_choice_never_reads_the_evaluation_set(ran, monkeypatch):
    cell, rec, results, data, _ = ran
    stored = StageCache(Store(results), data_copy(data), compute=False)
    real_split = split_for

    def poisoned(cell, data):
        split = real_split(cell, data)
        ev = split.evaluation
        noise = torch.randint(0, 256, ev.images.shape, generator=torch.Generator().manual_seed(1))
        labels = (ev.labels + 1) % data.num_classes
        return TestSplit(split.defender_pool, ImageSet(noise.to(torch.uint8), labels))

    inputs = stored.load_inputs(plan.input_refs(cell, StageId(EVALUATE)))
    call = StageCall(cell, data, CPU, StageId(EVALUATE))
    clean = evaluate_cell(call, inputs)
    monkeypatch.setattr(mcbench.cell.data, "split_for", poisoned)
    dirty = evaluate_cell(call, inputs)
    assert clean["t_rule"] == rec["t_rule"] and clean["reported_t"] == rec["reported_t"]
    assert dirty["t_rule"] == clean["t_rule"] and dirty["reported_t"] == clean["reported_t"]
    # while the evaluation did read the poisoned set
    scores = lambda r: [p["clean_accuracy"] for p in r["path"]]  # noqa: E731
    assert scores(clean) == [p["clean_accuracy"] for p in rec["path"]]
    assert scores(dirty) != scores(clean)


def test_a_record_whose_rule_does_not_fit_its_path_is_refused(ran):
    _, rec, _, _, _ = ran
    short = copy.deepcopy(rec)
    short["t_rule"]["held_out_accuracy"].pop()
    with pytest.raises(ConfigError, match="one accuracy per point") as e:
        from_json(short, need="tables")
    assert e.value.key == "t_rule.held_out_accuracy"
    moved = copy.deepcopy(rec)
    moved["t_rule"]["t"] = 1.5
    with pytest.raises(ConfigError, match="the reported t"):
        from_json(moved, need="tables")
    for field, value in [("rule", "best"), ("fit_size", 0), ("tolerance", None)]:
        damaged = copy.deepcopy(rec)
        damaged["t_rule"][field] = value
        with pytest.raises(ConfigError) as e:
            from_json(damaged, need="tables")
        assert e.value.key == f"t_rule.{field}"
    old = {k: v for k, v in rec.items() if k != "t_rule"}  # before the field: the fixed rule
    assert "t_rule" not in from_json(old, need="tables")


# -- compare -----------------------------------------------------------------------------
def evaluated(r: dict, **evaluate) -> dict:
    r = copy.deepcopy(r)
    r["config"]["evaluate"].update(evaluate)
    r["config"]["evaluate"] = {k: v for k, v in r["config"]["evaluate"].items() if v is not None}
    return r


def test_a_bonafide_rule_row_is_refused_against_a_fixed_rule_table(tmp_path):
    mine = evaluated(
        record("m0", "path", 0.9, 0.01, connection="bezier"),
        t_rule="bonafide",
        holdout=0.2,
        tolerance=0.02,
        report_t=None,
    )
    result = CliRunner().invoke(
        cli,
        [
            "leaderboard",
            "compare",
            write(tmp_path / "mine", [mine]),
            write(tmp_path / "pub", PUBLISHED),
        ],
    )
    assert result.exit_code == 2, result.output
    assert 'evaluate.t_rule: yours "bonafide", published "fixed"' in result.output
    assert "evaluate.report_t: yours null, published 0.5" in result.output
    assert "evaluate.holdout: yours 0.2, published null" in result.output


def test_rows_under_one_rule_compare_by_its_settings_alone():
    old = PUBLISHED  # written before the rule had settings
    explicit = evaluated(
        record("m0", "mine", 0.81, 0.02), t_rule="fixed", holdout=0.5, tolerance=0.1
    )
    result = compare([explicit], old)
    assert not result.mismatches and len(result.table) == 4
    bonafide = [
        evaluated(r, t_rule="bonafide", holdout=0.2, tolerance=0.02, report_t=None) for r in old
    ]
    other_report_t = evaluated(
        record("m1", "mine", 0.81, 0.02), t_rule="bonafide", holdout=0.2, report_t=0.3
    )
    result = compare([other_report_t], bonafide)  # tolerance missing: its default
    assert not result.mismatches and len(result.table) == 4
    stricter = evaluated(other_report_t, tolerance=0.0)
    [mismatch] = compare([stricter], bonafide).mismatches
    assert "evaluate.tolerance: yours 0.0, published 0.02" in str(mismatch)
