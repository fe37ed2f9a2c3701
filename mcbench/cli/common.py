"""What the commands share: error handling, plugin commands, the common options, and
loading a benchmark file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mcbench.errors import ConfigError, PluginError


def default_cache_dir() -> Path:
    if os.environ.get("MCBENCH_CACHE"):
        return Path(os.environ["MCBENCH_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcbench"))


def fail(message: str, code: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns user-input errors into one clear line and exit code 2, and adds the commands
    of plugins (hook mcbench_register_commands) only when a name is not a built-in, so
    built-in commands do not import every plugin."""

    _plugins_loaded = False

    def _load_plugin_commands(self):
        if not self._plugins_loaded:
            Group._plugins_loaded = True
            from mcbench.registry.manager import make_plugin_manager

            try:
                make_plugin_manager().hook.mcbench_register_commands(cli=self)
            except PluginError as e:
                fail(str(e))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError, FileNotFoundError) as e:
            fail(str(e))


def registry():
    from mcbench.registry import load_registry

    return load_registry()


def load(file, profile, tracks):
    from mcbench.bench.load import load_benchmark

    return load_benchmark(file, registry(), profile=profile, tracks=tuple(tracks))


profile_option = click.option(
    "--profile", default=None, help="named settings from the file's 'profiles' (e.g. quick)"
)
track_option = click.option("--track", "tracks", multiple=True, help="run only this track")


def data_options(command):
    """--data-root, --cache-dir and --device, shared by the commands that compute."""
    for option in reversed(
        [
            click.option(
                "--data-root",
                default=None,
                envvar="MCBENCH_DATA",
                type=click.Path(),
                help="where datasets are read from [default: $MCBENCH_DATA or the cache dir]",
            ),
            click.option(
                "--cache-dir",
                default=None,
                type=click.Path(file_okay=False),
                help="decoded datasets [default: $MCBENCH_CACHE or the user cache dir]",
            ),
            click.option(
                "--device",
                default="auto",
                show_default=True,
                help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
            ),
        ]
    ):
        command = option(command)
    return command


def start_computing(results, device):
    """The torch device to use, with logging to RESULTS/mcbench.log set up."""
    from mcbench.run.allocator import keep_freed_memory
    from mcbench.run.progress import setup_logging
    from mcbench.run.runner import resolve_device

    keep_freed_memory()
    try:
        torch_device = resolve_device(device)
    except ValueError as e:
        fail(str(e))
    setup_logging(Path(results) / "mcbench.log")
    return torch_device
