"""`mcbench leaderboard compare`: ranks worked out by hand on hand-made record sets, and
every kind of protocol mismatch refused with the field that differs."""

import json

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from mcbench.results.compare import compare, ranking_tables

INFO = {
    "clean_accuracy": {"percent": True, "higher_is_better": True},
    "attack_success_rate": {"percent": True, "higher_is_better": False},
}


def spec(name, **params):
    return {"name": name, "params": params, "version": "mcbench==0.1.0"}


def record(
    cell_id,
    repair,
    acc,
    asr,
    *,
    connection=None,
    budget=500,
    seed=0,
    poison_rate=0.1,
    report_t=0.5,
    metrics=None,
    sha="c11cbfca6865ac7590a5",
):
    t = 0.5 if connection else None
    return {
        "schema": 2,
        "cell_id": cell_id,
        "status": "ok",
        "label": f"{repair} {connection} n={budget}",
        "config": {
            "track": "backdoor-repair",
            "dataset": spec("cifar10", train_subset=20000),
            "architecture": spec("convnet", widths=[32, 64]),
            "attack": spec("badnets", target=0, poison_rate=poison_rate),
            "repair": repair if isinstance(repair, dict) else spec(repair),
            "connection": spec(connection) if connection else None,
            "budget": budget,
            "seed": seed,
            "metrics": metrics or [spec("clean_accuracy"), spec("attack_success_rate")],
            "train": {"epochs": 10, "lr": 0.05},
            "split": {"defender_pool": 5000, "eval_size": 2500, "seed": 0},
            "evaluate": {
                "grid": 11,
                "report_t": report_t,
                "batch_size": 500,
                "recalibrate_bn": True,
            },
            "adversarial": {"endpoints": [], "attack": None},
        },
        "metric_info": INFO,
        "reported_t": t,
        "path": [{"t": t, "clean_accuracy": acc, "attack_success_rate": asr}],
        "data_source": f"cifar10-jpeg.tar.gz (sha256 {sha}...)",
    }


PUBLISHED = [
    record("p1", "path", 0.80, 0.05, connection="bezier"),
    record("p2", "path", 0.40, 0.90, connection="linear"),
    record("p3", "finetune", 0.85, 0.60),
    record("p4", "finetune", 0.86, 0.70, budget=2500),
]


