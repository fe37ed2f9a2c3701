"""Precision and compilation: bf16 autocast where the run asks for it (checked on the CPU,
whose autocast has bf16 too), fp32 state throughout, and keys that never let an fp32 and a
bf16 result mix."""

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.bench.settings import ComputeSettings
from mcbench.cell import plan
from mcbench.cell.scoring import score
from mcbench.cell.split import Scoring
from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.kinds.data import ImageSet
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.precision import autocast, resolve_precision
from mcbench.toolkit.training import FitOptions, SGDFields, fit, lr_factor
from mcbench_plugins.architectures.convnet import ConvNet
from tests.conftest import TINY

CPU = torch.device("cpu")


def tiny_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    return ImageSet(images, torch.randint(0, 4, (n,), generator=g))


def tiny_model(seed=0):
    torch.manual_seed(seed)
    net = ConvNet(widths=(8, 16)).build(4, 3, 16)
    return NormalizedNetwork(Normalize((0.5,) * 3, (0.25,) * 3), net)


def train(model, precision=None, epochs=1, **kw):
    extra = {} if precision is None else {"precision": precision}
    sgd = SGDFields(epochs=epochs, batch_size=16, lr=0.05, schedule="constant")
    return fit(model, tiny_data(), sgd, FitOptions(CPU, seed=3, **extra, **kw), augment=True)


def test_auto_is_bf16_on_cuda_and_fp32_on_the_cpu():
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cuda")
    with pytest.raises(ValueError, match="compute.precision|precision must be"):
        ComputeSettings(precision="half")


def conv_output_dtypes(model) -> list:
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_convolutions_run_in_the_precision_and_the_state_stays_fp32(precision, dtype):
    model = tiny_model()
    seen = conv_output_dtypes(model)
    losses = train(model, precision)
    assert seen and set(seen) == {dtype}
    assert all(torch.isfinite(torch.tensor(losses)))
    floats = {v.dtype for v in model.state_dict().values() if v.is_floating_point()}
    assert floats == {torch.float32}  # weights and BatchNorm statistics


def test_fp32_is_exactly_the_default_and_bf16_close_to_it():
    default, fp32, bf16 = tiny_model(), tiny_model(), tiny_model()
    assert train(default) == train(fp32, "fp32")
    for a, b in zip(default.state_dict().values(), fp32.state_dict().values()):
        assert torch.equal(a, b)
    first_fp32, first_bf16 = train(tiny_model(), "fp32")[0], train(bf16, "bf16")[0]
    assert first_bf16 != first_fp32  # really another precision
    assert first_bf16 == pytest.approx(first_fp32, rel=0.05)


