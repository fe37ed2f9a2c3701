"""Any attack of the torchattacks library, by class name and keyword arguments, as an
evasion attack; and the adapter that runs a torchattacks attack under mcbench's evasion
contract (the ``autoattack`` plugin runs through it too).

torchattacks is an optional dependency (``pip install "mcbench[attacks]"``), imported on
first use. A torchattacks attack takes images in [0, 1] and a model that maps them to
logits, which is what mcbench's evaluation model is (its normalisation is inside), so no
normalisation is set on the attack. Around the attack the adapter keeps what torchattacks
would change: the model's train/eval flags (torchattacks switches the whole model to eval),
the parameters' ``requires_grad`` and ``.grad`` (FAB calls ``backward()``), and the global
RNG (several attacks reseed it with their ``seed``); it draws the attack's randomness from
the caller's generator, and brings every point back into [0, 1] and the eps ball.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import EvasionAttack, Goal
from mcbench.toolkit.training import requires_grad_only

INSTALL_HINT = 'pip install "mcbench[attacks]"'
GOALS = ("misclassify", "loss")
NORMS = ("linf", "l2", "l1")
TORCHATTACKS_NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}

UNUSABLE = ("MultiAttack", "LGV")
"""Wrappers that take other attacks or a training loader, which YAML cannot give."""
SET_BY_MCBENCH = {"model": "the model under attack", "n_classes": "the model's output size"}
RADIUS_ARGUMENTS = ("eps", "max_epsilon")
"""The names torchattacks gives the radius of an attack's ball (PI-FGSM: max_epsilon)."""
SEED_LIMIT = 2**31
"""Seeds drawn from the caller's generator lie in [0, SEED_LIMIT)."""


class MissingTorchattacks(ImportError, ValueError):
    """torchattacks is not installed. A ValueError too, so that a plugin refusing to be
    built without it is reported against its line in benchmarks.yaml."""


def import_torchattacks():
    """The torchattacks module, imported here rather than when the plugin module loads."""
    try:
        import torchattacks
    except ImportError as e:
        raise MissingTorchattacks(
            f"this attack needs the torchattacks package, an optional dependency of "
            f"mcbench: {INSTALL_HINT}"
        ) from e
    return torchattacks


def attack_classes() -> dict[str, type]:
    """The torchattacks attack classes a benchmark can name, by class name."""
    torchattacks = import_torchattacks()
    base = torchattacks.attack.Attack
    classes = {}
    for name in torchattacks.__all__:
        cls = getattr(torchattacks, name, None)
        if isinstance(cls, type) and issubclass(cls, base) and name not in UNUSABLE:
            classes[name] = cls
    return classes


def accepted_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``cls.__init__`` a benchmark may set."""
    parameters = inspect.signature(cls.__init__).parameters
    return {
        name: p
        for name, p in parameters.items()
        if name != "self"
        and name not in SET_BY_MCBENCH
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def seed_from(generator: torch.Generator | None) -> int:
    """A seed for the attack's randomness, drawn from the caller's generator (0 without)."""
    if generator is None:
        return 0
    drawn = torch.randint(SEED_LIMIT, (1,), generator=generator, device=generator.device)
    return int(drawn)


def within_threat_model(
    adversarial: torch.Tensor, clean: torch.Tensor, norm: str | None, eps: float | None
) -> torch.Tensor:
    """``adversarial`` brought into [0, 1] and into the ``norm`` ball of radius ``eps``
    around ``clean`` (no ball when ``eps`` is None). L-inf is projected pixel by pixel; an
    L2 or L1 perturbation that is too long is shortened towards the image, which keeps it
    in [0, 1] because the image is."""
    x = adversarial.clamp(0.0, 1.0)
    if eps is None:
        return x
    if norm in (None, "linf"):
        return torch.minimum(torch.maximum(x, clean - eps), clean + eps).clamp_(0.0, 1.0)
    delta = x - clean
    order = 2 if norm == "l2" else 1
    length = torch.linalg.vector_norm(delta.flatten(1), ord=order, dim=1).clamp_min(1e-12)
    scale = (eps / length).clamp_(max=1.0).view(-1, *[1] * (delta.dim() - 1))
    return (clean + delta * scale).clamp_(0.0, 1.0)


@contextmanager
def model_kept(model: nn.Module):
    """Within: no parameter of ``model`` records gradients; on exit every module's
    train/eval flag and every parameter's ``requires_grad`` are as they were."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        with requires_grad_only(model):
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def global_rng_seeded(seed: int, device: torch.device):
    """Within: the global RNG (the CPU's, and ``device``'s if a GPU) seeded with ``seed``;
    on exit it is back to its state before."""
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.default_generator.manual_seed(seed)
        if gpus:
            torch.cuda.default_generators[gpus[0]].manual_seed(seed)
        yield


