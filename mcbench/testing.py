"""Contract checks a plugin author runs on their own plugin, e.g. in their test suite::

    from mcbench.testing import check_plugin
    def test_contract():
        check_plugin(MyAttack)              # or check_plugin(MyRepair, epochs=1)

``check_plugin`` checks the declaration and then the behaviour of the kind on small
synthetic inputs: ``check_poison_attack``, ``check_tamper_attack``, ``check_evasion_attack``,
``check_connection``, ``check_architecture``, ``check_repair``, ``check_metric`` or
``check_dataset``, each of which can also be called on its own. ``check_registered`` checks
that the installed entry point registers a class. Each check raises AssertionError naming
what is wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar, cast

import torch
from torch import nn
from torch.func import functional_call

from mcbench.kinds import (
    ArchitecturePlugin,
    ConnectionPlugin,
    Dataset,
    DatasetPlugin,
    EvasionAttack,
    Injection,
    MetricContext,
    MetricPlugin,
    Plugin,
    PoisonAttack,
    RepairContext,
    RepairPlugin,
    TamperAttack,
    TamperContext,
)
from mcbench.kinds.data import ImageSet, to_float
from mcbench.registry.params import ParamTypeError, Resolve, coerce, describe, to_plain
from mcbench.toolkit.evaluation import predict

if TYPE_CHECKING:
    from mcbench.registry import Entry, Registry

_P = ParamSpec("_P")
_R = TypeVar("_R")


def check_plugin(cls: type, /, *, data_root: Path | None = None, **params: Any) -> None:
    """Check the declaration of ``cls``, then the behaviour of ``cls(**params)`` with the
    check of its kind. ``data_root`` is passed to a dataset's ``load`` (a folder holding a
    small copy of the data in the format the plugin reads; None: its default place)."""
    check_declaration(cls)
    instance = cls(**params)
    for checker_kind, checker in BEHAVIOUR.items():
        if isinstance(instance, checker_kind):
            if checker is check_dataset:
                checker(instance, data_root)
            else:
                checker(instance)


def check_registered(cls: type[Plugin]) -> Entry:
    """The registry entry of ``cls``: the installed entry points must register it under its
    kind and name."""
    from mcbench.registry import load_registry

    entry = load_registry().get(cls.kind, cls.name)
    assert entry.cls is cls, (
        f"the {cls.kind} '{cls.name}' is registered as {entry.cls!r} by {entry.provider}, "
        f"not {cls!r}"
    )
    return entry


def check_declaration(cls: type) -> None:
    assert isinstance(cls, type) and issubclass(cls, Plugin), (
        f"{cls!r} must subclass a base in mcbench.kinds"
    )
    assert dataclasses.is_dataclass(cls), f"{cls.__name__} must be a @dataclass(frozen=True)"
    assert cls.__dataclass_params__.frozen, f"{cls.__name__} must be frozen"
    assert isinstance(getattr(cls, "name", None), str) and cls.name, (
        f"{cls.__name__} needs a ClassVar 'name'"
    )
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring"
    hints = typing.get_type_hints(cls)
    resolve = _installed_resolver()
    for p in describe(cls):
        assert p.help, f"{cls.__name__}.{p.name}: document it with field(metadata={{'help': ...}})"
        assert p.default is not dataclasses.MISSING, f"{cls.__name__}.{p.name} needs a default"
        try:
            coerce(to_plain_value(p.default), hints[p.name], resolve)
        except ParamTypeError as e:
            raise AssertionError(
                f"{cls.__name__}.{p.name}: default does not match its annotation ({e})"
            ) from None
    plain = to_plain(cls())
    assert cls(**{k: coerce(v, hints[k], resolve) for k, v in plain.items()}) == cls(), (
        f"{cls.__name__}: parameters do not round-trip through their plain form"
    )


def _installed_resolver() -> Resolve:
    """Resolves plugin names among the installed plugins (the ``mcbench`` entry points),
    loading them on the first name to resolve."""

    @functools.cache
    def registry() -> Registry:
        from mcbench.registry import load_registry

        return load_registry()

    return lambda base, name: registry().resolve(base, name)


def to_plain_value(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _own_rng(check: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``check`` on a copy of the global RNG: the caller's random state is left as it was."""

    @functools.wraps(check)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return checked


