"""The Meter's numbers on hand-computable cases (THEORY.md §4)."""

import math

import pytest
import torch
from torch import nn

import richness as rn
from richness.measure.meter import Meter


def _two_layer():
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model[1].weight.copy_(torch.tensor([[1.0, -1.0, 2.0]]))
    return model


def test_two_layer_hand_computation():
    model = _two_layer()
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    meter = Meter(model, x, metrics="all")
    dw1 = torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    dw2 = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        model[0].weight.add_(dw1)
        model[1].weight.add_(dw2)
    m = meter.measure()
    # h1 = W1 x: [1, 2, 3], [0, 1, 1]; Δh1 = ΔW1 x = [0.5, 0, 0], [0, 0, 0]
    assert m["dh/0"] == pytest.approx((0.5 + 0.0) / 2)
    h1_now = torch.tensor([[1.5, 2, 3], [0, 1, 1]], dtype=torch.float64)
    assert m["h_rms/0"] == pytest.approx(h1_now.pow(2).mean().sqrt().item())
    assert m["dh_rms/0"] == pytest.approx(math.sqrt(0.25 / 6))
    # f0 = W2 h1 = [1 - 2 + 6, 0 - 1 + 2] = [5, 1]
    # f = (W2+ΔW2)(h1+Δh1) = [1.5 - 2 + 9, -1 + 3] = [8.5, 2]
    assert m["f0"] == pytest.approx((5 + 1) / 2)
    assert m["df"] == pytest.approx((3.5 + 1) / 2)
    # output layer: own ΔW2 x2 = [3, 1]; passthrough W2(0) Δx2 = [0.5, 0]
    assert m["max_ratio/1"] == pytest.approx(((3 + 1) / 2) / ((0.5 + 0) / 2))
    assert m["dW_fro/0"] == pytest.approx(0.5)
    assert m["dW_op/1"] == pytest.approx(1.0)
    # ΔW2 = [0 0 1]: ‖ΔW2 x‖/(‖ΔW2‖‖x‖) for x = [1.5,2,3] and [0,1,1]
    expected_align = (3 / math.sqrt(1.5**2 + 4 + 9) + 1 / math.sqrt(2)) / 2
    assert m["align/1"] == pytest.approx(expected_align)
    # linear in θ? No: f = W2 W1 x is bilinear, so f − f_lin = ΔW2 ΔW1 x = [0.5·0, 0] … = 0 here
    # because ΔW2 reads coordinate 3 and ΔW1 writes coordinate 1.
    assert m["lin_gap"] == pytest.approx(0.0, abs=1e-12)


def test_lin_gap_is_the_bilinear_term():
    model = _two_layer()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    meter = Meter(model, x, metrics=["df", "lin_gap"])
    with torch.no_grad():
        model[0].weight[0, 0] += 1.0  # Δh1 = [1, 0, 0]
        model[1].weight[0, 0] += 2.0  # ΔW2 reads coordinate 1
    m = meter.measure()
    # f − f_lin = ΔW2 ΔW1 x = 2·1·1 = 2; Δf = W2 Δh1 + ΔW2 h1 + ΔW2 Δh1 = 1 + 2 + 2 = 5
    assert m["df"] == pytest.approx(5.0)
    assert m["lin_gap"] == pytest.approx(2.0 / 5.0)


def test_conv_patches_match_the_conv():
    torch.manual_seed(0)
    model = rn.models.CNN(2, 8, 3, depth=2).double()
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    meter = Meter(model, x, metrics="all")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    m = meter.measure()
    for key in ("max_ratio/convs.1", "align/convs.0", "align_w0/convs.1", "dW_op/convs.1"):
        assert math.isfinite(m[key]) and m[key] > 0
    assert 0 < m["align/convs.0"] <= 1 + 1e-9


def test_meter_on_a_parameterized_model_measures_effective_weights():
    model = rn.parameterize(rn.models.MLP(4, 32, 1), rn.preset("mup"))
    meter = Meter(model, torch.randn(8, 4), metrics="all")
    assert meter.layers == ["layers.0", "layers.1", "layers.2"]
    assert meter.layer_index["layers.2"] == 3
    m = meter.measure()
    assert m["dh/layers.1"] == 0.0 and m["df"] == 0.0