def run_torchattacks(
    build: Callable[[nn.Module, int], object],
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    goal: Goal,
    seed: int,
    norm: str | None,
    eps: float | None,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """The torchattacks attack ``build(model, n_classes)`` run on ``images`` under the
    evasion contract (see ``EvasionAttack.perturb``); with ``targets`` it aims at them.

    Goal "misclassify" leaves the points the model already gets wrong (targeted: already
    gives the target) as they are and attacks the others; goal "loss" attacks every point
    (a torchattacks attack returns one point per image, so its own choice stands)."""
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
    result = images.detach().clone()
    if len(images) == 0:
        return result
    aim = labels if targets is None else targets.to(labels.device)
    with torch.no_grad():
        logits = model(result)
    if goal == "misclassify":
        pred = logits.argmax(1)
        todo = torch.nonzero(pred == labels if targets is None else pred != aim).flatten()
    else:
        todo = torch.arange(len(images), device=images.device)
    if len(todo) == 0:
        return result
    clean = result[todo]
    with model_kept(model), global_rng_seeded(seed, images.device), torch.enable_grad():
        attack = build(model, logits.shape[1])
        if model.training:  # attack the model as it was given (adversarial training)
            attack.set_model_training_mode(True, True, True)
        if targets is not None:
            attack.set_mode_targeted_by_label(quiet=True)
        adversarial = attack(clean, aim[todo])
    adversarial = adversarial.detach().to(device=images.device, dtype=images.dtype)
    result[todo] = within_threat_model(adversarial, clean, norm, eps)
    return result


# -- the plugin ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchattacksAttack(EvasionAttack):
    """Any torchattacks attack by class name, e.g. {attack: FGSM, kwargs: {eps: 0.031}}."""

    name: ClassVar[str] = "torchattacks"
    attack: str = field(
        default="PGD",
        metadata={"help": "torchattacks class name, e.g. FGSM, PGD, PGDL2, APGD, CW, DeepFool"},
    )
    kwargs: dict = field(
        default_factory=dict,
        metadata={
            "help": "keyword arguments of the class, e.g. {eps: 0.031, steps: 10} "
            "(model and n_classes are set by mcbench)"
        },
    )
    targeted: bool = field(
        default=False,
        metadata={"help": "aim at the given target labels (only attacks with a targeted mode)"},
    )

    def __post_init__(self):
        classes = attack_classes()
        if self.attack not in classes:
            close = difflib.get_close_matches(self.attack, classes, n=2)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"torchattacks has no attack {self.attack!r}{hint} "
                f"(attacks: {', '.join(sorted(classes))})"
            )
        cls = classes[self.attack]
        accepted = accepted_arguments(cls)
        for key, value in self.kwargs.items():
            if key in SET_BY_MCBENCH:
                raise ValueError(
                    f"kwargs may not set {key}: mcbench sets it to {SET_BY_MCBENCH[key]}"
                )
            if key not in accepted:
                raise ValueError(
                    f"{self.attack} takes no argument {key!r} "
                    f"(arguments: {', '.join(accepted) or '(none)'})"
                )
            _check_kind(self.attack, key, value, accepted[key].default)
        try:  # values torchattacks itself refuses (an unknown norm or version)
            probe = self._build(nn.Linear(1, 2), 2, 0)
        except Exception as e:
            raise ValueError(f"torchattacks.{self.attack} refused the kwargs: {e}") from None
        if self.targeted and "targeted" not in probe.supported_mode:
            raise ValueError(f"torchattacks.{self.attack} has no targeted mode")
        norm = self.norm
        if norm is not None and norm not in NORMS:
            raise ValueError(f"norm {norm!r} is none of {', '.join(NORMS)}")

    @property
    def arguments(self) -> dict:
        """Every keyword argument of the class: its defaults overridden by ``kwargs``."""
        accepted = accepted_arguments(attack_classes()[self.attack])
        defaults = {k: p.default for k, p in accepted.items() if p.default is not p.empty}
        return {**defaults, **self.kwargs}

    @property
    def eps(self) -> float | None:
        """The radius of the attack's ball (None: a minimum-norm or unbounded attack)."""
        arguments = self.arguments
        for key in RADIUS_ARGUMENTS:
            value = arguments.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return None

    @property
    def norm(self) -> str | None:
        """The norm of the ball: the class's ``norm`` argument, else L2 for the classes
        named so (PGDL2, PGDRSL2) and L-inf for the rest; None without a ball."""
        if self.eps is None:
            return None
        given = self.arguments.get("norm")
        if isinstance(given, str):
            return given.lower()
        return "l2" if self.attack.endswith("L2") else "linf"

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
        """The attack's points (see ``EvasionAttack.perturb``), clipped to [0, 1] and the
        attack's ball. Its randomness is seeded from ``generator``; an attack with a
        ``seed`` argument gets the drawn seed unless ``kwargs`` sets one."""
        if self.targeted and targets is None:
            raise ValueError(f"a targeted torchattacks.{self.attack} needs targets")
        seed = seed_from(generator)
        return run_torchattacks(
            lambda net, n_classes: self._build(net, n_classes, seed),
            model,
            images,
            labels,
            goal=goal,
            seed=seed,
            norm=self.norm,
            eps=self.eps,
            targets=targets if self.targeted else None,
        )

    def _build(self, model: nn.Module, n_classes: int, seed: int):
        cls = attack_classes()[self.attack]
        parameters = inspect.signature(cls.__init__).parameters
        extra = {"n_classes": n_classes} if "n_classes" in parameters else {}
        if "seed" in parameters and "seed" not in self.kwargs:
            extra["seed"] = seed
        return cls(model, **self.kwargs, **extra)


def _check_kind(attack: str, key: str, value, default) -> None:
    """Refuse a value of another kind than the argument's default (a number for a number,
    true/false for a flag, text for text); arguments defaulting to None take anything."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok, kind = ok and math.isfinite(value), "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "text"
    elif isinstance(default, (tuple, list)):
        ok, kind = isinstance(value, (tuple, list)), "a list"
    else:
        return
    if not ok:
        raise ValueError(f"{attack} argument {key} must be {kind}, got {value!r}")


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(TorchattacksAttack)