def _images(
    n: int = 12, channels: int = 3, size: int = 16, classes: int = 4, seed: int = 0
) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.arange(n, dtype=torch.int64) % classes
    return ImageSet(images, labels)


def _small_cnn(channels: int = 3, classes: int = 4) -> nn.Sequential:
    """Conv-BatchNorm-ReLU, a pool and a linear head: small, with parameters and buffers."""
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, classes),
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- attacks ------------------------------------------------------------------------------


def check_poison_attack(attack: PoisonAttack) -> None:
    data = _images(n=40)
    attack.check_dataset(4, 3, 16)
    before = data.images.clone()
    stamped = attack.apply_trigger(data.images)
    assert torch.equal(data.images, before), "apply_trigger must not modify its input"
    assert stamped.dtype == torch.uint8 and stamped.shape == data.images.shape, (
        "apply_trigger must return uint8 images of the same shape"
    )
    assert not torch.equal(stamped, data.images), "apply_trigger left every image unchanged"
    poisoned = attack.poison(data, 4, torch.Generator().manual_seed(0))
    idx = poisoned.poisoned_index
    wanted = attack.attacker_labels(data.labels, 4)
    assert torch.equal(poisoned.data.labels[idx], wanted[idx]), "poisoned images must be relabelled"
    untouched = torch.ones(len(data), dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(poisoned.data.images[untouched], data.images[untouched]), (
        "images that were not chosen must stay unchanged"
    )
    triggered = attack.triggered(data, 4)
    changed = wanted != data.labels
    assert torch.equal(triggered.labels, wanted[changed]), (
        "triggered() must keep exactly the images whose label the attack changes, "
        "labelled with the attacker's label"
    )


@_own_rng
def check_tamper_attack(attack: TamperAttack) -> None:
    """On a small random network: the injection's labels are wrong ones and its index points
    at its images; the attack changes the model in place, returns a JSON-able report, and
    gives the same weights and the same report when run twice with one seed (values under
    keys containing "seconds" are wall-clock timings and are not compared)."""
    data = _images(n=64, size=8)
    attack.check_dataset(4, 3, 8)

    def network() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(24, 4),
        )

    attack.check_model(network())
    results = []
    for _ in range(2):
        injection = attack.choose_injection(data, 4, torch.Generator().manual_seed(0))
        if injection is not None:
            assert len(injection.labels) == attack.num_targets, (
                f"expected {attack.num_targets} targets, got {len(injection.labels)}"
            )
            assert torch.equal(injection.images.images, data.images[injection.index]), (
                "injection.index must point at the injection's images in the pool"
            )
            assert bool((injection.labels != injection.images.labels).all()), (
                "an injected label must differ from the image's true label"
            )
        model = network()
        before = _state(model)
        ctx = TamperContext(
            model=model,
            network=model,
            attacker=data,
            injection=injection,
            num_classes=4,
            device=torch.device("cpu"),
            seed=3,
            batch_size=16,
        )
        report = attack.tamper(ctx)
        try:
            json.dumps(report)
        except (TypeError, ValueError) as e:
            raise AssertionError(f"tamper() must return a JSON-able report: {e}") from None
        text = json.dumps(_without_timings(report), sort_keys=True)
        results.append((text, _state(model)))
        assert not _same_state(before, _state(model)), (
            "tamper() must change the model's weights in place"
        )
    (first, a), (second, b) = results
    assert _same_state(a, b), "tamper() must be deterministic given the seed (weights differ)"
    assert first == second, (
        f"tamper() must be deterministic given the seed: the reports differ\n{first}\n{second}"
    )


