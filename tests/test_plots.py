"""Figures from records alone: the plotted numbers checked against the records by hand."""

import json
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcbench.results.plots import (
    TITLE_WIDTH,
    _title_lines,
    budget_figures,
    path_figures,
    write_plots,
)
from mcbench.results.record_reader import from_json

EVASION_RESULTS = Path(__file__).resolve().parents[1] / "leaderboards" / "evasion-path-cpu"
GRID = [0.0, 0.5, 1.0]
PERCENT = {"percent": True, "higher_is_better": True}


def spec(name, **params):
    return {"name": name, "params": params, "version": "x"}


def record(
    cell_id,
    *,
    values,
    metrics,
    info,
    track="backdoor-repair",
    attack="badnets",
    repair="path",
    connection="bezier",
    budget=500,
    seed=0,
    status="ok",
):
    """A schema-1 result record as read; ``values`` maps each t (None for a single model)
    to its scores."""
    return from_json(
        {
            "schema": 1,
            "cell_id": cell_id,
            "status": status,
            "config": {
                "track": track,
                "dataset": spec("cifar10"),
                "architecture": spec("convnet"),
                "attack": spec(attack) if attack else None,
                "repair": spec(repair),
                "connection": spec(connection) if connection else None,
                "budget": budget,
                "seed": seed,
                "metrics": [spec(m) for m in metrics],
            },
            "metric_info": info,
            "reported_t": 0.5 if connection else None,
            "path": [{"t": t, **scores, "notes": {}} for t, scores in values.items()],
        }
    )


BACKDOOR_METRICS = ["clean_accuracy", "attack_success_rate", "loss"]
BACKDOOR_INFO = {
    "clean_accuracy": PERCENT,
    "attack_success_rate": {"percent": True, "higher_is_better": False},
    "loss": {"percent": False, "higher_is_better": False},
}


def backdoor_scores(connection, budget, seed, t):
    bump = {"linear": -0.3, "bezier": 0.05}[connection]
    return {
        "clean_accuracy": 0.8 + bump * t * (1 - t) * 4 + 0.02 * seed + budget / 1e5,
        "attack_success_rate": 0.9 - 0.7 * t * (1 - t) * 4 - 0.03 * seed,
        "loss": 0.5 + t + 0.1 * seed,
    }


def finetune_scores(budget, seed):
    return {
        "clean_accuracy": 0.6 + 0.05 * seed + budget / 1e4,
        "attack_success_rate": 0.3 - 0.1 * seed,
        "loss": 1.2,
    }


def backdoor_records():
    rows = []
    for budget, seeds in ((500, (0, 1)), (2500, (0,))):
        for seed in seeds:
            for connection in ("linear", "bezier"):
                rows.append(
                    record(
                        f"{connection}-{budget}-{seed}",
                        connection=connection,
                        budget=budget,
                        seed=seed,
                        metrics=BACKDOOR_METRICS,
                        info=BACKDOOR_INFO,
                        values={t: backdoor_scores(connection, budget, seed, t) for t in GRID},
                    )
                )
            rows.append(
                record(
                    f"finetune-{budget}-{seed}",
                    repair="finetune",
                    connection=None,
                    budget=budget,
                    seed=seed,
                    metrics=BACKDOOR_METRICS,
                    info=BACKDOOR_INFO,
                    values={None: finetune_scores(budget, seed)},
                )
            )
    return rows


EIGENVALUES = [5.0, 9.0, 2.0]


def evasion_record():
    metrics = ["clean_accuracy", "loss", "adversarial_loss", "input_hessian_eig"]
    info = {
        "clean_accuracy": PERCENT,
        **{m: {"percent": False, "higher_is_better": False} for m in metrics[1:]},
    }
    values = {
        t: {
            "clean_accuracy": 0.7 - 0.1 * t,
            "loss": 1.0 + t,
            "adversarial_loss": 3.0 - t,
            "input_hessian_eig": eig,
        }
        for t, eig in zip(GRID, EIGENVALUES)
    }
    return record(
        "evasion",
        track="evasion-path",
        attack=None,
        budget=100,
        metrics=metrics,
        info=info,
        values=values,
    )


