"""What an attack plugin implements: poisoning, weight tampering or evasion, and
what each receives. The poison selection and the choice of injection targets are shared
by every attack of their stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mcbench.kinds.base import Plugin
from mcbench.kinds.data import ImageSet


class AttackPlugin(Plugin):
    kind = "attack"
    stage: ClassVar[str]
    """When the attack acts: "poison" (on the training data, before the endpoints are
    trained), "tamper" (on the trained endpoints' weights) or "evasion" (on test inputs)."""

    def check_dataset(self, num_classes: int, channels: int, image_size: int) -> None:
        """Raise ValueError when the attack's settings do not fit the data."""


@dataclass(frozen=True)
class Poisoned:
    data: ImageSet
    poisoned_index: torch.Tensor
    """Indices (into the training set) of the images that were stamped and relabelled."""


@dataclass(frozen=True)
class PoisonAttack(AttackPlugin):
    """A data-poisoning backdoor: a trigger stamped on a fraction of the training images,
    which are relabelled to the attacker's label. Subclasses add their trigger's
    parameters and ``apply_trigger``; the label map, selection and relabelling are shared.
    A subclass with a ``__post_init__`` calls ``super().__post_init__()``."""

    stage = "poison"
    target: int = field(default=0, metadata={"help": "attacker's label (all-to-one)"})
    poison_rate: float = field(
        default=0.1,
        metadata={"help": "fraction of the training images stamped and relabelled, in (0, 1)"},
    )
    mode: Literal["all-to-one", "all-to-all"] = field(
        default="all-to-one",
        metadata={
            "help": "all-to-one: every label becomes target; all-to-all: label y becomes y+1"
        },
    )

    def __post_init__(self) -> None:
        if not 0 < self.poison_rate < 1:
            raise ValueError(f"poison_rate must be in (0, 1), got {self.poison_rate}")
        if self.target < 0:
            raise ValueError(f"target must be a class index >= 0, got {self.target}")
        if self.mode not in ("all-to-one", "all-to-all"):
            raise ValueError(f"mode must be 'all-to-one' or 'all-to-all', got {self.mode!r}")

    def apply_trigger(self, images: torch.Tensor) -> torch.Tensor:
        """Stamp the trigger on uint8 ``[N, C, H, W]`` images; returns new uint8 images."""
        raise NotImplementedError

    def attacker_labels(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        if self.mode == "all-to-all":
            return (labels + 1) % num_classes
        return torch.full_like(labels, self.target)

    def check_dataset(self, num_classes: int, channels: int, image_size: int) -> None:
        if self.mode == "all-to-one" and not 0 <= self.target < num_classes:
            raise ValueError(f"target {self.target} is not a class index (0..{num_classes - 1})")

    def poison(self, train: ImageSet, num_classes: int, generator: torch.Generator) -> Poisoned:
        """Stamp ``round(poison_rate * N)`` images drawn from those whose label changes."""
        wanted = self.attacker_labels(train.labels, num_classes)
        eligible = torch.nonzero(wanted != train.labels).flatten()
        count = round(self.poison_rate * len(train))
        if count > len(eligible):
            raise ValueError(
                f"poison_rate {self.poison_rate} asks for {count} images but only "
                f"{len(eligible)} can be relabelled"
            )
        chosen = eligible[torch.randperm(len(eligible), generator=generator)[:count]]
        chosen, _ = torch.sort(chosen)
        images = train.images.clone()
        labels = train.labels.clone()
        images[chosen] = self.apply_trigger(images[chosen])
        labels[chosen] = wanted[chosen]
        return Poisoned(ImageSet(images, labels), chosen)

    def triggered(self, test: ImageSet, num_classes: int) -> ImageSet:
        """The test images the success rate is measured on: triggered, carrying the
        attacker's label, and only those whose true label differs from it."""
        wanted = self.attacker_labels(test.labels, num_classes)
        keep = wanted != test.labels
        return ImageSet(self.apply_trigger(test.images[keep]), wanted[keep])


@dataclass(frozen=True)
class Injection:
    """The images an injection attack targets: ``images`` carries their true labels,
    ``labels`` the labels the attacker wants them to take (never the true ones), ``index``
    their positions in the images they were drawn from."""

    images: ImageSet
    labels: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TamperContext:
    """What a weight-tampering attack may use. ``model`` maps 0..1 images (as
    ``mcbench.kinds.data.as_batch`` makes them) to logits; ``network`` is the architecture's own
    module inside it, the one layer names refer to."""

    model: nn.Module
    network: nn.Module
    attacker: ImageSet
    """The attacker's images with their true labels (a seeded order of the training set)."""
    injection: Injection | None
    """The targets and the labels to inject (None for an untargeted attack)."""
    num_classes: int
    device: torch.device
    seed: int
    batch_size: int = 500


@dataclass(frozen=True)
class TamperAttack(AttackPlugin):
    """An attack on a trained model's weights. ``tamper`` changes ``ctx.model`` in place,
    deterministically given ``ctx.seed``, and returns a JSON-able report of what it did
    (mcbench adds the size of the change, L0 / L2 / L-inf, itself)."""

    stage = "tamper"
    num_targets: ClassVar[int] = 0
    """How many evaluation images the attack targets (0: untargeted)."""
    report_figures: ClassVar[tuple[str, ...]] = ()
    """The keys of its report that the leaderboard's weight-attack table shows, one column
    each (the size of the change and the run time are always shown)."""

    def check_model(self, network: nn.Module) -> None:
        """Raise ValueError when the attack cannot act on this network (e.g. a layer name
        it does not have); called while benchmarks.yaml is validated."""

    def choose_injection(
        self, pool: ImageSet, num_classes: int, generator: torch.Generator
    ) -> Injection | None:
        """The targets to inject, drawn from ``pool`` (None: an untargeted attack)."""
        return None

    def tamper(self, ctx: TamperContext) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class TargetedTamper(TamperAttack):
    """A tampering attack that makes a few chosen images take chosen wrong labels. The
    same targets and labels (drawn from the evaluation images with the cell's seed) are
    injected into both endpoints."""

    targets: int = field(default=4, metadata={"help": "number of target images"})
    target_label: int | None = field(
        default=None,
        metadata={"help": "label every target must take (null: a random wrong label per target)"},
    )

    def __post_init__(self) -> None:
        if self.targets < 1:
            raise ValueError(f"targets must be >= 1, got {self.targets}")
        if self.target_label is not None and self.target_label < 0:
            raise ValueError(f"target_label must be a class index >= 0, got {self.target_label}")

    @property
    def num_targets(self) -> int:  # type: ignore[override]
        return self.targets

    def check_dataset(self, num_classes: int, channels: int, image_size: int) -> None:
        if self.target_label is not None and not 0 <= self.target_label < num_classes:
            raise ValueError(
                f"target_label {self.target_label} is not a class index (0..{num_classes - 1})"
            )

    def choose_injection(
        self, pool: ImageSet, num_classes: int, generator: torch.Generator
    ) -> Injection:
        self.check_dataset(num_classes, *pool.images.shape[1:3])
        eligible = torch.arange(len(pool))
        if self.target_label is not None:
            eligible = eligible[pool.labels != self.target_label]
        if len(eligible) < self.targets:
            raise ValueError(
                f"{self.targets} targets asked for but only {len(eligible)} "
                f"evaluation images can take another label"
            )
        chosen = eligible[torch.randperm(len(eligible), generator=generator)[: self.targets]]
        chosen, _ = torch.sort(chosen)
        images = pool.subset(chosen)
        if self.target_label is not None:
            labels = torch.full_like(images.labels, self.target_label)
        else:  # a uniformly drawn label among the num_classes - 1 wrong ones
            shift = torch.randint(1, num_classes, (len(chosen),), generator=generator)
            labels = (images.labels + shift) % num_classes
        return Injection(images, labels, chosen)


Goal = Literal["misclassify", "loss"]


@dataclass(frozen=True)
class EvasionAttack(AttackPlugin):
    """A test-time attack on the inputs of a fixed model: scores robustness along a path
    (robust accuracy, adversarial loss) and is the inner attack of adversarial training."""

    stage = "evasion"

    def perturb(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        goal: Goal = "misclassify",
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Adversarial versions of ``images`` (float ``[N, C, H, W]`` in 0..1, on the
        model's device) for ``model`` (in eval mode; its parameters are left untouched,
        gradients included). ``labels`` are the true labels.

        ``goal="misclassify"`` (robust accuracy): a point the model already gets wrong is
        not attacked further, and the point returned is misclassified whenever any
        iterate was. ``goal="loss"`` (adversarial loss, adversarial training): per point,
        the iterate with the highest cross-entropy. A targeted attack aims at ``targets``.
        Every returned point lies in the attack's threat model and in [0, 1]; random
        starts draw from ``generator`` (seeded by the caller)."""
        raise NotImplementedError
