"""Tests for richness.measure.linearize: f_lin, the Taylor terms, and LinearizedModel."""

from __future__ import annotations

import copy

import pytest
import torch
from _scaled import Scale
from torch import nn
from torch.nn.utils import parametrize

from richness.measure.linearize import (
    LinearizedModel,
    linearization_gap,
    linearize,
    second_order_term,
)

F64 = torch.float64


def make_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(4, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 2)
    ).to(F64)
    parametrize.register_parametrization(model[2], "weight", Scale(0.5))
    return model


class RandomFeatures(nn.Module):
    """f(x) = W φ(A x) + b with A a fixed buffer: linear in its parameters (W, b)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("a", torch.randn(16, 4, dtype=F64))
        self.readout = nn.Linear(16, 2).to(F64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(torch.tanh(x @ self.a.T))


def inputs(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=F64)


def direction(model: nn.Module, seed: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(p.shape, generator=g, dtype=F64) for n, p in model.named_parameters()}


def moved(model: nn.Module, v: dict[str, torch.Tensor], eps: float) -> dict[str, torch.Tensor]:
    return {n: p.detach() + eps * v[n] for n, p in model.named_parameters()}


def sgd_steps(model: nn.Module, x: torch.Tensor, steps: int = 5, lr: float = 0.1) -> None:
    y = torch.ones(x.shape[0], 2, dtype=F64)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("cls", [RandomFeatures, lambda: nn.Linear(4, 2).to(F64)])
def test_gap_is_zero_for_a_model_linear_in_its_parameters(cls) -> None:
    model, x = cls(), inputs()
    theta0 = copy.deepcopy(model)
    f_lin = linearize(model)
    sgd_steps(model, x)
    assert (model(x) - theta0(x)).abs().max() > 1e-3  # it did move
    gap = linearization_gap(model, theta0, x)
    assert gap.abs().max() < 1e-12
    torch.testing.assert_close(f_lin(x), model(x), rtol=1e-12, atol=1e-12)


def test_f_lin_is_first_order_exact() -> None:
    # f(θ0 + εv) − f_lin(θ0 + εv) = ε²/2 vᵀ∇²f v + O(ε³): the gap falls 4x when ε halves.
    model, x = make_mlp(), inputs()
    f_lin, v = linearize(model), direction(model)
    gaps = []
    for eps in (1e-2, 5e-3):
        theta = moved(model, v, eps)
        exact = torch.func.functional_call(model, theta, (x,))
        gaps.append(float((exact - f_lin(x, params=theta)).norm()))
    assert gaps[0] / gaps[1] == pytest.approx(4.0, rel=0.05)
    # and it matches a central finite difference of f to first order
    eps = 1e-5
    fd = (
        torch.func.functional_call(model, moved(model, v, eps), (x,))
        - torch.func.functional_call(model, moved(model, v, -eps), (x,))
    ) / (2 * eps)
    jv = (f_lin(x, params=moved(model, v, 1.0)) - model(x)).detach()
    torch.testing.assert_close(jv, fd, rtol=1e-7, atol=1e-9)


def test_f_lin_uses_the_current_parameters() -> None:
    model, x = make_mlp(), inputs()
    f_lin = linearize(model)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    sgd_steps(model, x)
    current = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.testing.assert_close(f_lin(x), f_lin(x, params=current))
    assert (f_lin(x) - f_lin(x, params=theta0)).abs().max() > 1e-4
    # the expansion point stays frozen at θ0 even though the model trained in place
    torch.testing.assert_close(linearize(model, theta0)(x), f_lin(x))
    assert f_lin(x).requires_grad  # differentiable in θ


def test_second_order_term_matches_finite_differences() -> None:
    model, x = make_mlp(), inputs()
    v = direction(model)
    theta0 = {n: p.detach() for n, p in model.named_parameters()}
    term = second_order_term(model, theta0, moved(model, v, 1.0), x)
    eps = 1e-4

    def f(e: float) -> torch.Tensor:
        return torch.func.functional_call(model, moved(model, v, e), (x,)).detach()

    fd = (f(eps) - 2 * f(0.0) + f(-eps)) / eps**2
    assert term.shape == model(x).shape
    torch.testing.assert_close(term, fd, rtol=1e-5, atol=1e-6)
    # the gap is half the second-order term to leading order
    small = moved(model, v, 1e-3)
    gap = linearization_gap(model, theta0, x, params=small)
    half = 0.5 * second_order_term(model, theta0, small, x)
    assert float((gap - half).norm() / gap.norm()) < 1e-2


def test_linearized_model_trains_like_the_linearization() -> None:
    model, x = make_mlp(), inputs(8)
    lin = LinearizedModel(model)
    names = [n for n, _ in model.named_parameters()]
    assert [n for n, _ in lin.named_parameters()] == names
    torch.testing.assert_close(lin(x), model(x))
    # per-layer groups built by name, as an optimizer factory would
    params = dict(lin.named_parameters())
    groups = [{"params": [params[n]], "lr": 0.05 if n.startswith("0.") else 0.2} for n in names]
    opt = torch.optim.SGD(groups, momentum=0.5)
    y = torch.randn(8, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((lin(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    trained = {n: p.detach() for n, p in lin.named_parameters()}
    torch.testing.assert_close(lin(x), linearize(model)(x, params=trained))
    torch.testing.assert_close(lin.params0["0.weight"], model[0].weight.detach())
    assert all(p.grad is None for p in model.parameters())  # the model was not touched


def test_linearized_model_of_a_linear_model_follows_it_exactly() -> None:
    model = RandomFeatures()
    lin, x = LinearizedModel(model), inputs()
    sgd_steps(model, x, steps=10)
    sgd_steps(lin, x, steps=10)
    torch.testing.assert_close(lin(x), model(x), rtol=1e-12, atol=1e-12)


def test_linearized_model_keeps_root_attributes() -> None:
    model = make_mlp()
    model.table = {"r": 0.25}  # metadata an optimizer factory may read
    lin = LinearizedModel(model)
    assert lin.table == {"r": 0.25}
    layer = lin.get_submodule("2")
    assert isinstance(layer, nn.Linear) and parametrize.is_parametrized(layer, "weight")


def test_linearized_model_moves_with_dtype() -> None:
    lin = LinearizedModel(make_mlp()).float()
    assert lin(inputs().float()).dtype == torch.float32


def test_errors_name_the_field() -> None:
    model, x = make_mlp(), inputs()
    with pytest.raises(ValueError, match="params0"):
        linearize(model, {"0.weight": model[0].weight})
    with pytest.raises(ValueError, match="params1"):
        second_order_term(model, model, {"x": torch.zeros(1)}, x)
    with pytest.raises(ValueError, match="params"):
        linearize(model)(x, params={"0.weight": model[0].weight})
    with pytest.raises(ValueError, match=r"params0\['0.weight'\]"):
        LinearizedModel(model, {n: torch.zeros(1) for n, _ in model.named_parameters()})
