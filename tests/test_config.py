"""Validation of benchmarks.yaml: every error names file, line and key; nothing runs."""

import pytest
from click.testing import CliRunner

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.errors import ConfigError
from tests.conftest import TINY


def error_of(write_yaml, registry, text, **kw):
    path = write_yaml(text)
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry, **kw)
    return info.value, path


def test_tiny_file_expands_to_the_cartesian_product(tiny_yaml, registry):
    bench = load_benchmark(tiny_yaml, registry)
    assert [c.connection.name for c in bench.cells] == ["linear", "bezier"]
    assert {c.endpoint_key("A") for c in bench.cells} == {bench.cells[0].endpoint_key("A")}
    assert bench.cells[0].repair_key() != bench.cells[1].repair_key()
    assert bench.cells[0].cell_id != bench.cells[1].cell_id


def test_cell_ids_do_not_depend_on_key_order(write_yaml, registry):
    reordered = TINY.replace(
        "{name: path, epochs: 2, batch_size: 32}", "{batch_size: 32, epochs: 2, name: path}"
    )
    a = load_benchmark(write_yaml(TINY, "a.yaml"), registry)
    b = load_benchmark(write_yaml(reordered, "b.yaml"), registry)
    assert [c.cell_id for c in a.cells] == [c.cell_id for c in b.cells]


def test_the_shipped_benchmarks_file_is_valid(registry):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paper = load_benchmark(root / "benchmarks.yaml", registry)
    cpu = load_benchmark(root / "benchmarks.yaml", registry, profile="cpu")
    quick = load_benchmark(root / "benchmarks.yaml", registry, profile="quick")
    # per budget: the path with 3 connections plus 4 single-model baselines, 7 repairs;
    # paper: 2 architectures x attacks x 7 x 6 budgets x 3 seeds; cpu: 2 budgets, 1 seed
    # (cpu's backdoor-repair adds the surface through three endpoints: 8 repairs)
    for track, attacks, surface in [("backdoor-repair", 1, 1), ("injection-repair", 3, 0)]:
        assert sum(c.track == track for c in paper.cells) == 2 * attacks * 7 * 6 * 3
        assert sum(c.track == track for c in cpu.cells) == attacks * (7 + surface) * 2
        baselines = {
            c.repair.name
            for c in cpu.cells
            if c.track == track and c.connection is None and len(c.roles) == 2
        }
        assert baselines == {"finetune", "scratch", "noisy", "fineprune"}
    surfaces = [c for c in cpu.cells if c.repair.name == "surface"]
    assert {c.roles for c in surfaces} == {("A", "B", "C")}
    paths = [c for c in cpu.cells if c.track == "backdoor-repair" and c.connection]
    assert {c.endpoint_key("A") for c in surfaces} == {c.endpoint_key("A") for c in paths}
    # 2 architectures x 3 connections x 1 budget x 3 seeds; cpu: 3 connections
    assert sum(c.track == "evasion-path" for c in paper.cells) == 18
    assert sum(c.track == "evasion-path" for c in cpu.cells) == 3
    assert {c.architecture.name for c in cpu.cells} == {"convnet"}
    assert {c.budget for c in paper.cells} >= {2500}
    assert {c.split.eval_size for c in cpu.cells} == {2500}
    assert {c.split.defender_pool for c in cpu.cells} == {5000}
    # quick: every track once, path (linear, bezier) and fine-tuning at one budget
    assert {c.track for c in quick.cells} == {c.track for c in paper.cells}
    assert {c.budget for c in quick.cells if c.track != "evasion-path"} == {500}
    assert {c.connection.name for c in quick.cells if c.connection} == {"linear", "bezier"}
    assert {c.repair.name for c in quick.cells} == {"path", "finetune"}
    assert len(quick.cells) == 8
    # the tracks share the endpoints they train alike: 2 poisoned, 2 clean, 1 adversarial
    endpoints = {c.endpoint_key(r) for c in quick.cells for r in ("A", "B")}
    assert len(endpoints) == 5


def test_unknown_plugin_suggests_and_lists(write_yaml, registry):
    err, path = error_of(write_yaml, registry, TINY.replace("name: badnets", "name: bdnets"))
    text = str(err)
    assert text.startswith(f"{path}:6: ")
    assert "tracks.backdoor-repair.attacks[0].name" in text
    assert "unknown attack 'bdnets' - did you mean 'badnets'?" in text
    assert "available: " in text and "blended" in text


