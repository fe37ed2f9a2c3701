"""Loading installed plugins: a broken one is reported on one line and skipped, unless a
benchmark names it; plugins can be blocked by entry-point name (--block,
$MCBENCH_BLOCK_PLUGINS); each command invocation loads plugins afresh."""

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from mcbench.registry import load_registry
from tests import fake_dist
from tests.conftest import TINY

RAISES_ON_IMPORT = """\
raise RuntimeError("boom at import")
"""

HOOK_RAISES = """\
import mcbench


@mcbench.hookimpl
def mcbench_register_attacks(register):
    raise ValueError("boom in the hook")
"""

TYPO_HOOK = """\
import mcbench


@mcbench.hookimpl
def mcbench_register_atacks(register):
    pass
"""

COMMAND = """\
import click
import mcbench


@click.command()
def hello():
    \"\"\"Say hello.\"\"\"
    click.echo("hello from acme")


@mcbench.hookimpl
def mcbench_register_commands(cli):
    cli.add_command(hello)
"""


@pytest.fixture
def installed(tmp_path):
    """install(dist, version, {module: source}): a plugin distribution, removed at
    teardown."""
    removers = []

    def install(dist, version, modules):
        removers.append(fake_dist.install(tmp_path / dist, dist, version, modules))

    yield install
    for remove in reversed(removers):
        remove()


def warnings_of(result):
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_a_plugin_that_fails_to_import_is_skipped_and_named(installed):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    registry = load_registry()
    assert "badnets" in registry.names("attack")
    [failure] = registry.failures
    assert (failure.name, failure.distribution, failure.version) == (
        "acme_broken",
        "acme-broken",
        "1.0",
    )
    assert "RuntimeError: boom at import" in failure.error


def test_a_hook_that_raises_is_skipped_and_named(installed):
    installed("acme-hook", "2.1", {"acme_hook": HOOK_RAISES})
    registry = load_registry()
    assert "pgd" in registry.names("attack")
    [failure] = registry.failures
    assert (failure.name, failure.distribution) == ("acme_hook", "acme-hook")
    assert "mcbench_register_attacks" in failure.error and "boom in the hook" in failure.error


def test_a_plugin_implementing_an_unknown_hook_is_skipped_and_named(installed):
    installed("acme-typo", "0.1", {"acme_typo": TYPO_HOOK})
    [failure] = load_registry().failures
    assert failure.name == "acme_typo" and "mcbench_register_atacks" in failure.error


def test_plugins_command_warns_once_per_broken_plugin_and_lists_the_rest(installed):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    installed("acme-hook", "2.1", {"acme_hook": HOOK_RAISES})
    result = CliRunner().invoke(cli, ["plugins", "attack"])
    assert result.exit_code == 0, result.output
    assert "badnets  [attack]" in result.stdout
    assert warnings_of(result) == [
        "warning: plugin 'acme_broken' (acme-broken 1.0) failed to load: "
        "RuntimeError: boom at import; skipped (--block acme_broken to silence this)",
        "warning: plugin 'acme_hook' (acme-hook 2.1) failed to load: "
        "mcbench_register_attacks raised ValueError: boom in the hook; skipped "
        "(--block acme_hook to silence this)",
    ]


def test_a_benchmark_naming_a_broken_plugin_fails_saying_why(installed, write_yaml):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    path = write_yaml(
        TINY.replace("{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}", "acme_broken")
    )
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {path}:6: tracks.backdoor-repair.attacks[0]: ")
    assert (
        "attack 'acme_broken' is not available: plugin 'acme_broken' (acme-broken 1.0) failed to load"
        in error
    )
    assert "RuntimeError: boom at import" in error


def test_an_unknown_name_mentions_the_plugins_that_failed(installed, write_yaml):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    path = write_yaml(TINY.replace("name: badnets", "name: checkers"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "unknown attack 'checkers'" in result.stderr
    assert "plugins that failed to load: acme_broken" in result.stderr


def test_blocked_plugins_are_not_loaded(installed, monkeypatch):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    result = CliRunner().invoke(
        cli, ["--block", "acme_broken", "--block", "cw", "plugins", "attack"]
    )
    assert result.exit_code == 0, result.output
    assert warnings_of(result) == []
    assert "\ncw  [" not in "\n" + result.stdout and "\npgd  [" in "\n" + result.stdout
    monkeypatch.setenv("MCBENCH_BLOCK_PLUGINS", "acme_broken, pgd")
    result = CliRunner().invoke(cli, ["plugins", "attack"])
    assert warnings_of(result) == []
    assert "\npgd  [" not in "\n" + result.stdout and "\ncw  [" in "\n" + result.stdout


def test_a_blocked_plugin_named_by_a_benchmark_says_it_is_blocked(write_yaml):
    path = write_yaml(TINY)
    result = CliRunner().invoke(cli, ["--block", "badnets", "validate", str(path)])
    assert result.exit_code == 2
    assert "attack 'badnets' is blocked (--block / $MCBENCH_BLOCK_PLUGINS)" in result.stderr


def test_the_block_option_is_documented():
    result = CliRunner().invoke(cli, ["--help"])
    assert "--block NAME" in result.output and "MCBENCH_BLOCK_PLUGINS" in result.output


def test_the_default_attack_of_a_metric_comes_through_the_registry(write_yaml):
    path = write_yaml(
        TINY.replace(
            "metrics: [clean_accuracy, attack_success_rate, loss]", "metrics: [robust_accuracy]"
        )
    )
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0
    result = CliRunner().invoke(cli, ["--block", "pgd", "validate", str(path)])
    assert result.exit_code == 2
    assert "metrics[0]" in result.stderr and "attack 'pgd' is blocked" in result.stderr


def test_plugin_commands_are_loaded_per_invocation(installed):
    installed("acme-command", "1.0", {"acme_command": COMMAND})
    assert CliRunner().invoke(cli, ["hello"]).stdout == "hello from acme\n"
    result = CliRunner().invoke(cli, ["--block", "acme_command", "hello"])
    assert result.exit_code == 2 and "No such command 'hello'" in result.output


def test_a_plugin_installed_after_an_earlier_invocation_is_found(installed):
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0  # loads plugin commands
    installed("acme-command", "1.0", {"acme_command": COMMAND})
    result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello from acme\n"


def test_help_lists_a_plugins_command(installed):
    installed("acme-command", "1.0", {"acme_command": COMMAND})
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "hello        Say hello." in result.stdout
    assert "validate" in result.stdout


def test_help_loads_only_the_plugins_that_may_add_commands(installed):
    installed("acme-broken", "1.0", {"acme_broken": RAISES_ON_IMPORT})
    installed("acme-broken-command", "1.0", {"acme_broken_command": COMMAND + RAISES_ON_IMPORT})
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    [warning] = warnings_of(result)
    assert "'acme_broken_command'" in warning and "boom at import" in warning


def test_the_command_scan_reads_a_plugins_source(installed):
    installed(
        "acme-scan",
        "1.0",
        {"acme_plain": TYPO_HOOK, "acme_command": COMMAND, "acme_star": "from os import *\n"},
    )
    from mcbench.registry.command_plugins import command_plugin_names

    names = command_plugin_names()
    assert "acme_command" in names and "acme_star" in names
    assert "acme_plain" not in names and "pgd" not in names
    assert "acme_command" not in command_plugin_names(blocked=["acme_command"])
