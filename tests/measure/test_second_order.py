"""richness.measure.second_order: the second-order term and the per-layer loss decrease."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from richness.build import build_optimizer, setup
from richness.config import RunConfig
from richness.measure.second_order import (
    SecondOrderRecorder,
    layer_loss_decrease,
    layer_of,
    second_order_norms,
)
from richness.train import train


def _config(width: int = 32, lr: float = 0.05, steps: int = 3, arch: str = "linear") -> RunConfig:
    model = (
        {"kind": "linear"}
        if arch == "linear"
        else {"kind": "mlp", "depth": 3, "activation": "relu", "bias": True}
    )
    return RunConfig.parse(
        {
            "model": model,
            "data": {
                "kind": "synthetic",
                "teacher": "linear",
                "d_in": 6,
                "d_out": 3,
                "n_train": 16,
                "n_test": 8,
                "n_probe": 8,
                "seed": 0,
            },
            "width": width,
            "seed": 1,
            "r": 0.5,
            "gauge": "stp",
            "center": True,
            "train": {"kind": "sgd", "lr": lr, "steps": steps},
            "measure": {"steps": list(range(steps + 1)), "metrics": ["default"]},
            "dtype": "float64",
        }
    )


def _perturbed(model: nn.Module, scale: float, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: v.detach() + scale * torch.randn(v.shape, generator=g, dtype=v.dtype)
        for k, v in model.named_parameters()
    }


def test_second_order_is_the_even_part_of_a_cubic() -> None:
    # the 3-layer linear net is a cubic in θ: f(θ0 + tΔ) = f0 + t·JΔ + t²·S + t³·T exactly, so
    # ½Δᵀ∇²fΔ = (f(θ0+Δ) + f(θ0−Δ) − 2f(θ0))/2
    model, data = setup(_config())
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    theta1 = _perturbed(model, 0.1)
    minus = {k: 2 * theta0[k] - theta1[k] for k in theta0}
    x = data.x_probe
    with torch.no_grad():
        f = {
            name: functional_call(model, p, (x,))
            for name, p in (("0", theta0), ("+", theta1), ("-", minus))
        }
    even = 0.5 * (f["+"] + f["-"] - 2 * f["0"])  # (N, O)
    expected = even.pow(2).sum(1).mean().sqrt()
    out = second_order_norms(model, theta0, x, theta1)
    torch.testing.assert_close(out["second_order"], expected, rtol=1e-10, atol=0)
    df = (f["+"] - f["0"]).pow(2).sum(1).mean().sqrt()
    torch.testing.assert_close(out["df"], df, rtol=1e-12, atol=0)
    assert out["lin_gap"] > 0 and out["second_order"].dtype == torch.float64


def test_a_model_linear_in_its_parameters_has_no_second_order() -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 3).double()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = second_order_norms(
        model, theta0, torch.randn(7, 5, dtype=torch.float64), _perturbed(model, 0.3)
    )
    assert float(out["second_order"]) == 0.0
    assert float(out["lin_gap"]) < 1e-14 < float(out["df"])


def test_layer_of_names() -> None:
    assert layer_of("layers.1.parametrizations.weight.original") == "layers.1"
    assert layer_of("layers.0.bias") == "layers.0"
    assert layer_of("blocks.2.fc.weight") == "blocks.2.fc"


def test_layer_decrease_is_lr_times_squared_gradient_and_a_frozen_layer_gives_zero() -> None:
    config = _config(arch="mlp")
    model, data = setup(config)
    opt = build_optimizer(config, model)
    for group in opt.param_groups:  # freeze the hidden layer (weight and bias)
        if group["layer"].startswith("layers.1."):
            group["lr"] = 0.0
    previous = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss = 0.5 * (model(data.x_train) - data.y_train).pow(2).sum(1).mean()
    loss.backward()
    expected: dict[str, float] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            name = next(k for k, q in model.named_parameters() if q is p)
            layer = layer_of(name)
            expected[layer] = expected.get(layer, 0.0) + group["lr"] * float(p.grad.pow(2).sum())
    opt.step()
    got = layer_loss_decrease(model, previous)
    assert list(got) == ["layers.0", "layers.1", "layers.2"]
    for layer, value in got.items():
        assert float(value) == pytest.approx(expected[layer], rel=1e-12)
    assert float(got["layers.1"]) == 0.0 and float(got["layers.0"]) > 0


def test_layer_decrease_needs_every_parameter() -> None:
    model, _ = setup(_config())
    with pytest.raises(ValueError, match="no entry for parameter"):
        layer_loss_decrease(model, {})


def test_recorder_in_the_loop_sums_to_the_loss_decrease_at_small_lr() -> None:
    # first order: L(t−1) − L(t) = Σ_ℓ D_ℓ(t) + O(lr²)
    config = _config(width=64, lr=0.005, steps=3, arch="mlp")
    model, data = setup(config)
    recorder = SecondOrderRecorder(model, data.x_probe)
    outcome = train(
        model,
        data,
        build_optimizer(config, model),
        steps=3,
        meter=recorder,
        measure_steps=range(4),
        center=True,
        seed=1,
        flatten=True,
    )
    assert outcome.status == "done"
    losses = [v for _, _, q, v in outcome.rows if q == "loss"]
    keys = {q for _, _, q, _ in outcome.rows}
    assert {"loss_decrease", "second_order", "lin_gap", "df"} <= keys
    # the loop's "loss" row at step t is the loss its step t computed, L(θ_{t−1})
    for t in (1, 2):
        first_order = sum(recorder.decrease[t].values())
        assert first_order > 0
        assert losses[t] - losses[t + 1] == pytest.approx(first_order, rel=0.05)
    assert set(recorder.second_order) == {1, 2, 3}
    assert 0 < recorder.second_order[3]["second_order"] < recorder.second_order[3]["df"]
