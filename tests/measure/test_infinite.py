"""Tests for richness.measure.infinite: closed-form kernels vs neural-tangents and Monte Carlo."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from richness.measure.infinite import (
    infinite_nngp,
    infinite_ntk,
    kernel_regression,
    ntk_predictor,
)
from richness.measure.linearize import LinearizedModel
from richness.measure.ntk import empirical_ntk

F64 = torch.float64
REFERENCE = json.loads((Path(__file__).parent / "nt_reference.json").read_text())


def inputs(n: int, d: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize(
    "case", REFERENCE["cases"], ids=lambda c: f"{c['activation']}-L{c['depth']}-w{c['w_std']}"
)
def test_matches_neural_tangents(case: dict) -> None:
    # Values from tests/measure/make_nt_reference.py (neural-tangents 0.6.5, float64).
    x1, x2 = np.array(REFERENCE["x1"]), np.array(REFERENCE["x2"])
    args = (case["depth"], case["activation"], case["w_std"], case["b_std"])
    nngp, ntk = infinite_nngp(x1, x2, *args), infinite_ntk(x1, x2, *args)
    assert ntk.shape == (4, 3) and ntk.dtype == F64
    np.testing.assert_allclose(nngp.numpy(), case["nngp"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ntk.numpy(), case["ntk"], rtol=1e-12, atol=1e-14)


def test_linear_depth_one_closed_form() -> None:
    x1, x2 = inputs(4), inputs(3, seed=2)
    expected = 2.25 * (x1 @ x2.T) / 6 + 0.09
    for fn in (infinite_ntk, infinite_nngp):
        torch.testing.assert_close(fn(x1, x2, 1, "linear", 1.5, 0.3), expected)


@pytest.mark.parametrize("activation", ["linear", "relu", "erf"])
def test_symmetric_psd(activation: str) -> None:
    x = inputs(8)
    x[3] = 0.0  # a zero input is handled (ReLU angle convention of neural-tangents)
    for fn in (infinite_ntk, infinite_nngp):
        k = fn(x, depth=3, activation=activation, b_std=0.1)
        torch.testing.assert_close(k, k.T, rtol=0, atol=1e-14)
        assert torch.linalg.eigvalsh(k).min() > -1e-12
        torch.testing.assert_close(fn(x, x, 3, activation, 1.0, 0.1), k)


class Multiplier(nn.Module):
    def __init__(self, g: float) -> None:
        super().__init__()
        self.register_buffer("g", torch.tensor(g, dtype=F64))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.g * w


def ntk_mlp(d: int, width: int, depth: int, seed: int, w_std: float = 1.0) -> nn.Module:
    """NTK parameterization: W ~ N(0, 1), forward w_std/√fan_in · W h (as a parametrization)."""
    g = torch.Generator().manual_seed(seed)
    dims = [d] + [width] * (depth - 1) + [1]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        layer = nn.Linear(fan_in, fan_out, bias=False, dtype=F64)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(fan_out, fan_in, generator=g, dtype=F64))
        parametrize.register_parametrization(layer, "weight", Multiplier(w_std / math.sqrt(fan_in)))
        layers += [layer] if i == 0 else [nn.ReLU(), layer]
    return nn.Sequential(*layers)


def relative_error(width: int, seeds: tuple[int, ...], x: torch.Tensor) -> float:
    k_inf = infinite_ntk(x, depth=3, activation="relu")
    errors = []
    for seed in seeds:
        k = empirical_ntk(ntk_mlp(x.shape[1], width, 3, seed), x, trace=True, method="gram")
        errors.append(float((k - k_inf).norm() / k_inf.norm()))
    return sum(errors) / len(errors)


def test_wide_relu_network_ntk_converges_to_the_infinite_ntk() -> None:
    # NTK fluctuations are O(1/√width): ~15% at 256, ~3% at 4096 (depth 3, two seeds).
    x = inputs(5, d=8)
    narrow, wide = relative_error(256, (0, 1), x), relative_error(4096, (0, 1), x)
    assert wide < 0.06
    assert wide < 0.5 * narrow


def test_readout_kernel_converges_to_the_nngp() -> None:
    # The readout's own NTK term is w_std²/n φ(h)·φ(h'): the NNGP of the network without readout
    # bias, which is the infinite-width NNGP.
    x = inputs(5, d=8)
    model = ntk_mlp(8, 4096, 3, seed=0, w_std=1.3)
    k = empirical_ntk(
        model,
        x,
        trace=True,
        method="gram",
        lr_weights={n: float(n.startswith("4.")) for n, _ in model.named_parameters()},
    )
    k_inf = infinite_nngp(x, depth=3, activation="relu", w_std=1.3)
    assert float((k - k_inf).norm() / k_inf.norm()) < 0.05


@pytest.mark.slow
def test_ntk_convergence_many_seeds() -> None:
    x = inputs(8, d=8)
    errors = {w: relative_error(w, (0, 1, 2, 3, 4, 5), x) for w in (256, 1024, 4096)}
    assert errors[4096] < errors[1024] < errors[256]
    assert errors[4096] < 0.05


def test_kernel_regression_interpolates_and_ridge_shrinks() -> None:
    x, y = inputs(6), inputs(6, d=2, seed=3)
    k = infinite_ntk(x, activation="erf")
    torch.testing.assert_close(kernel_regression(k, k, y), y)
    torch.testing.assert_close(kernel_regression(k, k, y[:, 0]), y[:, 0])
    shrunk = kernel_regression(k, k, y, ridge=10.0)
    assert shrunk.norm() < y.norm()
    # An (N, N, O, O) kernel K ⊗ I regresses each output on its own.
    k4 = k[:, :, None, None] * torch.eye(2, dtype=F64)
    torch.testing.assert_close(
        kernel_regression(k4, k4, y, ridge=0.5), kernel_regression(k, k, y, ridge=0.5)
    )


def test_ntk_predictor_is_kernel_regression_with_the_infinite_ntk() -> None:
    x_train, x_test = inputs(6), inputs(4, seed=5)
    y = inputs(6, d=1, seed=3)[:, 0]
    pred = ntk_predictor(x_train, y, x_test, depth=2, activation="erf", b_std=0.2)
    k_tt = infinite_ntk(x_train, depth=2, activation="erf", b_std=0.2)
    k_st = infinite_ntk(x_test, x_train, depth=2, activation="erf", b_std=0.2)
    torch.testing.assert_close(pred, k_st @ torch.linalg.solve(k_tt, y))
    torch.testing.assert_close(ntk_predictor(x_train, y, x_train, depth=2), y)


def test_trained_linearized_network_converges_to_ntk_regression() -> None:
    # Gradient descent on MSE of the linearized network converges to kernel regression with its
    # empirical NTK (from f0): f(x*) = f0(x*) + K(x*, X) K(X, X)⁻¹ (y − f0(X)).
    model = ntk_mlp(6, 32, 2, seed=0)
    x, x_test = inputs(5), inputs(3, seed=5)
    y = inputs(5, d=1, seed=3)
    lin = LinearizedModel(model)
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    for _ in range(400):
        opt.zero_grad()
        (0.5 * ((lin(x) - y) ** 2).sum()).backward()
        opt.step()
    k_tt, k_st = empirical_ntk(model, x), empirical_ntk(model, x_test, x)
    with torch.no_grad():
        expected = model(x_test) + kernel_regression(k_tt, k_st, y - model(x))
        torch.testing.assert_close(lin(x_test), expected, rtol=1e-6, atol=1e-8)


def test_errors_name_the_field() -> None:
    x = inputs(3)
    with pytest.raises(ValueError, match="activation"):
        infinite_ntk(x, activation="tanh")
    with pytest.raises(ValueError, match="depth"):
        infinite_ntk(x, depth=0)
    with pytest.raises(ValueError, match="x2"):
        infinite_nngp(x, inputs(2, d=5))
    with pytest.raises(ValueError, match="x1"):
        infinite_ntk(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="w_std"):
        infinite_ntk(x, w_std=-1.0)
    with pytest.raises(ValueError, match="ridge"):
        kernel_regression(torch.eye(3), torch.eye(3), torch.ones(3), ridge=-1.0)
    with pytest.raises(ValueError, match="y_train"):
        kernel_regression(torch.eye(3), torch.eye(3), torch.ones(4))
    with pytest.raises(ValueError, match="k_test_train"):
        kernel_regression(torch.eye(3), torch.ones(2, 4), torch.ones(3))