def line(axis, label):
    found = [ln for ln in axis.get_lines() if ln.get_label() == label]
    assert len(found) == 1, [ln.get_label() for ln in axis.get_lines()]
    return found[0]


def axis_with(figure, label):
    found = [a for a in figure.axes if any(ln.get_label() == label for ln in a.get_lines())]
    assert len(found) == 1, label
    return found[0]


def test_path_line_is_the_mean_over_seeds_in_percent():
    figures = path_figures(backdoor_records())
    assert sorted(figures) == [
        "path--backdoor-repair--cifar10--convnet--badnets--path--n2500",
        "path--backdoor-repair--cifar10--convnet--badnets--path--n500",
    ]
    figure = figures["path--backdoor-repair--cifar10--convnet--badnets--path--n500"]
    top = figure.axes[0]
    bezier = line(top, "bezier: clean_accuracy")
    expected = [
        100
        * statistics.mean(backdoor_scores("bezier", 500, s, t)["clean_accuracy"] for s in (0, 1))
        for t in GRID
    ]
    assert list(bezier.get_xdata()) == GRID
    assert list(bezier.get_ydata()) == pytest.approx(expected)
    linear = line(top, "linear: attack_success_rate")
    assert linear.get_marker() != bezier.get_marker()
    assert linear.get_color() == line(top, "bezier: attack_success_rate").get_color()
    assert linear.get_color() != bezier.get_color()
    # loss is not a percentage: drawn unscaled on the axis below
    loss = line(figure.axes[1], "linear: loss")
    assert list(loss.get_ydata()) == pytest.approx(
        [
            statistics.mean(backdoor_scores("linear", 500, s, t)["loss"] for s in (0, 1))
            for t in GRID
        ]
    )


def test_std_band_only_with_two_seeds():
    figures = path_figures(backdoor_records())
    two_seeds = figures["path--backdoor-repair--cifar10--convnet--badnets--path--n500"]
    one_seed = figures["path--backdoor-repair--cifar10--convnet--badnets--path--n2500"]
    assert len(two_seeds.axes[0].collections) == 4  # 2 connections x 2 percent metrics
    assert len(one_seed.axes[0].collections) == 0
    band = two_seeds.axes[0].collections[0].get_paths()[0].vertices  # linear clean_accuracy
    at_middle = sorted(y for x, y in band if x == 0.5)
    accs = [100 * backdoor_scores("linear", 500, s, 0.5)["clean_accuracy"] for s in (0, 1)]
    mean, spread = statistics.mean(accs), statistics.stdev(accs)
    assert [at_middle[0], at_middle[-1]] == pytest.approx([mean - spread, mean + spread])


def test_single_model_repair_is_a_dashed_reference_line_at_its_value():
    figures = path_figures(backdoor_records())
    for budget, seeds in ((500, (0, 1)), (2500, (0,))):
        top = figures[f"path--backdoor-repair--cifar10--convnet--badnets--path--n{budget}"].axes[0]
        reference = line(top, "finetune: clean_accuracy")
        value = 100 * statistics.mean(finetune_scores(budget, s)["clean_accuracy"] for s in seeds)
        assert reference.get_linestyle() == "--"
        assert list(reference.get_ydata()) == pytest.approx([value, value])
        reported = [ln for ln in top.get_lines() if ln.get_label().startswith("reported t")]
        assert len(reported) == 1 and list(reported[0].get_xdata()) == [0.5, 0.5]


def test_hessian_eigenvalue_is_on_a_second_axis_sharing_t():
    figure = path_figures([evasion_record()])["path--evasion-path--cifar10--convnet--path--n100"]
    top, bottom = figure.axes[0], figure.axes[1]
    assert axis_with(figure, "bezier: clean_accuracy") is top
    assert axis_with(figure, "bezier: loss") is bottom
    assert axis_with(figure, "bezier: adversarial_loss") is bottom
    twin = axis_with(figure, "bezier: input_hessian_eig")
    assert twin not in (top, bottom)
    assert twin.get_shared_x_axes().joined(twin, bottom)
    assert list(line(twin, "bezier: input_hessian_eig").get_ydata()) == EIGENVALUES
    assert "input_hessian_eig" in twin.get_ylabel()


