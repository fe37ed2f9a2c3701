"""The input-Hessian eigenvalue against brute force: the full Hessian of each sample by
torch.autograd.functional.hessian (float64) and its eigenvalues by eigvalsh."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds import MetricContext
from mcbench.kinds.data import ImageSet, as_batch
from mcbench.testing import check_plugin
from mcbench.toolkit import hessian
from mcbench.toolkit.evaluation import predict
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench_plugins.metrics.input_hessian_eig import InputHessianEig

CLASSES = 5
SHAPE = (2, 4, 4)
REL = 1e-4


def relu_net(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        Normalize((0.5, 0.4), (0.3, 0.2)),
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, CLASSES),
    )
    return net.double().eval()


def smooth_net(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.GELU(),
        nn.Flatten(),
        nn.Linear(64, 8),
        nn.Softplus(),
        nn.Linear(8, CLASSES),
    )
    with torch.no_grad():  # larger weights: curvature of the activations dominates
        for p in net.parameters():
            p.mul_(3)
    return net.double().eval()


class HiddenTanh(nn.Module):
    """A smooth function in forward that a look at the leaf modules does not see."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(32, 8)

    def forward(self, x):
        return torch.tanh(2 * self.linear(x))


class DisguisedNormalize(Normalize):
    """A Normalize whose forward is smooth."""

    def __init__(self):
        super().__init__((0.5,) * 2, (0.25,) * 2)

    def forward(self, x):
        return torch.tanh((x - self.mean) / self.std)


class LookalikeNormalize(nn.Module):
    """Buffers mean and std and no parameters, like Normalize, but another function."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.5))
        self.register_buffer("std", torch.tensor(0.25))

    def forward(self, x):
        return torch.tanh((x - self.mean) / self.std)


def hidden_tanh_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), HiddenTanh(), nn.Linear(8, CLASSES)).double().eval()


def disguised_net() -> nn.Module:
    torch.manual_seed(2)
    return (
        nn.Sequential(
            DisguisedNormalize(), nn.Flatten(), nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, CLASSES)
        )
        .double()
        .eval()
    )


def inputs(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand((n, *SHAPE), generator=g, dtype=torch.float64),
        torch.randint(0, CLASSES, (n,), generator=g),
    )


def brute_force_spectra(model, x, y) -> list[torch.Tensor]:
    out = []
    for xi, yi in zip(x.contiguous(), y):  # channels-last float64 is slow on CPUs
        loss = lambda z: F.cross_entropy(model(z.unsqueeze(0)), yi.view(1))
        h = torch.autograd.functional.hessian(loss, xi, vectorize=True).reshape(xi.numel(), -1)
        out.append(torch.linalg.eigvalsh((h + h.T) / 2))
    return out


def brute_force_top(model, x, y) -> torch.Tensor:
    return torch.stack([s[-1] for s in brute_force_spectra(model, x, y)])


def assert_close(values, expected, rel=REL):
    error = ((values - expected).abs() / expected.abs()).max()
    assert error < rel, f"relative error {error:.3g}: {values.tolist()} vs {expected.tolist()}"


def metric_context(model, n=6, seed=0, notes=None):
    """A context to score MODEL on N random images; what the metric notes goes to NOTES."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *SHAPE), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    data = ImageSet(images, labels)
    ctx = MetricContext(
        model=model,
        clean=data,
        triggered=None,
        num_classes=CLASSES,
        device=torch.device("cpu"),
        batch_size=4,
        predict=predict,
        note=({} if notes is None else notes).__setitem__,
    )
    return ctx, as_batch(images).double(), labels


def test_exact_matches_brute_force_on_relu_network():
    model, (x, y) = relu_net(), inputs()
    assert hessian.is_piecewise_linear(model)
    assert_close(hessian.exact_top_eigenvalue(model, x, y), brute_force_top(model, x, y))


def test_auto_picks_exact_on_relu_network():
    model = relu_net()
    ctx, x, y = metric_context(model, notes=(noted := {}))
    value = InputHessianEig(samples=0, chunk=4).compute(ctx)
    notes = noted["input_hessian_eig"]
    assert notes["method"] == "exact" and notes["samples"] == 6
    assert notes["check_error"] < 1e-10
    expected = brute_force_top(model, x, y)
    assert abs(value - float(expected.mean())) < REL * float(expected.mean())


def test_smooth_hessian_is_indefinite_and_lanczos_matches():
    model, (x, y) = smooth_net(), inputs()
    spectra = brute_force_spectra(model, x, y)
    assert all(float(s[0]) < -1e-3 * float(s[-1].abs()) for s in spectra), (
        "the smooth network's Hessian should have negative eigenvalues"
    )
    estimate = hessian.lanczos_top_eigenvalue(
        model, x, y, generator=torch.Generator().manual_seed(0)
    )
    assert_close(estimate.values, torch.stack([s[-1] for s in spectra]))
    assert float(estimate.residuals.max()) < 1e-2 * float(estimate.values.abs().min())
    # the Gauss-Newton part alone misses the activations' curvature
    gauss_newton = hessian.exact_top_eigenvalue(model, x, y)
    assert ((gauss_newton - estimate.values).abs() > 1e-2 * estimate.values.abs()).any()


def test_auto_picks_lanczos_on_smooth_network():
    model = smooth_net()
    assert hessian.unknown_modules(model) == ["1", "4"]
    ctx, x, y = metric_context(model, notes=(noted := {}))
    value = InputHessianEig(samples=0).compute(ctx)
    notes = noted["input_hessian_eig"]
    assert notes["method"] == "lanczos" and "GELU" not in notes["reason"]
    assert notes["iterations"] <= 20 and notes["max_residual"] >= 0
    expected = brute_force_top(model, x, y)
    assert abs(value - float(expected.mean())) < REL * abs(float(expected.mean()))


