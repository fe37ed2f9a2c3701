"""The built-in architectures: sizes checked against independent counts, forward shapes,
seeded initialisation, torch.func compatibility and validation."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn
from torch.func import functional_call

from mcbench.kinds import ArchitecturePlugin
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.resnet18 import ResNet18
from mcbench_plugins.architectures.timm_model import TimmModel
from mcbench_plugins.architectures.vgg16 import VGG16

ARCHITECTURES = {
    "vgg16": VGG16(),
    "vgg16-bn": VGG16(batch_norm=True),
    "preresnet110": PreResNet(),
    "preresnet20": PreResNet(depth=20),
    "resnet18": ResNet18(),
    "timm-resnet18": TimmModel(),
    "timm-vit": TimmModel(model="vit_tiny_patch16_224", kwargs={"patch_size": 4}),
    "convnet": ConvNet(),
    "convnet-deep": ConvNet(widths=(8, 16, 32, 64), convs_per_stage=2, batch_norm=False),
}
SMALL = ["preresnet20", "convnet", "convnet-deep"]


def build(
    arch: ArchitecturePlugin,
    seed: int = 0,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
) -> nn.Module:
    torch.manual_seed(seed)
    return arch.build(num_classes=num_classes, in_channels=in_channels, image_size=image_size)


def images(n: int = 2, channels: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(1))


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main_path_layers(model: nn.Module) -> list[nn.Module]:
    """Convolutions and linear layers, without the 1x1 shortcut projections."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and "shortcut" not in name
    ]


# --- sizes ---------------------------------------------------------------------------------


def test_vgg16_parameter_count_matches_the_layer_formula():
    convs = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
    ] + [(512, 512)] * 5
    linears = [(512, 512), (512, 512), (512, 10)]
    expected = sum(3 * 3 * cin * cout + cout for cin, cout in convs) + sum(
        cin * cout + cout for cin, cout in linears
    )
    assert expected == 15_245_130
    model = build(VGG16())
    assert count(model) == expected
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in build(VGG16(batch_norm=True)).modules()) == 13


def test_resnet18_is_torchvisions_with_a_3x3_stem():
    reference = torchvision.models.resnet18(num_classes=10)
    expected = count(reference) - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64
    assert expected == 11_173_962
    model = build(ResNet18())
    assert count(model) == expected
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize(
    "depth, block, kernel_sizes",
    [
        (20, "auto", {3}),  # basic blocks: 3x3 convolutions only
        (56, "auto", {1, 3}),  # bottleneck blocks from depth 44
        (110, "auto", {1, 3}),
        (110, "basic", {3}),
    ],
)
def test_preresnet_has_the_depth_it_is_named_after(depth, block, kernel_sizes):
    layers = main_path_layers(build(PreResNet(depth=depth, block=block)))
    assert len(layers) == depth
    assert isinstance(layers[-1], nn.Linear)
    assert {m.kernel_size[0] for m in layers if isinstance(m, nn.Conv2d)} == kernel_sizes


def test_preresnet_shortcuts_are_plain_projections():
    model = build(PreResNet(depth=20))
    shortcuts = [m for name, m in model.named_modules() if name.endswith("shortcut")]
    projections = [m for m in shortcuts if isinstance(m, nn.Conv2d)]
    assert len(projections) == 2  # entering stages 2 and 3
    assert all(m.kernel_size == (1, 1) and m.bias is None for m in projections)


# --- behaviour of every architecture -------------------------------------------------------


@pytest.mark.parametrize("key", ARCHITECTURES)
def test_forward_gives_logits_and_matches_functional_call(key):
    model = build(ARCHITECTURES[key]).eval()
    x = images()
    with torch.no_grad():
        out = model(x)
        functional = functional_call(model, dict(model.named_parameters()), (x,))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(functional, out, rtol=0, atol=0)


@pytest.mark.parametrize("key", ARCHITECTURES)
def test_initialisation_follows_the_seed(key):
    arch = ARCHITECTURES[key]
    first, again, other = (build(arch, seed).state_dict() for seed in (0, 0, 1))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("key", SMALL + ["resnet18", "timm-resnet18"])
def test_functional_call_uses_the_weights_it_is_given(key):
    model = build(ARCHITECTURES[key]).eval()
    generator = torch.Generator().manual_seed(2)
    moved = {
        name: p.detach() + 0.05 * torch.randn(p.shape, generator=generator)
        for name, p in model.named_parameters()
    }
    loaded = copy.deepcopy(model)
    loaded.load_state_dict(moved, strict=False)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(functional_call(model, moved, (x,)), loaded(x))
        assert not torch.allclose(model(x), loaded(x))


@pytest.mark.parametrize("key", SMALL + ["resnet18", "timm-resnet18"])
def test_other_class_and_channel_counts(key):
    model = build(ARCHITECTURES[key], num_classes=7, in_channels=1, image_size=16).eval()
    with torch.no_grad():
        assert model(images(channels=1, size=16)).shape == (2, 7)


def test_vgg16_on_16x16_images():
    model = build(VGG16(), image_size=16).eval()
    with torch.no_grad():
        assert model(images(size=16)).shape == (2, 10)
    with pytest.raises(ValueError, match="at least 16"):
        VGG16().build(num_classes=10, in_channels=3, image_size=8)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"depth": 111}, "9n\\+2"),
        ({"depth": 2}, "6n\\+2"),
        ({"depth": 50}, "9n\\+2"),  # 6n+2, but auto picks bottleneck from 44
        ({"depth": 32, "block": "bottleneck"}, "9n\\+2"),
    ],
)
def test_preresnet_rejects_depths_its_blocks_cannot_make(params, message):
    with pytest.raises(ValueError, match=message):
        PreResNet(**params)


def test_preresnet_basic_blocks_can_be_forced_at_any_6n_plus_2_depth():
    assert len(main_path_layers(build(PreResNet(depth=50, block="basic")))) == 50


@pytest.mark.parametrize("widths", [(), (16, 0), (-8,)])
def test_convnet_rejects_bad_widths(widths):
    with pytest.raises(ValueError, match="widths"):
        ConvNet(widths=widths)


def test_convnet_rejects_images_too_small_for_its_pools():
    with pytest.raises(ValueError, match="at least 8"):
        ConvNet(widths=(8, 16, 32)).build(num_classes=10, in_channels=3, image_size=4)


def test_timm_suggests_the_close_name():
    with pytest.raises(ValueError, match="resnet18") as error:
        TimmModel(model="resnte18")
    assert "did you mean" in str(error.value)


def test_timm_refuses_to_override_what_the_benchmark_sets():
    with pytest.raises(ValueError, match="pretrained"):
        TimmModel(kwargs={"pretrained": True})


def test_timm_image_size_from_kwargs_wins():
    model = build(
        TimmModel(
            model="vit_tiny_patch16_224", kwargs={"patch_size": 4, "img_size": 16, "depth": 1}
        )
    )
    with torch.no_grad():
        assert model.eval()(images(size=16)).shape == (2, 10)