def _without_timings(report: object) -> object:
    if isinstance(report, dict):
        return {k: _without_timings(v) for k, v in report.items() if "seconds" not in str(k)}
    if isinstance(report, (list, tuple)):
        return [_without_timings(v) for v in report]
    return report


NORMS = {"linf": math.inf, "l2": 2, "l1": 1}
"""The ``norm`` values ``check_evasion_attack`` knows, with the order of the norm."""


def _norms(delta: torch.Tensor, order: float) -> torch.Tensor:
    return torch.linalg.vector_norm(delta.flatten(1).double(), ord=order, dim=1)


@_own_rng
def check_evasion_attack(
    attack: EvasionAttack, *, norm: str | None = None, eps: float | None = None
) -> None:
    """On a small network in eval mode, for both goals (with targets when the attack has
    ``targeted`` set): every returned point is finite, in [0, 1] and inside the threat
    model; the model's parameters, buffers, ``.grad`` (a pre-existing one included) and
    mode are left as they were; the output depends on the ``generator`` only (the same seed
    gives the same points whatever the global RNG).

    The threat model is ``norm`` ("linf", "l2" or "l1") and radius ``eps``, by default the
    attack's own fields of those names. A radius with no known norm is checked as an L-inf
    bound, which holds inside every Lp ball of that radius; with no radius (a minimum-norm
    attack such as Carlini-Wagner without ``eps``) only [0, 1] is checked."""
    norm = norm if norm is not None else getattr(attack, "norm", None)
    eps = eps if eps is not None else getattr(attack, "eps", None)
    if norm is not None:
        assert norm in NORMS, f"unknown norm {norm!r}; pass norm= as one of {', '.join(NORMS)}"
    order = NORMS[norm] if norm is not None else math.inf

    torch.manual_seed(0)
    model = _small_cnn()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        cast(torch.Tensor, model[1].running_mean).uniform_(-0.2, 0.2)
        cast(torch.Tensor, model[1].running_var).uniform_(0.5, 1.5)
    model.eval()
    for i, p in enumerate(model.parameters()):
        p.grad = torch.full_like(p, 0.5 + i)
    before = _state(model)
    grads = [cast(torch.Tensor, p.grad).clone() for p in model.parameters()]  # set above

    images = to_float(_images(n=8, size=8).images)
    images[0, :, :2] = 0.0  # pixels at the edges of [0, 1]
    images[1, :, :2] = 1.0
    labels = torch.arange(len(images)) % 4
    targets = (labels + 1) % 4 if getattr(attack, "targeted", False) else None
    clean = images.clone()

    for goal in ("misclassify", "loss"):
        outputs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            out = attack.perturb(
                model,
                images,
                labels,
                goal=goal,
                targets=targets,
                generator=torch.Generator().manual_seed(0),
            )
            assert torch.equal(images, clean), "perturb() must not modify the images it is given"
            assert isinstance(out, torch.Tensor) and out.shape == images.shape, (
                f"perturb() must return [N, C, H, W] like its input, "
                f"got {getattr(out, 'shape', out)}"
            )
            assert out.dtype == images.dtype and out.device == images.device, (
                "perturb() must return the input's dtype and device"
            )
            assert bool(torch.isfinite(out).all()), f"goal={goal}: non-finite points"
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, (
                f"goal={goal}: points outside [0, 1] (min {float(out.min())}, "
                f"max {float(out.max())})"
            )
            if eps is not None:
                distance = float(_norms(out - images, order).max())
                assert distance <= eps * (1 + 1e-5) + 1e-6, (
                    f"goal={goal}: a point lies {distance:.6g} from its image in the "
                    f"{norm or 'linf'} norm, beyond eps={eps}"
                )
            outputs.append(out)
            assert not model.training, "perturb() must leave the model in eval mode"
            assert _same_state(before, _state(model)), (
                "perturb() must leave the model's parameters and buffers untouched"
            )
            for p, grad in zip(model.parameters(), grads):
                assert p.grad is not None and torch.equal(p.grad, grad), (
                    "perturb() must leave the parameters' .grad untouched"
                )
                assert p.requires_grad, "perturb() must leave requires_grad as it was"
        assert torch.equal(*outputs), (
            f"goal={goal}: the same generator seed gave different points (the attack "
            f"must draw its randomness from `generator` only)"
        )