def write(folder, records):
    (folder / "records").mkdir(parents=True)
    for r in records:
        (folder / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
    return str(folder)


def test_ranks_against_a_hand_count():
    mine = [record("m0", "mine", 0.81, 0.02, seed=0), record("m1", "mine", 0.83, 0.04, seed=1)]
    result = compare(mine, PUBLISHED)
    assert not result.mismatches and result.metrics == ["clean_accuracy", "attack_success_rate"]
    table = result.table.set_index("repair")
    # the budget-2500 row is another protocol group and is left out
    assert sorted(table.index) == ["finetune", "mine", "path", "path"]
    assert table.loc["mine", "seeds"] == 2
    assert table.loc["mine", "clean_accuracy"] == pytest.approx(0.82)
    # clean accuracy: finetune .85 > mine .82 > bezier .80 > linear .40
    # attack success (lower is better): mine .03 < bezier .05 < finetune .60 < linear .90
    assert table.loc["mine", "rank:clean_accuracy"] == 2
    assert table.loc["mine", "rank:attack_success_rate"] == 1
    assert table.loc["finetune", "rank:attack_success_rate"] == 3
    path = result.table[result.table.repair == "path"].set_index("connection")
    assert path.loc["bezier", "rank:clean_accuracy"] == 3
    assert path.loc["linear", "rank:attack_success_rate"] == 4

    [(heading, shown)] = ranking_tables(result, "attack_success_rate", INFO)
    assert "budget 500" in heading
    assert list(shown["repair"]) == ["mine", "path", "finetune", "path"]
    assert list(shown["rank"]) == [1, 2, 3, 4]
    assert shown["clean_accuracy %"].iloc[0] == "82.0 (2)"


def test_plugin_versions_are_provenance_not_protocol():
    mine = record("m0", "mine", 0.81, 0.02)
    for field in ("dataset", "architecture", "attack"):
        mine["config"][field]["version"] = "mcbench==0.2.0"
    result = compare([mine], PUBLISHED)
    assert not result.mismatches and len(result.table) == 4


def test_ties_share_the_better_rank():
    result = compare([record("m0", "mine", 0.80, 0.5)], PUBLISHED)
    table = result.table.set_index("repair")
    # finetune .85 first, then mine and bezier tied at .80, then linear .40
    assert table.loc["mine", "rank:clean_accuracy"] == 2
    assert result.table[result.table.connection == "bezier"]["rank:clean_accuracy"].item() == 2
    assert result.table[result.table.connection == "linear"]["rank:clean_accuracy"].item() == 4


def test_the_same_repair_with_other_settings_gets_its_own_label():
    mine = [record("m0", spec("path", epochs=80), 0.9, 0.01, connection="bezier")]
    result = compare(
        mine,
        [{**PUBLISHED[0], "config": {**PUBLISHED[0]["config"], "repair": spec("path", epochs=40)}}],
    )
    assert set(result.table.repair) == {"path(epochs=80)", "path(epochs=40)"}
    assert set(result.table.source) == {"yours", "published"}


@pytest.mark.parametrize(
    "changed, expected",
    [
        (dict(poison_rate=0.05), "attack.params.poison_rate: yours 0.05, published 0.1"),
        (dict(budget=100), "budget: yours 100, published 500, 2500"),
        (dict(report_t=0.3), "evaluate.report_t: yours 0.3, published 0.5"),
    ],
)
def test_protocol_mismatch_is_refused(tmp_path, changed, expected):
    mine = write(tmp_path / "mine", [record("m0", "mine", 0.9, 0.01, **changed)])
    published = write(tmp_path / "pub", PUBLISHED)
    result = CliRunner().invoke(cli, ["leaderboard", "compare", mine, published])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "(1)" not in result.output  # nothing ranked


def test_metric_defined_differently_is_refused():
    robust = lambda eps: [spec("clean_accuracy"), spec("robust_accuracy", eps=eps)]
    published = [record("p", "path", 0.8, 0.1, connection="bezier", metrics=robust(0.03))]
    result = compare([record("m", "mine", 0.8, 0.1, metrics=robust(0.5))], published)
    assert result.table.empty
    [mismatch] = result.mismatches
    assert "metric robust_accuracy: params.eps: yours 0.5, published 0.03" in str(mismatch)


def test_skip_mismatched_ranks_the_rest_and_lists_the_others(tmp_path):
    mine = write(
        tmp_path / "mine",
        [record("good", "mine", 0.9, 0.01), record("bad", "mine", 0.9, 0.01, budget=100)],
    )
    published = write(tmp_path / "pub", PUBLISHED)
    refused = CliRunner().invoke(cli, ["leaderboard", "compare", mine, published])
    assert refused.exit_code == 2 and "--skip-mismatched" in refused.output
    result = CliRunner().invoke(
        cli,
        ["leaderboard", "compare", mine, published, "--skip-mismatched", "--by", "clean_accuracy"],
    )
    assert result.exit_code == 0, result.output
    first_row = [line for line in result.output.splitlines() if line.startswith("|")][2]
    assert "| yours" in first_row and "90.0 (1)" in first_row
    assert "not compared (1 rows" in result.output and "[bad]" in result.output


def test_another_data_copy_is_noted():
    result = compare([record("m", "mine", 0.8, 0.1, sha="0123456789abcdef")], PUBLISHED)
    assert not result.table.empty
    assert any("0123456789ab" in note for note in result.notes)


def test_unknown_ranking_metric(tmp_path):
    mine = write(tmp_path / "mine", [record("m", "mine", 0.8, 0.1)])
    result = CliRunner().invoke(
        cli, ["leaderboard", "compare", mine, write(tmp_path / "pub", PUBLISHED), "--by", "loss"]
    )
    assert result.exit_code == 2 and "cannot rank by 'loss'" in result.output


def test_leaderboard_without_subcommand_still_shows_tables(tmp_path):
    folder = write(tmp_path / "pub", PUBLISHED)
    shown = CliRunner().invoke(cli, ["leaderboard", folder, "--table", "summary"])
    explicit = CliRunner().invoke(cli, ["leaderboard", "show", folder, "--table", "summary"])
    assert shown.exit_code == 0 and shown.output == explicit.output
    assert "finetune" in shown.output


def test_a_broken_record_file_is_named(tmp_path):
    mine = write(tmp_path / "mine", [record("m", "mine", 0.8, 0.1)])
    (tmp_path / "mine" / "records" / "broken.json").write_text('{"cell_id": ')
    result = CliRunner().invoke(
        cli, ["leaderboard", "compare", mine, write(tmp_path / "pub", PUBLISHED)]
    )
    assert result.exit_code == 2
    assert "broken.json" in result.output and "not a valid record" in result.output
    (tmp_path / "mine" / "records" / "broken.json").write_text('{"cell_id": "x"}')
    result = CliRunner().invoke(cli, ["leaderboard", mine])
    assert result.exit_code == 2 and "not a result record" in result.output


def test_a_published_record_without_a_parameter_added_since_still_compares():
    published = record("p", spec("path", epochs=40), 0.80, 0.05, connection="bezier")
    mine = record("m", spec("path", epochs=40, warmup=5), 0.82, 0.04, connection="bezier")
    result = compare([mine], [published])
    table = result.table.set_index("repair")
    assert sorted(table.index) == ["path(warmup=-)", "path(warmup=5)"]
    assert table.loc["path(warmup=5)", "source"] == "yours"
    assert table.loc["path(warmup=5)", "rank:clean_accuracy"] == 1
    assert table.loc["path(warmup=-)", "rank:attack_success_rate"] == 2


def test_a_record_without_its_reported_t_on_its_path_has_no_row():
    off_path = record("p5", "path", 0.99, 0.01, connection="polychain")
    off_path["path"][0]["t"] = 0.25  # the reported t is 0.5
    result = compare([record("m0", "mine", 0.81, 0.02)], [*PUBLISHED, off_path])
    table = result.table
    assert sorted(zip(table.repair, table.connection, table.source)) == [
        ("finetune", "-", "published"),
        ("mine", "-", "yours"),
        ("path", "bezier", "published"),
        ("path", "linear", "published"),
    ]


def with_compute(rec, **compute):
    return {**rec, "config": {**rec["config"], "compute": compute}}


def test_precision_is_protocol_and_a_record_without_it_computed_in_fp32(tmp_path):
    mine = record("m0", "mine", 0.9, 0.01)
    explicit = compare([with_compute(mine, precision="fp32", compile=True)], PUBLISHED)
    assert not explicit.mismatches and len(explicit.table) == 4
    published = write(tmp_path / "pub", PUBLISHED)
    bf16 = write(tmp_path / "mine", [with_compute(mine, precision="bf16", compile=False)])
    result = CliRunner().invoke(cli, ["leaderboard", "compare", bf16, published])
    assert result.exit_code == 2, result.output
    assert 'precision: yours "bf16", published "fp32"' in result.output
