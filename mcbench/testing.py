"""Contract checks a plugin author runs on their own plugin, e.g. in their test suite::

    from mcbench.testing import check_plugin
    def test_contract():
        check_plugin(MyAttack)

Each check raises AssertionError naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import typing

import torch
from torch import nn

from mcbench.kinds import (
    ArchitecturePlugin,
    ConnectionPlugin,
    Injection,
    MetricContext,
    MetricPlugin,
    Plugin,
    PoisonAttack,
    TamperAttack,
    TamperContext,
)
from mcbench.kinds.data import ImageSet
from mcbench.registry.params import ParamTypeError, coerce, describe, to_plain


def check_plugin(cls: type, **params) -> None:
    """Check the declaration of ``cls`` and, for the kinds that need no data files, its
    behaviour on small synthetic inputs, with ``params`` passed to it."""
    check_declaration(cls)
    instance = cls(**params)
    for checker_kind, checker in BEHAVIOUR.items():
        if isinstance(instance, checker_kind):
            checker(instance)


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
    for p in describe(cls):
        assert p.help, f"{cls.__name__}.{p.name}: document it with field(metadata={{'help': ...}})"
        assert p.default is not dataclasses.MISSING, f"{cls.__name__}.{p.name} needs a default"
        try:
            coerce(to_plain_value(p.default), hints[p.name])
        except ParamTypeError as e:
            raise AssertionError(
                f"{cls.__name__}.{p.name}: default does not match its annotation ({e})"
            ) from None
    plain = to_plain(cls())
    assert cls(**{k: coerce(v, hints[k]) for k, v in plain.items()}) == cls(), (
        f"{cls.__name__}: parameters do not round-trip through their plain form"
    )


def to_plain_value(value):
    return list(value) if isinstance(value, tuple) else value


def _images(n=12, channels=3, size=16, classes=4, seed=0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.arange(n, dtype=torch.int64) % classes
    return ImageSet(images, labels)


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


def check_tamper_attack(attack: TamperAttack) -> None:
    """On a small random network: the injection's labels are wrong ones and its index points
    at its images; the attack is deterministic given the seed, changes the model in place
    and returns a JSON-able report."""
    import json

    data = _images(n=64, size=8)
    attack.check_dataset(4, 3, 8)

    def network():
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
        before = {k: v.clone() for k, v in model.state_dict().items()}
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
        json.dumps(report)
        results.append((report, model.state_dict()))
        assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), (
            "tamper() must change the model's weights in place"
        )
    (first, a), (second, b) = results
    assert all(torch.equal(a[k], b[k]) for k in a), "tamper() must be deterministic given the seed"


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


def check_architecture(arch: ArchitecturePlugin) -> None:
    torch.manual_seed(0)
    model = arch.build(num_classes=10, in_channels=3, image_size=32)
    assert isinstance(model, nn.Module)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10), f"expected logits [2, 10], got {tuple(out.shape)}"


def check_metric(metric: MetricPlugin) -> None:
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
        injection=injection,
    )
    value = metric.compute(ctx)
    assert isinstance(value, float), f"compute() must return a float, got {type(value).__name__}"


BEHAVIOUR = {
    PoisonAttack: check_poison_attack,
    TamperAttack: check_tamper_attack,
    ConnectionPlugin: check_connection,
    ArchitecturePlugin: check_architecture,
    MetricPlugin: check_metric,
}
