"""The badnets and blended attacks: trigger pixels, selection and relabelling, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcbench.kinds.data import ImageSet
from mcbench_plugins.attacks.badnets import BadNets
from mcbench_plugins.attacks.blended import Blended

NUM_CLASSES, PER_CLASS, CHANNELS, SIZE = 4, 10, 3, 8


def image_set(
    seed: int = 0, channels: int = CHANNELS, height: int = SIZE, width: int = SIZE
) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(NUM_CLASSES).repeat(PER_CLASS)
    images = torch.randint(
        0, 256, (len(labels), channels, height, width), generator=generator, dtype=torch.uint8
    )
    return ImageSet(images, labels)


def poison(attack, data: ImageSet, seed: int = 0):
    return attack.poison(data, NUM_CLASSES, torch.Generator().manual_seed(seed))


def check_selection(data: ImageSet, result, rate: float, wanted: torch.Tensor) -> torch.Tensor:
    """Checks shared by every poisoning attack; returns the mask of stamped images."""
    chosen = result.poisoned_index
    assert len(chosen) == round(rate * len(data))
    assert len(torch.unique(chosen)) == len(chosen)
    assert torch.all(wanted[chosen] != data.labels[chosen])
    assert torch.equal(result.data.labels[chosen], wanted[chosen])
    mask = torch.zeros(len(data), dtype=torch.bool)
    mask[chosen] = True
    assert torch.equal(result.data.images[~mask], data.images[~mask])
    assert torch.equal(result.data.labels[~mask], data.labels[~mask])
    assert result.data.images.dtype == torch.uint8
    return mask


# -- badnets ------------------------------------------------------------------------------


def test_badnets_poison_stamps_and_relabels_exactly_the_chosen_images():
    data = image_set()
    original = data.images.clone()
    attack = BadNets(target=1, poison_rate=0.25)
    result = poison(attack, data)
    check_selection(data, result, 0.25, torch.full_like(data.labels, 1))
    assert torch.all(data.labels[result.poisoned_index] != 1)
    chosen = result.poisoned_index
    # default: 3x3 white patch, 1 pixel from the bottom-right corner of an 8x8 image
    expected = data.images[chosen].clone()
    expected[:, :, 4:7, 4:7] = 255
    assert torch.equal(result.data.images[chosen], expected)
    assert torch.equal(data.images, original)


def test_badnets_selection_depends_only_on_the_generator():
    data = image_set()
    attack = BadNets(target=0, poison_rate=0.3)
    first, again = poison(attack, data, seed=5), poison(attack, data, seed=5)
    assert torch.equal(first.poisoned_index, again.poisoned_index)
    assert torch.equal(first.data.images, again.data.images)
    assert not torch.equal(first.poisoned_index, poison(attack, data, seed=6).poisoned_index)


def test_badnets_poison_rate_beyond_the_eligible_images_is_rejected():
    # 30 of the 40 images are not of class 0; 0.9 asks for 36
    with pytest.raises(ValueError, match="poison_rate"):
        poison(BadNets(target=0, poison_rate=0.9), image_set())


@pytest.mark.parametrize(
    "position, margin, rows, cols",
    [
        ("top-left", 0, slice(0, 2), slice(0, 2)),
        ("top-right", 1, slice(1, 3), slice(5, 7)),
        ("bottom-left", 2, slice(4, 6), slice(2, 4)),
        ("bottom-right", 0, slice(6, 8), slice(6, 8)),
    ],
)
def test_badnets_patch_position_and_margin(position, margin, rows, cols):
    images = image_set().images
    stamped = BadNets(
        patch_size=2, position=position, margin=margin, color=(10, 20, 30)
    ).apply_trigger(images)
    for channel, value in enumerate((10, 20, 30)):
        assert torch.all(stamped[:, channel, rows, cols] == value)
    expected = images.clone()
    expected[:, :, rows, cols] = stamped[:, :, rows, cols]
    assert torch.equal(stamped, expected)


def test_badnets_patch_on_non_square_images():
    images = image_set(height=6, width=10).images
    stamped = BadNets(patch_size=2, position="top-right", margin=1, color=(9,)).apply_trigger(
        images
    )
    expected = images.clone()
    expected[:, :, 1:3, 7:9] = 9
    assert torch.equal(stamped, expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_badnets_single_colour_value_fills_every_channel(channels):
    images = image_set(channels=channels).images
    stamped = BadNets(color=(7,)).apply_trigger(images)
    assert torch.all(stamped[:, :, 4:7, 4:7] == 7)


def test_badnets_apply_trigger_returns_new_images():
    images = image_set().images
    before = images.clone()
    stamped = BadNets().apply_trigger(images)
    assert torch.equal(images, before)
    assert stamped.dtype == torch.uint8 and stamped.shape == images.shape
    assert stamped.data_ptr() != images.data_ptr()


def test_badnets_triggered_keeps_only_images_whose_label_changes():
    test = image_set(seed=1)
    attack = BadNets(target=2)
    triggered = attack.triggered(test, NUM_CLASSES)
    keep = test.labels != 2
    assert len(triggered) == int(keep.sum()) == 30
    assert torch.all(triggered.labels == 2)
    expected = test.images[keep].clone()
    expected[:, :, 4:7, 4:7] = 255
    assert torch.equal(triggered.images, expected)


def test_badnets_all_to_all_maps_each_label_to_the_next():
    data = image_set()
    attack = BadNets(mode="all-to-all", poison_rate=0.5)
    result = poison(attack, data)
    check_selection(data, result, 0.5, (data.labels + 1) % NUM_CLASSES)
    triggered = attack.triggered(data, NUM_CLASSES)
    assert len(triggered) == len(data)
    assert torch.equal(triggered.labels, (data.labels + 1) % NUM_CLASSES)


@pytest.mark.parametrize(
    "settings",
    [
        {"poison_rate": 0.0},
        {"poison_rate": 1.0},
        {"poison_rate": -0.1},
        {"target": -1},
        {"mode": "one-to-one"},
        {"patch_size": 0},
        {"margin": -1},
        {"position": "centre"},
        {"color": (256, 0, 0)},
        {"color": (-1,)},
        {"color": ()},
    ],
)
def test_badnets_rejects_out_of_range_settings(settings):
    with pytest.raises(ValueError):
        BadNets(**settings)


def test_badnets_check_dataset():
    BadNets(patch_size=7, margin=1).check_dataset(NUM_CLASSES, CHANNELS, 8)
    BadNets(color=(5,)).check_dataset(NUM_CLASSES, 1, 8)
    with pytest.raises(ValueError, match="does not fit"):
        BadNets(patch_size=7, margin=2).check_dataset(NUM_CLASSES, CHANNELS, 8)
    with pytest.raises(ValueError, match="channels"):
        BadNets(color=(1, 2)).check_dataset(NUM_CLASSES, CHANNELS, 8)
    with pytest.raises(ValueError, match="target"):
        BadNets(target=4).check_dataset(NUM_CLASSES, CHANNELS, 8)
    with pytest.raises(ValueError, match="does not fit"):
        BadNets(patch_size=9, margin=0).apply_trigger(image_set().images)


def test_badnets_accepts_a_colour_list():
    assert BadNets(color=[1, 2, 3]).color == (1, 2, 3)


# -- blended ------------------------------------------------------------------------------


def expected_blend(images: torch.Tensor, pattern: torch.Tensor, alpha: float) -> torch.Tensor:
    x = images.numpy().astype(np.float64)
    p = pattern.numpy().astype(np.float64)
    return torch.from_numpy(np.rint((1 - alpha) * x + alpha * p).astype(np.uint8))


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.37, 1.0])
def test_blended_poison_mixes_the_pattern_into_the_chosen_images(alpha):
    data = image_set()
    attack = Blended(target=3, poison_rate=0.2, alpha=alpha, pattern_seed=4)
    result = poison(attack, data)
    mask = check_selection(data, result, 0.2, torch.full_like(data.labels, 3))
    pattern = attack.trigger_pattern(CHANNELS, SIZE, SIZE)
    assert torch.equal(result.data.images[mask], expected_blend(data.images[mask], pattern, alpha))
    if alpha == 1.0:
        assert torch.all(result.data.images[mask] == pattern)


def test_blended_pattern_is_fixed_by_its_seed():
    first = Blended(pattern_seed=3).trigger_pattern(CHANNELS, SIZE, SIZE)
    assert torch.equal(
        first, Blended(pattern_seed=3, alpha=0.9).trigger_pattern(CHANNELS, SIZE, SIZE)
    )
    assert not torch.equal(first, Blended(pattern_seed=4).trigger_pattern(CHANNELS, SIZE, SIZE))
    assert first.dtype == torch.uint8 and first.shape == (CHANNELS, SIZE, SIZE)
    assert len(torch.unique(first)) > 50  # noise, not a constant image


def test_blended_triggered_and_input_untouched():
    test = image_set(seed=2)
    before = test.images.clone()
    attack = Blended(target=0)
    triggered = attack.triggered(test, NUM_CLASSES)
    keep = test.labels != 0
    assert torch.equal(test.images, before)
    assert torch.all(triggered.labels == 0) and len(triggered) == int(keep.sum())
    pattern = attack.trigger_pattern(CHANNELS, SIZE, SIZE)
    assert torch.equal(triggered.images, expected_blend(test.images[keep], pattern, 0.2))


def test_blended_all_to_all():
    data = image_set()
    result = poison(Blended(mode="all-to-all", poison_rate=0.5), data)
    check_selection(data, result, 0.5, (data.labels + 1) % NUM_CLASSES)


@pytest.mark.parametrize(
    "settings",
    [
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"alpha": -0.2},
        {"poison_rate": 1.0},
        {"poison_rate": 0.0},
        {"target": -2},
        {"mode": "bogus"},
        {"pattern": "stripes"},
    ],
)
def test_blended_rejects_out_of_range_settings(settings):
    with pytest.raises(ValueError):
        Blended(**settings)
