"""timings/gpu_throughput.py on the CPU at tiny sizes: the reference curve is the same
curve as mcbench's, both evaluated points agree, and both training paths train and report
finite throughputs."""

import importlib.util
import math
from pathlib import Path

import torch
from torch.testing import assert_close

from mcbench_plugins.architectures.convnet import ConvNet

SCRIPT = Path(__file__).resolve().parents[1] / "timings" / "gpu_throughput.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_and_mcbench_curves_agree_and_both_train():
    bench = load_script()
    cpu = torch.device("cpu")
    curve = bench.make_curve(ConvNet(widths=(8, 16)), seed=0, num_classes=4)
    with torch.no_grad():
        curve.interior.add_(0.05 * torch.randn_like(curve.interior))
    reference = bench.ReferenceCurve.from_curve(curve)

    start, middle, end = curve.bends()
    for t in (0.0, 0.3, 0.5, 1.0):
        flat = torch.cat([w.reshape(-1) for w in reference.weights(torch.tensor(t)).values()])
        closed_form = (1 - t) ** 2 * start + 2 * t * (1 - t) * middle + t**2 * end
        assert_close(flat, closed_form)
        assert_close(curve.weights(t), closed_form)

    bonafide, evaluation = bench.synthetic(64, 1, 4), bench.synthetic(48, 2, 4)
    ours = bench.mcbench_point(curve, bonafide, evaluation, cpu, "fp32", batch=32)
    theirs = bench.reference_point(reference, bonafide, evaluation, cpu, workers=0, batch=32)
    assert ours.shape == theirs.shape == (48, 4)
    assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    assert torch.equal(theirs.argmax(1), ours.argmax(1))

    interior, reference_start = curve.interior.detach().clone(), reference.bends[0][0].clone()
    reference_middle = reference.bends[1][0].detach().clone()
    sizes = dict(batch=16, warmup=1, steps=2, repeats=2, device=cpu)
    train = bench.synthetic(16 * (1 + 2 * 2), 3, 4)
    rates = bench.mcbench_training(curve, train, precision="fp32", **sizes)
    rates += bench.reference_training(reference, train, workers=0, **sizes)
    assert len(rates) == 4 and all(r > 0 and math.isfinite(r) for r in rates)
    assert not torch.equal(curve.interior, interior)
    assert not torch.equal(reference.bends[1][0], reference_middle)
    assert torch.equal(reference.bends[0][0], reference_start)