def test_no_lower_axis_without_non_percent_metrics():
    only_percent = [
        record(
            "p",
            metrics=["clean_accuracy"],
            info={"clean_accuracy": PERCENT},
            values={t: {"clean_accuracy": 0.5} for t in GRID},
        )
    ]
    (figure,) = path_figures(only_percent).values()
    assert len(figure.axes) == 1


def test_budget_curve_is_the_reported_t_value_per_repair():
    figures = budget_figures(backdoor_records() + [evasion_record()])
    assert list(figures) == ["budget--backdoor-repair--cifar10--convnet--badnets"]  # one budget
    figure = figures["budget--backdoor-repair--cifar10--convnet--badnets"]
    (axis,) = [a for a in figure.axes if a.get_title().startswith("clean_accuracy")]
    assert axis.get_xscale() == "log"
    curves = {c.get_label(): c for c in axis.containers}
    assert set(curves) == {"path/linear", "path/bezier", "finetune"}
    bezier = curves["path/bezier"]
    x, y = bezier.lines[0].get_data()
    assert list(x) == [500, 2500]
    expected = [
        100
        * statistics.mean(backdoor_scores("bezier", 500, s, 0.5)["clean_accuracy"] for s in (0, 1)),
        100 * backdoor_scores("bezier", 2500, 0, 0.5)["clean_accuracy"],
    ]
    assert list(y) == pytest.approx(expected)
    assert bezier.has_yerr
    finetune_y = curves["finetune"].lines[0].get_ydata()
    assert list(finetune_y) == pytest.approx(
        [
            100 * statistics.mean(finetune_scores(500, s)["clean_accuracy"] for s in (0, 1)),
            100 * finetune_scores(2500, 0)["clean_accuracy"],
        ]
    )
    (loss_axis,) = [a for a in figure.axes if a.get_title().startswith("loss")]
    loss = {c.get_label(): c for c in loss_axis.containers}["path/linear"]
    assert list(loss.lines[0].get_ydata()) == pytest.approx([1.0 + 0.05, 1.0])


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    (folder / "records").mkdir(parents=True)
    failed = record(
        "broken",
        metrics=["clean_accuracy"],
        info={},
        status="failed",
        budget=99,
        values={0.5: {"clean_accuracy": 0.1}},
    )
    for r in backdoor_records() + [evasion_record(), failed]:
        (folder / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
    return folder


def test_write_plots_writes_png_and_svg_of_every_figure(results, tmp_path):
    out = tmp_path / "plots"
    written = write_plots(results, out)
    names = {p.stem for p in written}
    assert names == {
        "path--backdoor-repair--cifar10--convnet--badnets--path--n500",
        "path--backdoor-repair--cifar10--convnet--badnets--path--n2500",
        "path--evasion-path--cifar10--convnet--path--n100",
        "budget--backdoor-repair--cifar10--convnet--badnets",
    }
    assert written == sorted(written)
    assert sorted(out.iterdir()) == written
    assert sorted(p.name for p in written) == sorted(
        f"{n}.{ext}" for n in names for ext in ("png", "svg")
    )
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")


def test_write_plots_takes_records_and_other_formats(tmp_path):
    failed = {**evasion_record(), "cell_id": "failed", "status": "failed", "path": []}
    written = write_plots([evasion_record(), failed], tmp_path, formats=("png",))
    assert [p.name for p in written] == ["path--evasion-path--cifar10--convnet--path--n100.png"]


def test_no_records_is_an_error_naming_the_folder(tmp_path):
    empty = tmp_path / "empty"
    (empty / "records").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape(str(empty))):
        write_plots(empty, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing"))):
        write_plots(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError):
        write_plots([], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_file_names_are_safe_for_any_label():
    rows = [
        record(
            f"p{lr}",
            metrics=["clean_accuracy"],
            info={"clean_accuracy": PERCENT},
            values={t: {"clean_accuracy": 0.5} for t in GRID},
            repair="path",
        )
        for lr in (0.1, 0.2)
    ]
    for r, lr in zip(rows, (0.1, 0.2)):
        r["config"]["repair"]["params"] = {"lr": lr, "adversarial": {"eps": "8/255"}}
    names = list(path_figures(rows))
    assert len(names) == 2 and len(set(names)) == 2
    assert all(re.fullmatch(r"[a-z0-9._-]+", n) for n in names), names


def test_plots_never_import_torch():
    code = (
        "import sys, mcbench.results.plots; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_published_evasion_records(tmp_path):
    written = write_plots(EVASION_RESULTS, tmp_path)
    assert {p.suffix for p in written} == {".png", ".svg"}
    assert all(p.is_file() and p.stat().st_size > 1000 for p in written)
    from mcbench.results.record_reader import load_records

    (figure,) = path_figures(load_records(EVASION_RESULTS)[0]).values()
    twin = axis_with(figure, "bezier: input_hessian_eig")
    assert twin not in figure.axes[:2]
    assert twin.get_shared_x_axes().joined(twin, figure.axes[1])


def test_a_metric_goes_on_the_right_hand_axis_because_its_record_says_so():
    """Schema 2: the axis is what the metric declares, whatever its name."""
    metrics = ["clean_accuracy", "loss", "sharpness", "input_hessian_eig"]
    info = {
        "clean_accuracy": {**PERCENT, "name": "clean_accuracy", "plot_axis": "top"},
        "loss": {"name": "loss", "percent": False, "plot_axis": "bottom"},
        "sharpness": {"name": "sharpness", "percent": False, "plot_axis": "right"},
        "input_hessian_eig": {"name": "input_hessian_eig", "percent": False, "plot_axis": "bottom"},
    }
    values = {t: {m: 0.1 + t for m in metrics} for t in GRID}
    r = record("x", track="evasion-path", attack=None, metrics=metrics, info=info, values=values)
    r = from_json({**r, "schema": 2, "metric_info": info})
    figure = next(iter(path_figures([r]).values()))
    top, bottom = figure.axes[0], figure.axes[1]
    twin = axis_with(figure, "bezier: sharpness")
    assert twin not in (top, bottom) and twin.get_ylabel() == "sharpness"
    assert axis_with(figure, "bezier: input_hessian_eig") is bottom


def test_connections_are_styled_in_the_order_their_cells_ran():
    def ran(connection, date):
        r = record(
            connection,
            connection=connection,
            metrics=BACKDOOR_METRICS,
            info=BACKDOOR_INFO,
            values={t: backdoor_scores(connection, 500, 0, t) for t in GRID},
        )
        return {**r, "provenance": {"date": date}}

    for first, second in (("linear", "bezier"), ("bezier", "linear")):
        records = [ran(second, "2026-01-01T10:00:00"), ran(first, "2026-01-01T09:00:00")]
        top = next(iter(path_figures(records).values())).axes[0]
        # the first style is a solid line with circles, the second dash-dot with squares
        assert line(top, f"{first}: clean_accuracy").get_marker() == "o"
        assert line(top, f"{second}: clean_accuracy").get_marker() == "s"


@given(st.lists(st.text(alphabet="abc(),=-", min_size=1, max_size=90), min_size=1, max_size=8))
def test_a_long_title_breaks_between_parts_within_the_width(parts):
    title = _title_lines(parts)
    lines = title.split("\n")
    assert " · ".join(lines) == " · ".join(parts)  # every part, in order, none cut
    for line in lines:
        assert len(line) <= TITLE_WIDTH or line in parts  # only a lone part may be longer
    # a line breaks only where the next part would overflow it
    for first, second in zip(lines, lines[1:]):
        assert len(first) + 3 + len(second.split(" · ")[0]) > TITLE_WIDTH