def test_unknown_parameter(write_yaml, registry):
    err, _ = error_of(write_yaml, registry, TINY.replace("patch_size: 3", "patch_sise: 3"))
    assert err.line == 6 and err.key.endswith("attacks[0].patch_sise")
    assert "did you mean 'patch_size'" in err.message


def test_mistyped_parameter(write_yaml, registry):
    err, _ = error_of(
        write_yaml,
        registry,
        TINY.replace("epochs: 2, batch_size: 32}]", "epochs: two, batch_size: 32}]"),
    )
    assert err.line == 7 and err.key.endswith("repairs[0].epochs")
    assert "expected an integer" in err.message


def test_value_out_of_range(write_yaml, registry):
    err, _ = error_of(write_yaml, registry, TINY.replace("poison_rate: 0.1", "poison_rate: 1.5"))
    assert (
        err.line == 6
        and err.key.endswith("attacks[0].poison_rate")
        and "poison_rate" in err.message
    )


def test_settings_section_errors(write_yaml, registry):
    err, _ = error_of(write_yaml, registry, TINY.replace("{grid: 3}", "{grid: 1}"))
    assert (
        err.line == 14 and err.key.endswith("evaluate.grid") and "grid must be >= 2" in err.message
    )
    err, _ = error_of(write_yaml, registry, TINY.replace("lr: 0.05}", "lrate: 0.05}"))
    assert err.line == 13 and err.key.endswith("train.lrate") and "did you mean 'lr'" in err.message


def test_bad_budgets_and_unknown_keys(write_yaml, registry):
    err, _ = error_of(write_yaml, registry, TINY.replace("budgets: [40]", "budgets: [40, 0]"))
    assert err.line == 9 and err.key.endswith("budgets[1]")
    err, _ = error_of(write_yaml, registry, TINY.replace("seeds: [0]", "seedz: [0]"))
    assert err.line == 10 and "did you mean 'seeds'" in err.message


def test_duplicate_key_and_syntax_error(write_yaml, registry):
    err, _ = error_of(
        write_yaml, registry, TINY.replace("    seeds: [0]\n", "    seeds: [0]\n    seeds: [1]\n")
    )
    assert err.line == 11 and "appears twice" in err.message
    err, _ = error_of(write_yaml, registry, TINY.replace("budgets: [40]", "budgets: [40"))
    assert err.line is not None and "not valid YAML" in err.message


def test_profiles_override_and_errors_point_into_the_profile(write_yaml, registry):
    text = (
        TINY
        + """\
profiles:
  small:
    tracks:
      backdoor-repair:
        budgets: [20, 30]
        train: {epochs: 1}
  broken:
    tracks:
      backdoor-repair:
        train: {epochs: 0}
"""
    )
    path = write_yaml(text)
    bench = load_benchmark(path, registry, profile="small")
    assert sorted({c.budget for c in bench.cells}) == [20, 30]
    assert {c.train.epochs for c in bench.cells} == {1}
    assert {c.train.lr for c in bench.cells} == {0.05}  # merged key by key
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry, profile="broken")
    assert (
        info.value.line == 24
        and info.value.key == "profiles.broken.tracks.backdoor-repair.train.epochs"
    )
    with pytest.raises(ConfigError, match="unknown profile 'smal' - did you mean 'small'"):
        load_benchmark(path, registry, profile="smal")


def test_cli_validate_exit_codes(write_yaml, tiny_yaml):
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(tiny_yaml)])
    assert ok.exit_code == 0 and "ok, 2 cells" in ok.output
    bad = write_yaml(TINY.replace("name: convnet", "name: convnot"), "bad.yaml")
    result = runner.invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert (
        f"{bad}:5: tracks.backdoor-repair.architectures[0].name: unknown architecture"
        in result.output
    )
    missing = runner.invoke(cli, ["run", str(bad.parent / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output


def test_run_refuses_invalid_file_before_computing(write_yaml, tmp_path):
    bad = write_yaml(TINY.replace("budgets: [40]", "budgets: [-1]"))
    result = CliRunner().invoke(cli, ["run", str(bad), "--results", str(tmp_path / "res")])
    assert result.exit_code == 2
    assert not (tmp_path / "res").exists()
