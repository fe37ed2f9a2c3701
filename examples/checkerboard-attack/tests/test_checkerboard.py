import torch
from mcbench_checkerboard import Checkerboard

from mcbench.testing import check_plugin, check_registered


def test_contract():
    check_plugin(Checkerboard)


def test_trigger_pixels():
    images = torch.full((1, 1, 6, 6), 100, dtype=torch.uint8)
    out = Checkerboard(size=2).apply_trigger(images)
    assert out[0, 0, 4:, 4:].tolist() == [[0, 255], [255, 0]]
    assert (out[0, 0, :4] == 100).all()


def test_found_through_the_entry_point():
    assert check_registered(Checkerboard).distribution == "mcbench-checkerboard"