def test_meter_refuses_unknown_metric_and_layer():
    model = rn.models.MLP(4, 8, 1)
    with pytest.raises(ValueError, match="metric 'nope'"):
        Meter(model, torch.randn(2, 4), metrics=["nope"])
    with pytest.raises(ValueError, match="layers"):
        Meter(model, torch.randn(2, 4), layers=["fc9"])


def test_feature_movement_scales_as_n_to_the_r():
    """C2 in miniature: one centered SGD step, slope of ‖Δh‖ against width ≈ r."""
    torch.manual_seed(0)
    widths = [128, 256, 512, 1024]
    x = torch.randn(32, 16, dtype=torch.float64)
    y = torch.randn(32, 4, dtype=torch.float64)
    for r in (0.0, 0.5):
        logs = []
        for n in widths:
            values = []
            for seed in range(3):
                torch.manual_seed(seed)
                model = rn.models.MLP(16, n, 4, activation="tanh").double()
                rn.parameterize(model, rn.richness(r, base_width=128))
                meter = Meter(model, x)
                f0 = model(x).detach()
                opt = rn.optimizer(model, lr=0.1)
                opt.zero_grad()
                (0.5 * (model(x) - f0 - y).pow(2).sum(1).mean()).backward()
                opt.step()
                values.append(meter.measure()["dh/layers.1"])
            logs.append(sum(math.log(v) for v in values) / len(values))
        lw = [math.log(n) for n in widths]
        mean_w, mean_l = sum(lw) / len(lw), sum(logs) / len(logs)
        slope = sum((a - mean_w) * (b - mean_l) for a, b in zip(lw, logs, strict=True)) / sum(
            (a - mean_w) ** 2 for a in lw
        )
        assert slope == pytest.approx(r, abs=0.05)


def test_backward_signal_of_a_linear_net_is_its_transposed_weights():
    model = _two_layer()
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    meter = Meter(model, x, metrics=["grad_h"])
    m = meter.measure()
    # f is scalar: u = ±1, ∂f/∂h1 = W2ᵀ = [1, −1, 2] for every input, ∂f/∂f = 1
    assert m["grad_h/0"] == pytest.approx(math.sqrt(6))
    assert m["grad_h/1"] == pytest.approx(1.0)


def test_ntk_movement_is_zero_at_creation_and_grows_with_training():
    torch.manual_seed(0)
    model = rn.parameterize(rn.models.MLP(4, 64, 2), rn.preset("mup", base_width=16)).double()
    x = torch.randn(12, 4, dtype=torch.float64)
    opt = rn.optimizer(model, lr=0.5)
    meter = Meter(model, x, metrics=["ntk_dist"], optimizer=opt, ntk_probes=8)
    assert meter.measure()["ntk_dist"] == pytest.approx(0.0, abs=1e-12)
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    assert meter.measure()["ntk_dist"] > 1e-4


def test_alignment_is_finite_after_a_zero_update():
    """The warm start must survive a measurement at step 0, where ΔW = 0."""
    model = _two_layer()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    meter = Meter(model, x, metrics="all")
    first = meter.measure()
    assert math.isnan(first["align/0"]) or first["align/0"] == 0
    with torch.no_grad():
        model[0].weight[0, 0] += 1.0
    second = meter.measure()
    assert second["dW_op/0"] == pytest.approx(1.0)
    assert 0 < second["align/0"] <= 1


def test_passive_meter_reads_the_training_forward():
    """passive=True measures on the loop's own forward: same numbers, no extra forward."""
    torch.manual_seed(0)
    model = rn.parameterize(rn.models.MLP(6, 32, 2), rn.preset("mup", base_width=16)).double()
    x, y = torch.randn(20, 6, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64)
    passive = Meter(model, x, metrics="all", passive=True)
    active = Meter(model, x, metrics="all")
    opt = rn.optimizer(model, lr=0.3)
    calls = {"n": 0}
    model.register_forward_pre_hook(lambda m, a: calls.__setitem__("n", calls["n"] + 1))
    for _ in range(3):
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()  # the passive meter records this forward
        loss.backward()
        before = calls["n"]
        seen = passive.measure(metrics="default")
        assert calls["n"] == before  # no forward of its own
        expected = active.measure(metrics="default")
        assert seen.keys() == expected.keys()
        for key in seen:
            assert seen[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15)
        opt.step()
    other = torch.randn(5, 6, dtype=torch.float64)
    model(other)  # a forward on other inputs is not recorded
    before = calls["n"]
    passive.measure(metrics="default")
    assert calls["n"] == before + 1  # so the meter runs its own
    passive.close()
