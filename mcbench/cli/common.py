"""What the commands share: error handling, plugin commands, the common options, and
loading a benchmark file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from mcbench.errors import ConfigError, PluginError

if TYPE_CHECKING:
    import torch

    from mcbench.bench.load import Benchmark
    from mcbench.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])


def default_cache_dir() -> Path:
    if os.environ.get("MCBENCH_CACHE"):
        return Path(os.environ["MCBENCH_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcbench"))


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


BLOCK_ENV = "MCBENCH_BLOCK_PLUGINS"


class Folder(click.Path):
    """A folder argument: a file given in its place is one error line (exit 2), not
    click's usage text. Whether the folder must exist is left to the command."""

    def __init__(self, expected: str = "a folder") -> None:
        super().__init__()
        self.expected = expected

    def convert(
        self,
        value: str | os.PathLike[str],
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> Any:
        path = super().convert(value, param, ctx)
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError(f"is a file; expected {self.expected}", file=os.fsdecode(path))
        return path


class Group(click.Group):
    """Turns user-input errors into one clear line and exit code 2, takes the global
    ``--block`` option, and adds the commands of plugins (hook mcbench_register_commands)
    only when a name is not a built-in, so built-in commands do not import every plugin;
    listing the commands (``--help``) imports only the plugins whose source may add some.

    Plugins are loaded at most once per invocation, held by the click context
    (``_plugins``), and every broken one is reported with one warning line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--block"],
                metavar="NAME",
                multiple=True,
                expose_value=False,
                is_eager=True,
                callback=_remember_blocked,
                help=f"do not load the plugin with this entry-point name (repeatable; "
                f"also ${BLOCK_ENV}, comma-separated); a broken plugin is skipped with a "
                f"warning anyway, this silences it",
            )
        )

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            command = _plugin_commands(ctx).get(name) or _plugins(ctx).commands.get(name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            extra = _plugin_commands(ctx)
        except PluginError as e:
            fail(str(e))
        return sorted(set(super().list_commands(ctx)) | set(extra))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError, FileNotFoundError) as e:
            fail(str(e))


def _remember_blocked(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    ctx.meta.setdefault("mcbench.block", []).extend(values)


def blocked_plugins(ctx: click.Context | None) -> tuple[str, ...]:
    """The entry-point names not to load: $MCBENCH_BLOCK_PLUGINS and every --block."""
    given = [os.environ.get(BLOCK_ENV, "")]
    if ctx is not None:
        given += ctx.meta.get("mcbench.block", [])
    return tuple(name.strip() for text in given for name in text.split(",") if name.strip())


class _Plugins:
    """The plugins of one invocation (given ``only``, of those entry-point names): the
    registry and the plugins' commands. Each broken plugin is warned about once, in
    ``warned`` (shared by the invocation)."""

    def __init__(
        self,
        blocked: tuple[str, ...],
        only: list[str] | None = None,
        warned: set[str] | None = None,
    ) -> None:
        from mcbench.registry import load_registry

        self.registry = load_registry(blocked=blocked, only=only)
        self.commands: dict[str, click.Command]
        self.commands, _ = self.registry.commands(click.Group)
        warned = set() if warned is None else warned
        for failure in self.registry.failures:
            if failure.name not in warned:
                warned.add(failure.name)
                click.echo(f"warning: {failure.warning()}", err=True)


def _plugins(ctx: click.Context | None) -> _Plugins:
    if ctx is None:
        return _Plugins(blocked_plugins(None))
    if "mcbench.plugins" not in ctx.meta:
        warned = ctx.meta.setdefault("mcbench.warned", set())
        ctx.meta["mcbench.plugins"] = _Plugins(blocked_plugins(ctx), warned=warned)
    plugins: _Plugins = ctx.meta["mcbench.plugins"]
    return plugins


def _plugin_commands(ctx: click.Context | None) -> dict[str, click.Command]:
    """The plugins' commands, loading only the plugins whose source may add some (none,
    and so no torch, unless a plugin does): listing the commands stays quick."""
    from mcbench.registry.command_plugins import command_plugin_names

    if ctx is not None and "mcbench.plugins" in ctx.meta:
        return _plugins(ctx).commands
    if ctx is not None and "mcbench.plugin_commands" in ctx.meta:
        known: dict[str, click.Command] = ctx.meta["mcbench.plugin_commands"]
        return known
    blocked = blocked_plugins(ctx)
    names = command_plugin_names(blocked)
    commands: dict[str, click.Command] = {}
    if names:
        warned: set[str] = set() if ctx is None else ctx.meta.setdefault("mcbench.warned", set())
        commands = _Plugins(blocked, only=names, warned=warned).commands
    if ctx is not None:
        ctx.meta["mcbench.plugin_commands"] = commands
    return commands


def registry() -> Registry:
    """The plugin registry of this invocation (loaded on first use)."""
    return _plugins(click.get_current_context(silent=True)).registry


def load(
    file: str | Path,
    profile: str | None,
    tracks: tuple[str, ...] | list[str],
    compute: dict[str, Any] | None = None,
    device: str = "auto",
) -> Benchmark:
    """The benchmark in FILE, its ``precision: auto`` resolved for DEVICE."""
    from mcbench.bench.load import load_benchmark

    return load_benchmark(
        file,
        registry(),
        profile=profile,
        tracks=tuple(tracks),
        compute=compute,
        device_type=device_type(device),
    )


def device_type(device: str) -> str:
    """The device type DEVICE (a --device value) computes on, cpu or cuda; exits 2 for a
    device this machine lacks."""
    from mcbench.run.device import resolve_device

    try:
        return resolve_device(device).type
    except (ValueError, RuntimeError) as e:
        fail(str(e))


def compute_options(command: F) -> F:
    """--precision and --compile: the compute settings of every track, over the file's."""
    command = click.option(
        "--compile/--no-compile",
        "compile_",
        default=None,
        help="train networks through torch.compile [default: the file's compute.compile, else off]",
    )(command)
    return click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16"]),
        default=None,
        help="forward passes in fp32 or bf16 autocast; auto: bf16 on CUDA, fp32 on the CPU "
        "[default: the file's compute.precision, else auto]",
    )(command)


def compute_overrides(precision: str | None, compile_: bool | None) -> dict[str, Any]:
    """The compute settings the command line gives, for ``load``."""
    out: dict[str, Any] = {}
    if precision is not None:
        out["precision"] = precision
    if compile_ is not None:
        out["compile"] = compile_
    return out


profile_option = click.option(
    "--profile", default=None, help="named settings from the file's 'profiles' (e.g. quick)"
)
track_option = click.option("--track", "tracks", multiple=True, help="run only this track")


def data_options(command: F) -> F:
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
                type=Folder("a cache folder"),
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


def start_computing(results: str | Path, device: str) -> torch.device:
    """The torch device to use, with logging to RESULTS/mcbench.log set up."""
    from mcbench.run.allocator import keep_freed_memory
    from mcbench.run.device import resolve_device
    from mcbench.run.progress import setup_logging

    keep_freed_memory()
    try:
        torch_device = resolve_device(device)
    except ValueError as e:
        fail(str(e))
    setup_logging(Path(results) / "mcbench.log")
    return torch_device
