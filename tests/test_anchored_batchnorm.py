"""BatchNorm statistics anchored to the endpoints': the correction against its formula
worked out by hand, the endpoints' shares of a point on a path and on a surface in closed
form, the setting, and a tiny benchmark end to end against a by-hand recomputation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.bench.settings import EvalSettings
from mcbench.results.compare import protocol
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench.toolkit.evaluation import anchor_batchnorm, batchnorm_statistics
from mcbench.toolkit.surfaces import corner_weights
from mcbench_plugins.architectures.convnet import ConvNet
from tests import by_hand
from tests.conftest import TINY

CPU = torch.device("cpu")


def net_with_statistics(seed: int) -> nn.Module:
    """Two BatchNorm layers (and one without running statistics) holding random ones."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 1), nn.BatchNorm2d(5),
        nn.BatchNorm2d(5, track_running_stats=False),
    )  # fmt: skip
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.01)
    return model


@settings(max_examples=30, deadline=None)
@given(w=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_the_correction_is_the_weighted_shift_and_geometric_scale(w, seed):
    point, a, b, a_again, b_again = (net_with_statistics(seed + i) for i in range(5))
    before = batchnorm_statistics(point)
    stats = [batchnorm_statistics(m) for m in (a, b, a_again, b_again)]
    anchor_batchnorm(point, (1 - w, w), stats[:2], stats[2:])
    after = batchnorm_statistics(point)
    assert set(after) == {"1", "3"}  # the layer without running statistics is left alone
    for name in after:
        mean, var = (x.double().numpy() for x in before[name])
        (ma, va), (mb, vb), (ra, rva), (rb, rvb) = (
            tuple(x.double().numpy() for x in s[name]) for s in stats
        )
        expected_mean = mean + (1 - w) * (ma - ra) + w * (mb - rb)
        expected_var = var * np.power(va / rva, 1 - w) * np.power(vb / rvb, w)
        np.testing.assert_allclose(after[name][0].numpy(), expected_mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(after[name][1].numpy(), expected_var, rtol=1e-5)


def test_at_an_endpoint_the_model_gets_its_statistics_as_trained():
    trained = net_with_statistics(0)
    again = net_with_statistics(1)  # "recomputed": the point's statistics equal these
    other, other_again = net_with_statistics(2), net_with_statistics(3)
    point = copy.deepcopy(again)
    anchor_batchnorm(
        point,
        (1.0, 0.0),
        [batchnorm_statistics(trained), batchnorm_statistics(other)],
        [batchnorm_statistics(again), batchnorm_statistics(other_again)],
    )
    for name, (mean, var) in batchnorm_statistics(point).items():
        torch.testing.assert_close(mean, batchnorm_statistics(trained)[name][0])
        torch.testing.assert_close(var, batchnorm_statistics(trained)[name][1])


def test_as_many_weights_as_endpoints():
    stats = [batchnorm_statistics(net_with_statistics(0))]
    with pytest.raises(ValueError, match="2 weights for 1 trained"):
        anchor_batchnorm(net_with_statistics(1), (0.5, 0.5), stats, stats)


@given(u=st.floats(0.0, 1.0), v=st.floats(0.0, 1.0))
def test_the_corners_shares_in_closed_form(u, v):
    square = corner_weights("square", (u, v))
    assert square == pytest.approx([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v], abs=1e-6)
    if u + v <= 1:
        triangle = corner_weights("triangle", (u, v))
        assert triangle == pytest.approx([1 - u - v, u, v], abs=1e-6)


# -- the setting -------------------------------------------------------------------------
def test_anchoring_needs_recomputed_statistics():
    with pytest.raises(ValueError, match="needs recalibrate_bn: true"):
        EvalSettings(recalibrate_bn=False, recalibrate_anchored=True)


ANCHORED = TINY.replace("connections: [linear, bezier]", "connections: [linear]").replace(
    "evaluate: {grid: 3}", "evaluate: {grid: 3, recalibrate_anchored: true}"
)


def test_the_setting_is_in_the_key_only_when_set(write_yaml, registry):
    plain = TINY.replace("connections: [linear, bezier]", "connections: [linear]")
    [default] = load_benchmark(write_yaml(plain, "plain.yaml"), registry).cells
    explicit = plain.replace("{grid: 3}", "{grid: 3, recalibrate_anchored: false}")
    [same] = load_benchmark(write_yaml(explicit, "explicit.yaml"), registry).cells
    [anchored] = load_benchmark(write_yaml(ANCHORED, "anchored.yaml"), registry).cells
    assert default.cell_id == same.cell_id != anchored.cell_id
    # the endpoints and the repair are shared: only the evaluation differs
    assert default.endpoint_eval_key("A") == anchored.endpoint_eval_key("A")
    assert default.repair_key() == anchored.repair_key()


def test_a_bad_value_names_the_file_and_key(write_yaml, registry):
    from mcbench.errors import ConfigError

    bad = ANCHORED.replace("recalibrate_anchored: true", "recalibrate_anchored: sometimes")
    with pytest.raises(ConfigError, match="recalibrate_anchored") as e:
        load_benchmark(write_yaml(bad), registry)
    assert "bench.yaml" in str(e.value)


# -- end to end --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ran(tmp_path_factory, registry):
    folder = tmp_path_factory.mktemp("anchored")
    (folder / "bench.yaml").write_text(ANCHORED)
    results = folder / "results"
    bench = load_benchmark(folder / "bench.yaml", registry)
    quiet = lambda description, total: lambda epoch, loss: None  # noqa: E731
    summary = run_benchmark(bench, Store(results), CPU, None, results / "cache", quiet)
    assert not summary.failed
    [cell] = bench.cells
    rec = json.loads((results / "records" / f"{cell.cell_id}.json").read_text())
    return rec, results, cell.dataset.instance.load(None, folder)


def test_the_endpoints_keep_their_statistics_as_trained(ran):
    rec, _, _ = ran
    assert rec["config"]["evaluate"]["recalibrate_anchored"] is True
    path = {p["t"]: p for p in rec["path"]}
    for t, role in ((0.0, "A"), (1.0, "B")):
        for metric in ("clean_accuracy", "attack_success_rate", "loss"):
            assert path[t][metric] == pytest.approx(rec["endpoints"][role][metric], abs=1e-6)


def test_the_midpoint_by_hand(ran):
    """t = 0.5 on the line: the endpoints' mean weights, statistics recomputed on the
    bonafide images, then shifted by the endpoints' mean error in the mean and scaled by the
    geometric mean of their ratios in the variance."""
    rec, results, data = ran
    net = lambda: ConvNet(widths=(8, 16)).build(4, 3, 16)  # noqa: E731
    a, b = (
        by_hand.stored_model(results, "endpoint", rec["keys"][f"endpoint_{r}"], net(), data)
        for r in "AB"
    )
    bonafide = by_hand.bonafide_images(data, rec["config"])
    middle = copy.deepcopy(a)
    with torch.no_grad():
        for (_, p), (_, pa), (_, pb) in zip(
            middle.named_parameters(), a.named_parameters(), b.named_parameters()
        ):
            p.copy_((pa + pb) / 2)
    errors = []
    for endpoint in (a, b):
        again = by_hand.recalibrated(copy.deepcopy(endpoint), bonafide, batch_size=500)
        errors.append(
            {
                name: (m.running_mean - r.running_mean, m.running_var / r.running_var)
                for (name, m), (_, r) in zip(endpoint.named_modules(), again.named_modules())
                if isinstance(m, nn.BatchNorm2d)
            }
        )
    by_hand.recalibrated(middle, bonafide, batch_size=500)
    with torch.no_grad():
        for name, m in middle.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean += (errors[0][name][0] + errors[1][name][0]) / 2
                m.running_var *= (errors[0][name][1] * errors[1][name][1]).sqrt()
    evaluation = by_hand.evaluation_images(data, rec["config"])
    [point] = [p for p in rec["path"] if p["t"] == 0.5]
    assert point["clean_accuracy"] == pytest.approx(by_hand.accuracy(middle, evaluation))


def test_anchored_records_are_another_protocol(ran):
    rec, _, _ = ran
    plain = copy.deepcopy(rec)
    del plain["config"]["evaluate"]["recalibrate_anchored"]
    assert protocol(plain)["evaluate"]["recalibrate_anchored"] is False
    assert protocol(rec)["evaluate"] != protocol(plain)["evaluate"]