# -- connections, architectures -------------------------------------------------------------


def check_connection(connection: ConnectionPlugin) -> None:
    k = connection.num_bends
    assert k >= 2, "a connection needs at least the two endpoints"
    for t, hot in ((0.0, 0), (1.0, k - 1)):
        c = connection.coefficients(torch.tensor(t))
        expected = torch.zeros(k)
        expected[hot] = 1
        assert c.shape == (k,) and torch.equal(c.float(), expected), (
            f"coefficients({t}) must be one-hot on bend {hot}, got {c.tolist()}"
        )
    for t in torch.linspace(0, 1, 17):
        total = float(connection.coefficients(t).sum())
        assert abs(total - 1) < 1e-5, f"coefficients({float(t):.3f}) sum to {total}, not 1"


@_own_rng
def check_architecture(
    arch: ArchitecturePlugin, *, num_classes: int = 10, in_channels: int = 3, image_size: int = 32
) -> None:
    """Logits of the right shape, and the network works under ``torch.func.functional_call``
    as the connection engine calls it: given its own parameters and buffers (as plain
    tensors) it gives its own output, and given other weights it gives the output of a
    copy holding those weights."""
    torch.manual_seed(0)
    model = arch.build(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    assert isinstance(model, nn.Module), f"build() must return an nn.Module, got {model!r}"
    model.eval()
    x = torch.randn(
        2, in_channels, image_size, image_size, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, num_classes), (
            f"expected logits [2, {num_classes}], got {tuple(out.shape)}"
        )
        assert bool(torch.isfinite(out).all()), "build()'s network gives non-finite logits"
        own = {
            k: v.detach().clone() for k, v in (*model.named_parameters(), *model.named_buffers())
        }
        functional = functional_call(model, own, (x,))
        torch.testing.assert_close(
            functional,
            out,
            msg=lambda m: f"functional_call with the network's own weights differs: {m}",
        )
        generator = torch.Generator().manual_seed(2)
        moved = {
            k: p.detach() * (1 + 0.1 * torch.randn(p.shape, generator=generator))
            for k, p in model.named_parameters()
        }
        loaded = copy.deepcopy(model)
        loaded.load_state_dict(moved, strict=False)
        torch.testing.assert_close(
            functional_call(model, moved, (x,), strict=False),
            loaded(x),
            msg=lambda m: (
                "functional_call with other weights differs from a copy holding them "
                f"(the forward must read its weights from its parameters): {m}"
            ),
        )


# -- repairs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _QuadraticBezier(ConnectionPlugin):
    """A three-bend Bezier curve: the connection repairs are checked with."""

    name: ClassVar[str] = "quadratic-bezier"

    @property
    def num_bends(self) -> int:
        return 3

    def coefficients(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        return torch.stack([(1 - t) ** 2, 2 * t * (1 - t), t**2])


def _round_trip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as the results store gives it back (safetensors bytes)."""
    from safetensors.torch import load, save

    return load(save({k: v.detach().cpu().contiguous() for k, v in state.items()}))


def _check_positions(points: tuple[Any, ...], corners: tuple[Any, ...], count: int) -> None:
    """Positions on what a repair of ``count`` endpoints yields: equal-length tuples of
    finite floats in [0, 1], no two alike, the corners among them."""
    assert len(corners) == count, (
        f"corner_positions() must name {count} positions, one per endpoint, got {corners}"
    )
    assert points and all(isinstance(p, tuple) and len(p) == len(points[0]) for p in points), (
        f"path() points must be tuples of one length, got {points[:4]}"
    )
    for p in points:
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in p), (
            f"a position must hold floats in [0, 1], got {p}"
        )
    assert len(set(points)) == len(points), "path() lists a position twice"
    missing = [c for c in corners if tuple(c) not in points]
    assert not missing, f"path() points must include the corners, missing {missing}"


@_own_rng
def check_repair(repair: RepairPlugin) -> None:
    """A fit/path round trip on a small network and 32 bonafide images: ``fit`` returns a
    dict of tensors and leaves the endpoints (``repair.endpoint_count`` of them) untouched;
    ``path`` rebuilt from those tensors (after the store's safetensors round trip) has the
    points asked for (the grid, ``(None,)`` for a single-model repair, or for a repair of
    more than two endpoints its own positions, ``corner_positions()`` among them) and
    gives models with finite logits of the right shape; rebuilding twice from the same
    tensors gives the same outputs. Pass small ``epochs`` (e.g.
    ``check_plugin(MyRepair, epochs=1)``) to keep it fast."""
    count = repair.endpoint_count
    assert isinstance(count, int) and count >= 2, f"endpoint_count must be >= 2, got {count}"
    endpoints: list[nn.Module] = []
    for seed in range(1, count + 1):
        torch.manual_seed(seed)
        endpoints.append(_small_cnn().eval())
    endpoint_states = [_state(m) for m in endpoints]
    bonafide = _images(n=32, size=8, seed=1)
    ctx = RepairContext(
        endpoints=tuple(endpoints),
        build=_small_cnn,
        bonafide=bonafide,
        connection=_QuadraticBezier() if repair.uses_connection else None,
        num_classes=4,
        device=torch.device("cpu"),
        seed=0,
        augment=False,
    )
    state = repair.fit(ctx)
    assert isinstance(state, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ), f"fit() must return a dict of str -> tensor, got {type(state).__name__}"
    for model, before in zip(endpoints, endpoint_states):
        assert _same_state(before, _state(model)), "fit() must leave the endpoints untouched"
    state = _round_trip(state)
    grid = (0.0, 0.5, 1.0)
    x = to_float(bonafide.images[:8])
    outputs = []
    for _ in range(2):
        path = repair.path(ctx, {k: v.clone() for k, v in state.items()}, grid)
        points = tuple(path.points)
        if count == 2:
            assert points in (grid, (None,)), (
                f"path() must have the points asked for, {grid} (or (None,) for a "
                f"single-model repair), got {points}"
            )
        else:
            _check_positions(points, tuple(repair.corner_positions()), count)
        logits = []
        for point in points:
            model = path.model_at(point)
            assert isinstance(model, nn.Module), f"model_at({point}) must return an nn.Module"
            model.eval()
            with torch.no_grad():
                out = model(x)
            assert out.shape == (len(x), 4), (
                f"model_at({point}) gives logits {tuple(out.shape)}, expected {(len(x), 4)}"
            )
            assert bool(torch.isfinite(out).all()), f"model_at({point}) gives non-finite logits"
            logits.append(out)
        outputs.append(logits)
    for point, first, second in zip(points, *outputs):
        assert torch.equal(first, second), (
            f"two paths rebuilt from the same tensors differ at {point}: path() must "
            f"depend on fit()'s tensors only"
        )
    if count > 2:
        for corner, endpoint in zip(repair.corner_positions(), endpoints):
            model = path.model_at(corner).eval()
            with torch.no_grad():
                assert torch.equal(model(x), endpoint(x)), (
                    f"model_at({corner}) must be endpoint {endpoints.index(endpoint)}"
                )
    for model, before in zip(endpoints, endpoint_states):
        assert _same_state(before, _state(model)), "path() must leave the endpoints untouched"


# -- metrics, datasets --------------------------------------------------------------------


@_own_rng
def check_metric(metric: MetricPlugin) -> None:
    """On a small linear model with clean, triggered and injection data: ``compute``
    returns a finite float, in [0, 1] for a ``percent`` metric, and the metric declares
    ``higher_is_better`` (the leaderboard and ``compare`` rank by it)."""
    assert metric.higher_is_better in (True, False), (
        f"{type(metric).__name__} must declare higher_is_better: ClassVar[bool] "
        f"(True or False, got {metric.higher_is_better!r})"
    )
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))
    data = _images()
    injection = Injection(data, (data.labels + 1) % 4, torch.arange(len(data)))
    ctx = MetricContext(
        model=model,
        clean=data,
        triggered=data,
        num_classes=4,
        device=torch.device("cpu"),
        batch_size=5,
        predict=predict,
        injection=injection,
    )
    value = metric.compute(ctx)
    assert isinstance(value, float), f"compute() must return a float, got {type(value).__name__}"
    assert math.isfinite(value), f"compute() returned {value} on non-empty data"
    if metric.percent:
        assert 0.0 <= value <= 1.0, (
            f"a percent metric must return a fraction in [0, 1], got {value}"
        )


def check_dataset(dataset: DatasetPlugin, root: Path | None = None) -> None:
    """``load(root, cache_dir)`` twice (the second may read the first's cache): a Dataset
    with uint8 ``[N, C, H, W]`` square images, int64 labels in ``0..num_classes-1``, train
    and test splits that agree on channels and size, one mean and one positive std per
    channel, one class name per class, a ``source``, the shape ``shape()`` announces, and
    the same tensors both times."""
    with tempfile.TemporaryDirectory() as cache:
        data = dataset.load(root, Path(cache))
        again = dataset.load(root, Path(cache))
    assert isinstance(data, Dataset), f"load() must return a Dataset, got {type(data).__name__}"
    k = data.num_classes
    assert isinstance(k, int) and k >= 2, f"num_classes must be an int >= 2, got {k!r}"
    shapes = {}
    for split in ("train", "test"):
        part = getattr(data, split)
        images, labels = part.images, part.labels
        assert images.dtype == torch.uint8 and images.dim() == 4, (
            f"{split} images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
        )
        assert len(part) > 0, f"the {split} split is empty"
        assert labels.dtype == torch.int64 and labels.shape == images.shape[:1], (
            f"{split} labels must be int64 [N], got {labels.dtype} {tuple(labels.shape)}"
        )
        assert int(labels.min()) >= 0 and int(labels.max()) < k, (
            f"{split} labels span {int(labels.min())}..{int(labels.max())}, outside 0..{k - 1}"
        )
        assert images.shape[2] == images.shape[3], (
            f"{split} images must be square, got {tuple(images.shape[2:])}"
        )
        shapes[split] = tuple(images.shape[1:])
    assert shapes["train"] == shapes["test"], (
        f"train images are {shapes['train']}, test images {shapes['test']}"
    )
    channels = data.channels
    assert len(data.mean) == channels and len(data.std) == channels, (
        f"mean and std need one value per channel ({channels}), got {len(data.mean)} and "
        f"{len(data.std)}"
    )
    assert all(math.isfinite(s) and s > 0 for s in data.std), f"std must be > 0: {data.std}"
    assert all(math.isfinite(m) for m in data.mean), f"mean must be finite: {data.mean}"
    assert len(data.class_names) == k, f"{len(data.class_names)} class names for {k} classes"
    assert isinstance(data.source, str) and data.source, "source must say which copy was read"
    announced = dataset.shape()
    if announced is not None:
        assert tuple(announced) == (k, channels, data.image_size), (
            f"shape() announces {tuple(announced)}; the data is {(k, channels, data.image_size)}"
        )
    for split in ("train", "test"):
        a, b = getattr(data, split), getattr(again, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels), (
            f"two loads gave different {split} data"
        )


BEHAVIOUR: dict[type[Plugin], Callable[..., None]] = {
    DatasetPlugin: check_dataset,
    PoisonAttack: check_poison_attack,
    TamperAttack: check_tamper_attack,
    EvasionAttack: check_evasion_attack,
    ConnectionPlugin: check_connection,
    ArchitecturePlugin: check_architecture,
    RepairPlugin: check_repair,
    MetricPlugin: check_metric,
}