def test_onecycle_warms_up_then_decays_to_zero():
    factors = [lr_factor("onecycle", e, 8) for e in range(8)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[1] == pytest.approx(0.1 + 0.9 * (1 / 8) / 0.25)
    assert factors[2] == pytest.approx(1.0)
    assert factors[2:] == sorted(factors[2:], reverse=True)
    assert factors[-1] == pytest.approx((1 - 7 / 8) / 0.75)


def every_key(cell):
    keys = {"cell": cell.cell_id}
    for ref in plan.cell_stages(cell):
        keys[ref.node.split("/")[0] + " " + ref.label] = ref.key
    return keys


def test_an_fp32_and_a_bf16_cell_share_no_stage(registry, write_yaml):
    path = write_yaml(TINY)
    [fp32, *_] = load_benchmark(path, registry, device_type="cpu").cells
    [bf16, *_] = load_benchmark(path, registry, compute={"precision": "bf16"}).cells
    [compiled, *_] = load_benchmark(path, registry, compute={"compile": True}).cells
    assert fp32.compute == ComputeSettings("fp32", False)
    assert bf16.compute == ComputeSettings("bf16", False)
    a, b, c = every_key(fp32), every_key(bf16), every_key(compiled)
    assert a.keys() == b.keys() == c.keys()
    assert all(a[k] != b[k] and a[k] != c[k] and b[k] != c[k] for k in a)
    assert bf16.config()["compute"] == {"precision": "bf16", "compile": False}
    assert fp32.config()["compute"] == {"precision": "fp32", "compile": False}


def test_fp32_keys_are_those_of_a_file_without_compute_settings(registry, write_yaml):
    plain = load_benchmark(write_yaml(TINY), registry, device_type="cpu").cells
    explicit = load_benchmark(
        write_yaml(TINY + "    compute: {precision: fp32}\n", "explicit.yaml"), registry
    ).cells
    on_cuda = load_benchmark(
        write_yaml(TINY + "    compute: {precision: fp32}\n", "cuda.yaml"),
        registry,
        device_type="cuda",
    ).cells
    assert [every_key(c) for c in plain] == [every_key(c) for c in explicit]
    assert [every_key(c) for c in plain] == [every_key(c) for c in on_cuda]


def test_auto_resolves_for_the_device_and_the_command_line_wins(registry, write_yaml):
    auto = write_yaml(TINY)
    assert load_benchmark(auto, registry, device_type="cuda").cells[0].compute.precision == "bf16"
    assert load_benchmark(auto, registry, device_type="cpu").cells[0].compute.precision == "fp32"
    bf16 = write_yaml(TINY + "    compute: {precision: bf16}\n", "bf16.yaml")
    over = load_benchmark(bf16, registry, compute={"precision": "fp32"}, device_type="cuda")
    assert over.cells[0].compute.precision == "fp32"


def test_a_bad_precision_names_the_file_and_the_key(registry, write_yaml):
    path = write_yaml(TINY + "    compute: {precision: fp16}\n")
    with pytest.raises(ConfigError) as error:
        load_benchmark(path, registry)
    assert error.value.key == "tracks.backdoor-repair.compute.precision"
    assert "fp16" in str(error.value)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and str(path) in result.output and "precision" in result.output


def fake_metric(key, full_precision, seen):
    def compute(ctx):
        seen[key] = torch.is_autocast_enabled("cpu")
        return 0.0

    cls = SimpleNamespace(needs=("clean",), full_precision=full_precision)
    return SimpleNamespace(
        key=key, name=key, entry=SimpleNamespace(cls=cls), instance=SimpleNamespace(compute=compute)
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_metrics_compute_in_the_cells_precision_unless_they_need_full(
    registry, write_yaml, precision
):
    [cell, *_] = load_benchmark(write_yaml(TINY), registry, compute={"precision": precision}).cells
    seen = {}
    cell = dataclasses.replace(
        cell, metrics=(fake_metric("plain", False, seen), fake_metric("hessian", True, seen))
    )
    scoring = Scoring(tiny_data(8), None, None, 4)
    score(cell, tiny_model(), scoring, CPU)
    assert seen == {"plain": precision == "bf16", "hessian": False}


def test_the_input_hessian_is_computed_in_fp32():
    from mcbench_plugins.metrics.input_hessian_eig import InputHessianEig

    assert InputHessianEig.full_precision


def test_a_bf16_run_records_its_precision_and_reuses_nothing_of_an_fp32_one(tmp_path, write_yaml):
    path = str(write_yaml(TINY))
    common = [
        "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
        "--executor", "serial", "--device", "cpu",
    ]  # fmt: skip
    fp32 = CliRunner().invoke(cli, ["run", path, *common])
    bf16 = CliRunner().invoke(cli, ["run", path, "--precision", "bf16", *common])
    assert fp32.exit_code == 0, fp32.output
    assert bf16.exit_code == 0, bf16.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/records").glob("*.json")]
    by_precision = {}
    for record in records:
        by_precision.setdefault(record["config"]["compute"]["precision"], []).append(record)
    assert len(by_precision["fp32"]) == len(by_precision["bf16"]) == 2
    keys = {
        precision: {key for r in group for key in (r["cell_id"], *r["keys"].values())}
        for precision, group in by_precision.items()
    }
    assert all(r["status"] == "ok" for r in records)
    assert len(keys["fp32"]) == len(keys["bf16"]) == 6  # 2 cells and their repairs, A and B
    assert not keys["fp32"] & keys["bf16"]


def test_autocast_context_is_none_for_fp32():
    with autocast(CPU, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(CPU, "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError):
        autocast(CPU, "auto")


@pytest.mark.slow
def test_compiled_training_follows_eager_training():
    """torch.compile (inductor, about 30 s to compile on 2 cores) trains the same model:
    the same batches, the same losses up to the fused kernels' rounding."""
    eager, compiled = tiny_model(), tiny_model()
    expected = train(eager, "fp32", epochs=2)
    got = train(compiled, "fp32", epochs=2, compile=True)
    assert got == pytest.approx(expected, rel=1e-4)
    for a, b in zip(eager.state_dict().values(), compiled.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)