def test_power_iteration_converges_on_psd_hessian():
    model, (x, y) = relu_net(), inputs()
    estimate = hessian.power_top_eigenvalue(
        model, x, y, iterations=300, tol=1e-12, generator=torch.Generator().manual_seed(0)
    )
    assert_close(estimate.values, brute_force_top(model, x, y))
    assert estimate.iterations < 300


def test_normalisation_is_known_by_its_type_not_by_its_buffers():
    net = nn.Sequential(nn.Flatten(), nn.Linear(32, CLASSES))
    wrapped = NormalizedNetwork(Normalize((0.5, 0.4), (0.3, 0.2)), net)
    assert hessian.unknown_modules(wrapped) == []
    lookalike = nn.Sequential(LookalikeNormalize(), nn.Flatten(), nn.Linear(32, CLASSES))
    assert hessian.unknown_modules(lookalike) == ["0"]
    assert hessian.unknown_modules(disguised_net()) == ["0"]  # forward overridden


@pytest.mark.parametrize("build", [hidden_tanh_net])
def test_auto_detects_hidden_smooth_function(build):
    model = build()
    assert hessian.is_piecewise_linear(model)  # the leaf modules look piecewise linear
    ctx, x, y = metric_context(model, notes=(noted := {}))
    value = InputHessianEig(samples=0).compute(ctx)
    notes = noted["input_hessian_eig"]
    assert notes["method"] == "lanczos" and notes["check_error"] > 1e-3
    assert "not piecewise linear" in notes["reason"]
    expected = brute_force_top(model, x, y)
    assert abs(value - float(expected.mean())) < REL * abs(float(expected.mean()))


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_sample_value_does_not_depend_on_batch(method):
    model = relu_net() if method == "exact" else smooth_net()
    x, y = inputs(n=5)
    compute = {
        "exact": lambda a, b: hessian.exact_top_eigenvalue(model, a, b),
        "lanczos": lambda a, b: (
            hessian.lanczos_top_eigenvalue(
                model, a, b, iterations=32, tol=0, generator=torch.Generator().manual_seed(3)
            ).values
        ),
    }[method]
    batch = compute(x, y)
    alone = torch.cat([compute(x[i : i + 1], y[i : i + 1]) for i in range(len(x))])
    assert_close(batch, alone, rel=1e-9)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_iterative_methods_are_seeded(method):
    model, (x, y) = smooth_net(), inputs()
    run = {"lanczos": hessian.lanczos_top_eigenvalue, "power": hessian.power_top_eigenvalue}[method]
    first, second, other = (
        run(model, x, y, 3, 0.0, torch.Generator().manual_seed(s)).values for s in (0, 0, 1)
    )
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_hvp_matches_brute_force_hessian():
    model, (x, y) = smooth_net(), inputs(n=2)
    v = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    product = hessian.hvp(model, x, y, v)
    for i in range(len(x)):
        loss = lambda z: F.cross_entropy(model(z.unsqueeze(0)), y[i].view(1))
        h = torch.autograd.functional.hessian(loss, x[i]).reshape(x[i].numel(), -1)
        assert torch.allclose(product[i].flatten(), h @ v[i].flatten(), rtol=1e-9, atol=1e-12)


def test_metric_uses_first_samples_and_records_method():
    model = relu_net()
    ctx, x, y = metric_context(model, n=6, notes=(noted := {}))
    value = InputHessianEig(method="exact", samples=4, chunk=3).compute(ctx)
    assert noted["input_hessian_eig"] == {"requested": "exact", "samples": 4, "method": "exact"}
    assert abs(value - float(brute_force_top(model, x[:4], y[:4]).mean())) < REL * value


def test_metric_leaves_model_unchanged():
    model = relu_net().train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    model[1].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    for method in ("auto", "lanczos", "power"):
        ctx, _, _ = metric_context(model)
        InputHessianEig(method=method, iterations=3).compute(ctx)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(m.training for m in model.modules())


def test_float32_model_close_to_float64():
    model = relu_net()
    ctx64, _, _ = metric_context(model)
    ctx32, _, _ = metric_context(relu_net().float())
    expected = InputHessianEig().compute(ctx64)
    assert abs(InputHessianEig().compute(ctx32) - expected) < 1e-4 * expected


@pytest.mark.parametrize("method", ["auto", "lanczos"])
def test_works_under_inference_mode(method):
    ctx, _, _ = metric_context(relu_net())
    expected = InputHessianEig(method=method).compute(ctx)
    with torch.inference_mode():
        assert InputHessianEig(method=method).compute(ctx) == pytest.approx(expected, rel=1e-9)


def test_empty_data_gives_nan():
    ctx, _, _ = metric_context(relu_net(), n=0)
    assert torch.isnan(torch.tensor(InputHessianEig().compute(ctx)))


def test_contract():
    check_plugin(InputHessianEig)
    check_plugin(InputHessianEig, method="lanczos")


@pytest.mark.parametrize(
    "params",
    [
        {"method": "newton"},
        {"samples": -1},
        {"chunk": 0},
        {"iterations": 0},
        {"tol": -1.0},
        {"tol": float("nan")},
    ],
)
def test_bad_parameters(params):
    with pytest.raises(ValueError):
        InputHessianEig(**params)
