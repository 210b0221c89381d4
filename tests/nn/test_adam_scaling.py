"""Adam's ε and weight decay across width, measured on real models (docs/adam.md).

- ε: the raw gradient's RMS coordinate per layer has the width exponent of the table's ε law
  (fitted over 5 widths, 2 seeds), so ε/|g| is flat in width; torch's one ε is not.
- Decay: with zero gradients only the decay acts; rn.optimizer's default shrinks every layer
  by the same factor at every width (AdamW, SGD), torch's plain rule does not.
- Gauges: with ε following θ, Adam trains identically in all three gauges (float64).
"""

import math

import numpy as np
import pytest
import torch

import richness as rn
from richness.nn import effective_weights, load_effective_weights

WIDTHS = (64, 128, 256, 512, 1024)
TOLERANCE = 0.1  # on a fitted width exponent


def _model(width, p, seed=0, dtype=torch.float32):
    model = rn.models.MLP(d_in=16, width=width, d_out=4, activation="relu").to(dtype)
    return rn.parameterize(model, p, generator=torch.Generator().manual_seed(seed))


def _data(seed=0):
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(64, 16, generator=g), torch.randn(64, 4, generator=g)


def _grad_rms(model, opt, x, y, f0, adam_steps):
    """RMS coordinate of each raw weight's gradient after `adam_steps` centered Adam steps."""
    for _ in range(adam_steps + 1):
        opt.zero_grad()
        (0.5 * (model(x) - f0 - y).pow(2).sum(1).mean()).backward()
        grads = {
            g["layer"]: g["params"][0].grad.pow(2).mean().sqrt().item() for g in opt.param_groups
        }
        opt.step()
    return grads


def _slope(widths, values):
    return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


@pytest.mark.parametrize("gauge", ["stp", "mup"])
@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
def test_gradient_coordinates_have_the_eps_exponent(r, gauge):
    """Measured slope of RMS(∂L/∂W_ℓ) over 5 widths = the table's ε exponent (± 0.1), at init
    and after 3 Adam steps, so the scaled ε keeps ε/|g| flat while a fixed ε drifts by it."""
    torch.manual_seed(0)
    p = rn.richness(r, gauge, optimizer="adam", base_width=64)
    table = {}
    for step in (0, 3):
        rms = {}
        for width in WIDTHS:
            per_seed = []
            for seed in (0, 1):
                model = _model(width, p, seed)
                opt = rn.optimizer(model, lr=1e-3)
                x, y = _data(seed)
                with torch.no_grad():
                    f0 = model(x)
                per_seed.append(_grad_rms(model, opt, x, y, f0, step))
            eps = {g["layer"]: g["eps"] for g in opt.param_groups}
            rms[width] = {k: np.mean([s[k] for s in per_seed]) for k in per_seed[0]}
            rms[width] = {k: (v, eps[k]) for k, v in rms[width].items()}
        for ell, role in enumerate(("input", "hidden", "output")):
            layer = f"layers.{ell}.weight"
            predicted = p.roles[role].eps.exponent(role != "input")
            grad = _slope(WIDTHS, [rms[w][layer][0] for w in WIDTHS])
            eps_over_grad = _slope(WIDTHS, [rms[w][layer][1] / rms[w][layer][0] for w in WIDTHS])
            table[(step, layer)] = (grad, predicted, eps_over_grad)
            assert abs(grad - predicted) <= TOLERANCE, table
            assert abs(eps_over_grad) <= TOLERANCE, table
    # the unscaled ε would drift against |g| by the nonzero exponents (STP input/hidden, μP all)
    assert any(abs(pred) >= 0.5 for _, pred, _ in table.values())


def _decay_only(width, p, kind, rule, steps=5, wd=0.1, lr=0.01):
    model = _model(width, p, dtype=torch.float64)
    opt = rn.optimizer(model, lr=lr, kind=kind, weight_decay=wd, weight_decay_rule=rule)
    before = {g["layer"]: g["params"][0].detach().clone() for g in opt.param_groups}
    for _ in range(steps):
        for g in opt.param_groups:  # zero loss: zero gradients, only the decay acts
            g["params"][0].grad = torch.zeros_like(g["params"][0])
        opt.step()
    return {
        g["layer"]: (g["params"][0].detach().norm() / before[g["layer"]].norm()).item()
        for g in opt.param_groups
    }


@pytest.mark.parametrize("base_width", [64, None])
@pytest.mark.parametrize(("kind", "optimizer"), [("adamw", "adam"), ("sgd", "sgd")])
def test_independent_decay_shrinks_every_layer_alike_at_every_width(kind, optimizer, base_width):
    """k = 5 decay-only steps shrink every layer by (1 − η0·wd0)^5 at widths 64–1024."""
    p = rn.richness(0.5, "stp", optimizer=optimizer, base_width=base_width)
    expected = (1 - 0.01 * 0.1) ** 5
    for width in (64, 256, 1024):
        for layer, factor in _decay_only(width, p, kind, "independent").items():
            assert factor == pytest.approx(expected, rel=1e-12), (width, layer)


