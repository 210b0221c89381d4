"""Tests for richness.measure.ntk: the empirical NTK, its methods, weights and kernel movement."""

from __future__ import annotations

import copy

import pytest
import torch
from _scaled import Scale
from torch import nn
from torch.nn.utils import parametrize

from richness.measure import _gram
from richness.measure.ntk import (
    NtkMethod,
    empirical_ntk,
    kernel_alignment,
    kernel_distance,
    lr_weights_from_optimizer,
)

RTOL = 1e-6  # all methods agree to this relative error in float64 (measured: ~1e-15)
METHODS = [m.value for m in NtkMethod]
F64 = torch.float64


def make_mlp(seed: int = 0, d_in: int = 5, width: int = 16, d_out: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(d_in, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.Tanh(),
        nn.Linear(width, d_out),
    ).to(F64)
    parametrize.register_parametrization(model[2], "weight", Scale(0.5))
    return model


def make_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).to(F64)


def inputs(kind: str, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n, 5) if kind == "mlp" else (n, 2, 6, 6)
    return torch.randn(shape, generator=g, dtype=F64)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_linear_model_closed_form() -> None:
    # f(x) = W x: J_W = I ⊗ x, so K[i, j] = (x_i · x_j) I_O.
    model = nn.Linear(4, 3, bias=False).to(F64)
    x = inputs("mlp", 6)[:, :4]
    K = empirical_ntk(model, x)
    assert K.shape == (6, 6, 3, 3)
    expected = (x @ x.T)[:, :, None, None] * torch.eye(3, dtype=F64)
    torch.testing.assert_close(K, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_deep_linear_model_closed_form(method: str) -> None:
    # f(x) = W2 W1 x: K = (x·x') W2 W2ᵀ + (W1 x · W1 x') I.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 7, bias=False), nn.Linear(7, 2, bias=False)).to(F64)
    x, x2 = inputs("mlp", 5)[:, :4], inputs("mlp", 3, seed=2)[:, :4]
    w1, w2 = model[0].weight.detach(), model[1].weight.detach()
    expected = (x @ x2.T)[:, :, None, None] * (w2 @ w2.T) + ((x @ w1.T) @ (x2 @ w1.T).T)[
        :, :, None, None
    ] * torch.eye(2, dtype=F64)
    torch.testing.assert_close(empirical_ntk(model, x, x2, method=method), expected)


def test_symmetric_psd() -> None:
    model, x = make_mlp(), inputs("mlp", 8)
    K = empirical_ntk(model, x)
    mat = K.permute(0, 2, 1, 3).reshape(8 * 3, 8 * 3)
    torch.testing.assert_close(mat, mat.T, rtol=0, atol=1e-12)
    eig = torch.linalg.eigvalsh(mat)
    assert eig.min() > -1e-10 * eig.max()


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("cross", [False, True])
def test_all_methods_agree(kind: str, cross: bool) -> None:
    model = make_mlp() if kind == "mlp" else make_cnn()
    x1 = inputs(kind, 6)
    x2 = inputs(kind, 4, seed=2) if cross else None
    reference = empirical_ntk(model, x1, x2, method="jacobian")
    assert reference.shape == (6, 4 if cross else 6, 3, 3)
    for method in METHODS[1:]:
        K = empirical_ntk(model, x1, x2, method=method)
        assert rel(K, reference) < RTOL, method


@pytest.mark.parametrize("method", METHODS)
def test_trace_is_mean_of_diagonal(method: str) -> None:
    model, x1, x2 = make_mlp(), inputs("mlp", 5), inputs("mlp", 4, seed=2)
    full = empirical_ntk(model, x1, x2, method=method)
    traced = empirical_ntk(model, x1, x2, method=method, trace=True)
    assert traced.shape == (5, 4)
    assert rel(traced, full.diagonal(dim1=2, dim2=3).mean(-1)) < 1e-12


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_size", [2, 3])
@pytest.mark.parametrize("trace", [False, True])
def test_chunking_gives_same_kernel(method: str, chunk_size: int, trace: bool) -> None:
    model, x1, x2 = make_mlp(), inputs("mlp", 7), inputs("mlp", 5, seed=2)
    for second in (None, x2):
        whole = empirical_ntk(model, x1, second, method=method, trace=trace)
        chunked = empirical_ntk(
            model, x1, second, method=method, trace=trace, chunk_size=chunk_size
        )
        assert rel(chunked, whole) < 1e-12


def one_hot_weights(model: nn.Module, name: str) -> dict[str, float]:
    return {n: float(n == name) for n, _ in model.named_parameters()}


@pytest.mark.parametrize("method", METHODS)
def test_lr_weights_scale_per_layer(method: str) -> None:
    model, x = make_mlp(), inputs("mlp", 5)
    names = [n for n, _ in model.named_parameters()]
    parts = {
        n: empirical_ntk(model, x, method=method, lr_weights=one_hot_weights(model, n))
        for n in names
    }
    total = empirical_ntk(model, x, method=method)
    assert rel(sum(parts.values()), total) < 1e-12
    etas = {n: 0.5 + i for i, n in enumerate(names)}
    weighted = empirical_ntk(model, x, method=method, lr_weights=etas)
    assert rel(weighted, sum(etas[n] * parts[n] for n in names)) < 1e-12
    # A parametrized weight may be named as the layer sees it.
    alias = empirical_ntk(
        model, x, method=method, lr_weights={**one_hot_weights(model, ""), "2.weight": 1.0}
    )
    assert rel(alias, parts["2.parametrizations.weight.original"]) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_lr_weighted_kernel_is_gauge_invariant(method: str) -> None:
    # (g, σ, η) -> (θg, σ/θ, η/θ²) leaves η g² J_eff J_effᵀ unchanged (THEORY.md §3).
    base, x = make_mlp(), inputs("mlp", 4)
    moved = copy.deepcopy(base)
    theta = 3.0
    parametrize.register_parametrization(moved[0], "weight", Scale(theta))
    with torch.no_grad():
        moved[0].parametrizations.weight.original.div_(theta)
    torch.testing.assert_close(moved(x), base(x))
    eta = 0.2
    k_base = empirical_ntk(base, x, method=method, lr_weights={"0.weight": eta})
    k_moved = empirical_ntk(moved, x, method=method, lr_weights={"0.weight": eta / theta**2})
    assert rel(k_moved, k_base) < 1e-12
    assert rel(empirical_ntk(moved, x, method=method), k_base) > 1e-3  # unweighted: not invariant


def test_lr_weights_from_optimizer() -> None:
    model = make_mlp()
    names = [n for n, _ in model.named_parameters()]
    groups = [
        {"params": [model[0].weight, model[0].bias], "lr": 0.5},
        {"params": [model[2].parametrizations.weight.original], "lr": 0.25},
    ]
    weights = lr_weights_from_optimizer(model, torch.optim.SGD(groups, lr=1.0))
    assert weights == {
        "0.weight": 0.5,
        "0.bias": 0.5,
        "2.bias": 0.0,
        "2.parametrizations.weight.original": 0.25,
        "4.weight": 0.0,
        "4.bias": 0.0,
    }
    assert list(weights) == names


def test_params_argument_evaluates_elsewhere() -> None:
    model, x = make_mlp(), inputs("mlp", 4)
    snapshot = copy.deepcopy(model)
    k0 = empirical_ntk(model, x)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3)
    assert rel(empirical_ntk(model, x), k0) > 1e-3
    assert rel(empirical_ntk(model, x, params=snapshot), k0) < 1e-14
    assert rel(empirical_ntk(model, x, params=dict(snapshot.named_parameters())), k0) < 1e-14


