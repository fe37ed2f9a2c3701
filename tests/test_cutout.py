"""Cutout: the erased squares against slicing by hand, and the path repair training on
erased images when asked to (and on the images as they are by default)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mcbench.kinds.data import ImageSet
from mcbench.registry.params import to_plain
from mcbench.toolkit.augment import cutout
from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.repairs.path import PathRepair
from tests.test_repair_baselines import context


def erased_by_hand(x: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """The same centres drawn again, each square cut out of a copy with slices."""
    n, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.randint(0, h, (n,), generator=g), torch.randint(0, w, (n,), generator=g)
    out = x.clone()
    for i in range(n):
        top, left = int(rows[i]) - size // 2, int(cols[i]) - size // 2
        out[i, :, max(top, 0) : max(top + size, 0), max(left, 0) : max(left + size, 0)] = 0.0
    return out


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    size=st.integers(0, 30),
    seed=st.integers(0, 2**31 - 1),
)
def test_cutout_erases_the_square_around_each_drawn_centre(n, h, w, size, seed):
    x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) + 0.5
    got = cutout(x, size, torch.Generator().manual_seed(seed))
    assert torch.equal(got, erased_by_hand(x, size, seed))


def test_a_square_inside_the_image_erases_size_squared_pixels_per_channel():
    x = torch.ones(200, 3, 32, 32)
    out = cutout(x, 8, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(2, 3))  # [n, channels]
    assert (zeros == zeros[:, :1]).all()  # every channel alike
    assert zeros.max() == 64 and zeros.min() >= 16  # a corner keeps at least a quarter
    assert not x.eq(0).any()  # the input is left as it was


def tiny_images(seed: int, labels: torch.Tensor) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(
        torch.randint(0, 256, (len(labels), 3, 8, 8), generator=g, dtype=torch.uint8), labels
    )


def fitted_interior(repair: PathRepair, images_seed: int) -> torch.Tensor:
    labels = torch.randint(0, 3, (48,), generator=torch.Generator().manual_seed(1))
    ctx = replace(context(), bonafide=tiny_images(images_seed, labels), connection=Bezier())
    return repair.fit(ctx)["interior"]


def test_the_path_repair_trains_on_erased_images_when_asked():
    fast = dict(epochs=2, batch_size=16, lr=0.05)
    # a square twice the image's side erases every pixel wherever it is centred: the
    # curve then sees only the labels, whatever the images were
    erased = PathRepair(**fast, cutout=16)
    assert torch.equal(fitted_interior(erased, 2), fitted_interior(erased, 3))
    plain = PathRepair(**fast)
    assert not torch.equal(fitted_interior(plain, 2), fitted_interior(plain, 3))


def test_cutout_stays_out_of_the_key_at_its_default():
    assert "cutout" not in to_plain(PathRepair())
    assert to_plain(PathRepair(cutout=24))["cutout"] == 24


def test_a_negative_cutout_is_refused():
    with pytest.raises(ValueError, match="cutout"):
        PathRepair(cutout=-1)
