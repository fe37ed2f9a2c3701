"""The dry build of a benchmark file's networks: every architecture built for every dataset
whose shape is known, on the meta device within bounds on torch calls, parameters and
layers, then run once on the CPU when small; and every weight attack checked against the
networks it will meet. A failure is an error at the key that causes it."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from mcbench.bench.cells import PluginSpec
from mcbench.bench.yamlfile import KeyPath
from mcbench.kinds import ArchitecturePlugin, TamperAttack

Locate = Callable[[str, KeyPath], Exception]
"""(message, key path in the track) -> the error to raise there, with file and line."""
Networks = dict[tuple[tuple[int, int, int], int], torch.nn.Module]
"""The (meta) networks built, by (dataset shape, index of the architecture)."""

MAX_PARAMETERS = 2 * 10**9
"""Parameters and buffers of one network (8 GB as float32, several times that to train):
beyond it a size in the file is a typo, found before anything is allocated."""
MAX_MODULES = 10_000
"""Layers of one network; a deep PreResNet-1001 has about 3,000."""
MAX_RUN_CHECKED = 5 * 10**7
"""Networks up to this many parameters and buffers (200 MB) are also built for real and run
once on two images; a larger one is checked on the meta device only."""
MAX_TORCH_CALLS = 100_000
"""Torch calls while one network is built on the meta device; building a PreResNet-1001
takes about 35,000."""


class _TooLarge(BaseException):
    """A network outgrew a bound while being built. Not an Exception, so that a plugin's
    ``except Exception`` cannot swallow it and carry on building."""


class _Budget(TorchFunctionMode):
    """Counts torch calls, parameters, buffers and layers while a network is built, and
    stops the build at the first bound it passes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = self.elements = self.modules = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.calls += 1
        if self.calls > MAX_TORCH_CALLS:
            raise _TooLarge(f"more than {MAX_TORCH_CALLS} torch calls to build and run once")
        return func(*args, **(kwargs or {}))

    def tensor(self, module: torch.nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        if tensor is not None:
            self.elements += tensor.numel()
            # counted as registered, so shared or replaced tensors count more than once
            if self.elements > 2 * MAX_PARAMETERS:
                raise _TooLarge(f"more than {MAX_PARAMETERS:.0e} parameters")

    def module(self, module: torch.nn.Module, name: str, submodule: torch.nn.Module) -> None:
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise _TooLarge(f"more than {MAX_MODULES} layers")


@contextlib.contextmanager
def _on_meta() -> Iterator[None]:
    """Build on the meta device (shapes, no memory), within the bounds of _Budget."""
    hooks = torch.nn.modules.module
    budget = _Budget()
    handles = [
        hooks.register_module_parameter_registration_hook(budget.tensor),
        hooks.register_module_buffer_registration_hook(budget.tensor),
        hooks.register_module_module_registration_hook(budget.module),
    ]
    try:
        with torch.device("meta"), budget:
            yield
    finally:
        for handle in handles:
            handle.remove()


def _meta_network(
    arch: ArchitecturePlugin, shape: tuple[int, int, int]
) -> torch.nn.Module | str | None:
    """ARCH built for SHAPE (classes, channels, image size) on the meta device, then, when
    small enough, built on the CPU and run on two images: the (meta) network, or the reason
    it cannot be; None for what the meta device cannot tell (an operation it lacks)."""
    num_classes, channels, size = shape
    try:
        with _on_meta():
            network = arch.build(num_classes, channels, size)
            if not isinstance(network, torch.nn.Module):
                return f"build() returned {type(network).__name__}, not a torch module"
            count = sum(t.numel() for t in itertools.chain(network.parameters(), network.buffers()))
            if count > MAX_PARAMETERS:
                return f"{count:.2g} parameters, more than the {MAX_PARAMETERS:.0e} allowed"
    except _TooLarge as e:
        return str(e)
    except Exception as e:  # whatever a plugin raises for sizes it cannot build
        if "meta" in str(e).lower():
            return None
        return f"{type(e).__name__}: {e}"
    if count <= MAX_RUN_CHECKED:
        problem = _run_once(arch, shape)
        if problem:
            return problem
    return network


def _run_once(arch: ArchitecturePlugin, shape: tuple[int, int, int]) -> str | None:
    """Why ARCH, built on the CPU for SHAPE, cannot run on two images; None when it runs.
    (Run on the CPU rather than the meta device, whose decompositions of BatchNorm and
    others import torch's compiler: seconds in every process that reads the file.)"""
    num_classes, channels, size = shape
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            network = arch.build(num_classes, channels, size).eval()
            network(torch.zeros(2, channels, size, size))
        except Exception as e:
            return f"{type(e).__name__}: {e}"
    return None


def check_networks(
    datasets: Sequence[PluginSpec], architectures: Sequence[PluginSpec], error: Locate
) -> Networks:
    """Build every architecture for every dataset whose shape is known, on the meta device:
    a size that cannot be built, that allocates terabytes or whose network does not run on
    the dataset's images is an error at the key that sets it, before anything is
    allocated. Returns the networks by (shape, architecture index)."""
    shapes: dict[tuple[int, int, int], int] = {}  # shape: index of the first dataset of that shape
    for j, d in enumerate(datasets):
        shape = d.instance.shape()
        if shape is not None:
            shapes.setdefault(tuple(shape), j)
    networks: Networks = {}
    for (shape, j), (i, arch) in itertools.product(
        sorted(shapes.items()), enumerate(architectures)
    ):
        network = _meta_network(arch.instance, shape)
        if network is None or isinstance(network, torch.nn.Module):
            if network is not None:
                networks[(shape, i)] = network
            continue
        classes, channels, size = shape
        plural = "s" if channels != 1 else ""
        images = f"{classes} classes of {size}x{size} images, {channels} channel{plural}"
        at = _network_culprit(arch.instance, shape)
        if at is None:  # the architecture's defaults fail too: the dataset's sizes
            dataset = datasets[j]
            key = _dataset_culprit(dataset.instance, arch.instance)
            raise error(
                f"{arch.name} cannot be built for {dataset.name} ({images}): {network}",
                ("datasets", j) + ((key,) if key else ()),
            )
        raise error(
            f"{arch.name} cannot be built for {images}: {network}",
            ("architectures", i) + ((at,) if at else ()),
        )
    return networks


def _dataset_culprit(dataset: Any, arch: ArchitecturePlugin) -> str | None:
    """The dataset parameter whose default gives a shape ARCH can be built for."""
    try:
        defaults = type(dataset)()
    except Exception:
        return None
    for f in dataclasses.fields(dataset):
        if not f.init or getattr(dataset, f.name) == getattr(defaults, f.name):
            continue
        try:
            shape = dataclasses.replace(dataset, **{f.name: getattr(defaults, f.name)}).shape()
        except Exception:
            continue
        if shape is not None and isinstance(_meta_network(arch, tuple(shape)), torch.nn.Module):
            return f.name
    return None


def _network_culprit(instance: Any, shape: tuple[int, int, int]) -> str | None:
    """The parameter whose default makes the network buildable: "" when no single one does
    but the defaults do, None when the defaults cannot be built either (or there are
    none)."""
    try:
        defaults = type(instance)()
    except Exception:
        return ""
    if not isinstance(_meta_network(defaults, shape), torch.nn.Module):
        return None
    for f in dataclasses.fields(instance):
        if not f.init or getattr(instance, f.name) == getattr(defaults, f.name):
            continue
        try:
            candidate = dataclasses.replace(instance, **{f.name: getattr(defaults, f.name)})
        except Exception:
            continue
        if isinstance(_meta_network(candidate, shape), torch.nn.Module):
            return f.name
    return ""


def _model_culprit(instance: Any, network: torch.nn.Module) -> str | None:
    """The parameter whose default would make the attack fit the network."""
    defaults = type(instance)()
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if value == getattr(defaults, f.name):
            continue
        try:
            dataclasses.replace(instance, **{f.name: getattr(defaults, f.name)}).check_model(
                network
            )
            return f.name
        except ValueError:
            continue
    return None


def check_attacks_fit(
    attacks: Sequence[PluginSpec],
    architectures: Sequence[PluginSpec],
    networks: Networks,
    error: Locate,
) -> None:
    """Weight attacks against every network they will meet (e.g. a layer name the
    architecture lacks), for the datasets whose shape is known without reading them."""
    tampering = [(i, a) for i, a in enumerate(attacks) if isinstance(a.instance, TamperAttack)]
    if not tampering:
        return
    for (_, j), network in networks.items():
        arch = architectures[j]
        for i, attack in tampering:
            try:
                attack.instance.check_model(network)
            except ValueError as e:
                key = _model_culprit(attack.instance, network)
                raise error(
                    f"{attack.name} on {arch.name}: {e}", ("attacks", i) + ((key,) if key else ())
                ) from None