class Squeeze(nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0]


@pytest.mark.parametrize("method", METHODS)
def test_one_dimensional_output(method: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)).to(F64)
    x = inputs("mlp", 4)
    two_d = empirical_ntk(model, x, method=method)
    one_d = empirical_ntk(nn.Sequential(model, Squeeze()), x, method=method)
    assert two_d.shape == one_d.shape == (4, 4, 1, 1)
    assert rel(one_d, two_d) < 1e-12
    assert empirical_ntk(model, x, method=method, trace=True).shape == (4, 4)


def test_dtype_and_device_follow_the_model() -> None:
    model = make_mlp().float()
    x = inputs("mlp", 3)  # float64 inputs are cast to the model's float32
    K = empirical_ntk(model, x, method="gram")
    assert K.dtype == torch.float32 and K.device == next(model.parameters()).device
    assert not K.requires_grad


class Shared(nn.Module):
    """A layer applied twice (weight sharing) and a 3-d input: gram must fall back."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(5, 5)
        self.seq = nn.Linear(5, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.a(torch.tanh(self.a(x))))
        h = torch.tanh(self.seq(torch.stack([h, 2 * h], dim=1))).mean(1)  # (N, 2, 5) input
        return self.out(h)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(5, 5, bias=False)
        self.out = nn.Linear(5, 5, bias=False)
        self.out.weight = self.inp.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.inp(x)))


@pytest.mark.parametrize(("cls", "structured"), [(Shared, {"seq", "out"}), (Tied, set())])
def test_gram_falls_back_where_the_rule_does_not_hold(
    cls: type[nn.Module], structured: set[str]
) -> None:
    torch.manual_seed(0)
    model, x = cls().to(F64), inputs("mlp", 4)
    assert rel(empirical_ntk(model, x, method="gram"), empirical_ntk(model, x)) < RTOL
    theta = dict(model.named_parameters())
    plan = _gram.make_plan(model, theta, dict.fromkeys(theta, 1.0), x[:2])
    assert {layer.module for layer in plan.layers} == structured


@pytest.mark.parametrize(
    ("conv", "structured"),
    [
        (nn.Conv2d(2, 3, 3, stride=2, padding=1), True),
        (nn.Conv2d(2, 3, 3, padding="same", dilation=2), True),
        (nn.Conv2d(2, 3, (2, 3), padding="valid", bias=False), True),
        (nn.Conv2d(2, 4, 3, groups=2), False),
        (nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), False),
        (nn.Conv2d(2, 3, (2, 3), padding="same"), False),  # asymmetric padding
    ],
    ids=["stride", "same-dilated", "rect-nobias", "groups", "circular", "same-even"],
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
def test_gram_convolutions(conv: nn.Conv2d, structured: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.LazyLinear(2)).to(F64)
    x = inputs("cnn", 4)
    model(x)  # materialize the lazy readout
    assert rel(empirical_ntk(model, x, method="gram"), empirical_ntk(model, x)) < RTOL
    theta = dict(model.named_parameters())
    plan = _gram.make_plan(model, theta, dict.fromkeys(theta, 1.0), x[:2])
    assert ("0" in {layer.module for layer in plan.layers}) == structured


def test_kernel_distance_and_alignment() -> None:
    model, x = make_mlp(), inputs("mlp", 4)
    k0 = empirical_ntk(model, x)
    assert kernel_distance(k0, k0) == pytest.approx(0.0, abs=1e-12)
    assert kernel_distance(k0, 3.0 * k0) == pytest.approx(0.0, abs=1e-12)
    assert kernel_alignment(k0, -k0) == pytest.approx(-1.0)
    k1 = empirical_ntk(make_mlp(seed=5), x)
    assert 0.0 < kernel_distance(k0, k1) < 1.0
    assert kernel_alignment(k0, k1) == pytest.approx(1.0 - kernel_distance(k0, k1))


def test_errors_name_the_field() -> None:
    model, x = make_mlp(), inputs("mlp", 3)
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(model, x, method="autodiff")
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(model, x, torch.randn(2, 4, dtype=F64))
    with pytest.raises(ValueError, match="chunk_size"):
        empirical_ntk(model, x, chunk_size=0)
    with pytest.raises(ValueError, match="lr_weights"):
        empirical_ntk(model, x, lr_weights={"9.weight": 1.0})
    with pytest.raises(ValueError, match="lr_weights"):
        empirical_ntk(model, x, lr_weights={"0.weight": -1.0})
    with pytest.raises(ValueError, match="lr_weights"):
        empirical_ntk(model, x, lr_weights=dict.fromkeys(one_hot_weights(model, ""), 0.0))
    with pytest.raises(ValueError, match="params"):
        empirical_ntk(model, x, params={"0.weight": model[0].weight})
    with pytest.raises(ValueError, match="k0 and k1"):
        kernel_distance(torch.ones(2, 2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="zero kernel"):
        kernel_alignment(torch.zeros(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="no parameters"):
        empirical_ntk(nn.Tanh(), x)
