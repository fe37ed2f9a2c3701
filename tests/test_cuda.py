"""The CUDA code paths, against the same computation on the CPU: data and augmentation on
the device, random starts drawn on the CPU and copied over pinned memory, evaluation and
BatchNorm recalibration, bf16 autocast, the attacks' device handling, and a whole run.
Skipped where no GPU is present (``-m cuda`` selects only these)."""

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mcbench.cli import cli
from mcbench.kinds.data import ImageSet, as_batch
from mcbench.toolkit.augment import cutout, random_crop_flip
from mcbench.toolkit.curves import CurveModel
from mcbench.toolkit.evaluation import predict, recalibrate_batchnorm
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.training import FitOptions, SGDFields, fit
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.attacks.pgd import PGD
from mcbench_plugins.connections.bezier import Bezier
from tests.conftest import TINY

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CPU, GPU = torch.device("cpu"), torch.device("cuda")


def data(n=96, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return ImageSet(images, torch.randint(0, 4, (n,), generator=g))


def model(seed=0):
    torch.manual_seed(seed)
    net = ConvNet(widths=(8, 16)).build(4, 3, 16)
    return NormalizedNetwork(Normalize((0.5,) * 3, (0.25,) * 3), net)


def train(m, device, precision="fp32", epochs=2):
    sgd = SGDFields(epochs=epochs, batch_size=32, lr=0.05, schedule="constant")
    return fit(m, data(), sgd, FitOptions(device, seed=1, precision=precision), augment=True)


def test_augmentation_on_the_device_is_the_cpus_bit_for_bit():
    x = as_batch(data(16).images)
    on_cpu = random_crop_flip(x, torch.Generator().manual_seed(5))
    on_gpu = random_crop_flip(x.to(GPU), torch.Generator().manual_seed(5))
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), on_cpu)
    erased_on_cpu = cutout(on_cpu, 6, torch.Generator().manual_seed(6))
    erased_on_gpu = cutout(on_gpu, 6, torch.Generator().manual_seed(6))
    assert erased_on_gpu.device.type == "cuda"
    assert torch.equal(erased_on_gpu.cpu(), erased_on_cpu)


def test_training_on_the_gpu_follows_the_cpus():
    cpu_losses = train(model().to(CPU), CPU)
    gpu_model = model().to(GPU)
    gpu_losses = train(gpu_model, GPU)
    assert all(p.device.type == "cuda" for p in gpu_model.parameters())
    # the same batches and augmentation (drawn on the CPU); only float rounding differs
    assert gpu_losses == pytest.approx(cpu_losses, rel=1e-3)


def test_bf16_on_the_gpu_runs_convolutions_in_bf16_and_keeps_fp32_state():
    m = model().to(GPU)
    seen = []
    conv = next(x for x in m.modules() if isinstance(x, nn.Conv2d))
    conv.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    losses = train(m, GPU, "bf16")
    assert set(seen) == {torch.bfloat16}
    assert losses == pytest.approx(train(model().to(GPU), GPU, "fp32"), rel=0.05)
    assert {v.dtype for v in m.state_dict().values() if v.is_floating_point()} == {torch.float32}


def test_evaluation_and_recalibration_on_the_gpu_match_the_cpu():
    cpu_model, gpu_model = model(), model().to(GPU)
    bonafide, scored = data(64, seed=2), data(80, seed=3)
    recalibrate_batchnorm(cpu_model, bonafide, CPU, batch_size=24)
    recalibrate_batchnorm(gpu_model, bonafide, GPU, batch_size=24)
    for a, b in zip(cpu_model.state_dict().values(), gpu_model.state_dict().values()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)
    logits = predict(gpu_model, scored, GPU, batch_size=32)
    assert logits.device.type == "cpu"
    torch.testing.assert_close(logits, predict(cpu_model, scored, CPU, 32), rtol=1e-3, atol=1e-4)


def test_a_curve_on_the_gpu_has_the_cpus_weights():
    a, b = model(0), model(1)
    curves = [
        CurveModel(model(2), a.state_dict(), b.state_dict(), Bezier()).to(d) for d in (CPU, GPU)
    ]
    for t in (0.0, 0.3, 1.0):
        torch.testing.assert_close(curves[1].weights(t).cpu(), curves[0].weights(t))


def test_pgd_random_starts_are_drawn_on_the_cpu_and_equal_on_the_gpu():
    attack = PGD(eps=8 / 255, step_size=2 / 255, steps=1, random_start=True)
    x = as_batch(data(8).images)
    starts = []
    for device in (CPU, GPU):
        clean = x.to(device)
        generator = torch.Generator().manual_seed(9)  # a CPU generator, as stages pass
        starts.append(attack._start(clean, attack._bounds(clean), generator))
    assert starts[1].device.type == "cuda"
    torch.testing.assert_close(starts[1].cpu(), starts[0])


def test_pgd_on_the_gpu_finds_what_it_finds_on_the_cpu():
    attack = PGD(eps=8 / 255, step_size=2 / 255, steps=5, random_start=True)
    m = model().eval()
    x, y = as_batch(data(16).images), data(16).labels
    on_cpu = attack.perturb(m, x, y, goal="loss", generator=torch.Generator().manual_seed(4))
    on_gpu = attack.perturb(
        m.to(GPU), x.to(GPU), y.to(GPU), goal="loss", generator=torch.Generator().manual_seed(4)
    )
    # sign steps amplify rounding where a gradient entry is ~0: most pixels agree exactly
    agree = (on_gpu.cpu() - on_cpu).abs().le(1e-5).double().mean().item()
    assert agree > 0.95
    assert (on_gpu.cpu() - x).abs().max().item() <= 8 / 255 + 1e-6


def test_a_run_on_the_gpu_records_its_device_and_bf16(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(TINY)
    result = CliRunner().invoke(
        cli,
        ["run", str(path), "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
         "--device", "cuda", "--executor", "serial"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "r/records").glob("*.json")]
    assert len(records) == 2
    for record in records:
        assert record["status"] == "ok"
        assert record["config"]["compute"]["precision"] == "bf16"  # auto on CUDA
        assert record["provenance"]["device"] == torch.cuda.get_device_name(GPU)
        assert record["provenance"]["cuda"] == torch.version.cuda
        accuracies = [p["clean_accuracy"] for p in record["path"]]
        assert all(0.0 <= a <= 1.0 for a in accuracies)