@pytest.mark.parametrize(("kind", "optimizer"), [("adamw", "adam"), ("sgd", "sgd")])
def test_torch_plain_decay_depends_on_layer_and_width(kind, optimizer):
    """Documented contrast: torch's one wd shrinks by lr_ℓ·wd, so the input layer (μP LR ∝ m^0
    for Adam, m^{2r} for SGD) and the hidden/output layers (∝ 1/m) decay differently, and the
    difference grows with width."""
    p = rn.richness(0.5, "stp", optimizer=optimizer, base_width=64)
    at_base = _decay_only(64, p, kind, "torch")
    assert max(at_base.values()) == pytest.approx(min(at_base.values()), rel=1e-12)  # m = 1
    wide = {layer: 1 - f for layer, f in _decay_only(1024, p, kind, "torch").items()}
    assert max(wide.values()) / min(wide.values()) > 10  # input vs readout: m^{1 or 2} apart
    assert wide["layers.2.weight"] < (1 - at_base["layers.2.weight"]) / 10  # readout: ∝ 1/m


@pytest.mark.parametrize("r", [0.0, 0.5])
def test_coupled_adam_decay_keeps_its_ratio_to_the_gradient(r):
    """Coupled Adam adds wd_ℓ·W_ℓ to the gradient: with wd_ℓ = wd0·l2_ℓ the ratio
    RMS(wd_ℓ·W_ℓ)/RMS(∂L/∂W_ℓ) is flat in width (slope within 0.1 of 0); torch's one wd drifts
    by −(l2 exponent), e.g. +1/2+r at the readout."""
    p = rn.richness(r, "stp", optimizer="adam", base_width=64)
    ratios = {"independent": {}, "torch": {}}
    for width in WIDTHS:
        per_seed = {"independent": {}, "torch": {}}
        for seed in (0, 1):
            model = _model(width, p, seed)
            x, y = _data(seed)
            # the centered loss ½‖f − f0 − y‖² at init (f = f0): its gradient is −yᵀ ∂f/∂θ
            (-(model(x) * y).sum(1).mean()).backward()
            for rule, store in per_seed.items():
                opt = rn.optimizer(model, lr=1e-3, weight_decay=0.1, weight_decay_rule=rule)
                for g in opt.param_groups:
                    w = g["params"][0]
                    decay = (g["weight_decay"] * w.detach()).pow(2).mean().sqrt()
                    ratio = (decay / w.grad.pow(2).mean().sqrt()).item()
                    store.setdefault(g["layer"], []).append(ratio)
        for rule, store in per_seed.items():
            for layer, values in store.items():
                ratios[rule].setdefault(layer, []).append(float(np.mean(values)))
    for ell, role in enumerate(("input", "hidden", "output")):
        layer = f"layers.{ell}.weight"
        assert abs(_slope(WIDTHS, ratios["independent"][layer])) <= TOLERANCE
        l2 = p.roles[role].l2.exponent(role != "input")
        assert _slope(WIDTHS, ratios["torch"][layer]) == pytest.approx(-l2, abs=TOLERANCE)


def _adam_run(model, x, y, eps_rule, steps=8):
    opt = rn.optimizer(model, lr=0.02, eps=1e-6, eps_rule=eps_rule)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
        opt.step()
    return model(x).detach()


@pytest.mark.parametrize("base_width", [None, 16])
def test_adam_gauges_train_identically_with_scaled_eps(base_width):
    """C10 for Adam: ε → θ·ε makes the three gauges' trajectories equal to ~1e-10 (float64);
    one ε for all (torch) breaks the symmetry (documented: relative gap ≫ 1e-10)."""
    torch.manual_seed(0)
    x = torch.randn(16, 16, dtype=torch.float64)
    y = torch.randn(16, 4, dtype=torch.float64)
    outs = {"gradient": {}, "torch": {}}
    start = None
    for gauge in ("stp", "mup", "rescaling"):
        for rule, store in outs.items():
            p = rn.richness(0.25, gauge, 1.3, "adam", base_width)
            model = _model(48, p, dtype=torch.float64)
            if start is None:
                start = effective_weights(model)
            load_effective_weights(model, start)
            store[gauge] = _adam_run(model, x, y, rule)
    ref = outs["gradient"]["stp"]
    for gauge in ("mup", "rescaling"):
        gap = ((outs["gradient"][gauge] - ref).norm() / ref.norm()).item()
        assert gap < 1e-10, (gauge, gap)
    plain = max(
        ((outs["torch"][g] - outs["torch"]["stp"]).norm() / ref.norm()).item()
        for g in ("mup", "rescaling")
    )
    assert plain > 1e-6
    assert math.isfinite(plain)


def test_rules_are_validated():
    model = _model(32, rn.richness(0.5, optimizer="adam"))
    with pytest.raises(ValueError, match="weight_decay_rule"):
        rn.optimizer(model, lr=0.1, weight_decay_rule="mup")
    with pytest.raises(ValueError, match="eps_rule"):
        rn.optimizer(model, lr=0.1, eps_rule="fixed")
    with pytest.raises(ValueError, match="weight_decay"):
        rn.optimizer(model, lr=0.1, weight_decay=-1.0)
