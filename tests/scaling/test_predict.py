"""Predicted exponents and criteria verdicts (THEORY.md §2, §4)."""

import pytest

import richness as rn
from richness.scaling import Power, RoleScaling


@pytest.mark.parametrize("r", [0.0, 0.125, 0.25, 0.375, 0.5])
@pytest.mark.parametrize("gauge", ["stp", "mup", "rescaling"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("depth", [2, 3, 6])
def test_scale_points_satisfy_every_criterion(r, gauge, optimizer, depth):
    p = rn.richness(r, gauge, optimizer=optimizer, base_width=64)
    e = p.predict(depth)
    assert all(c.holds for c in p.criteria(depth)), p.criteria(depth)
    assert e["dh"] == pytest.approx(r)
    assert e["f0"] == pytest.approx(-r)  # C3
    assert e["df"] == 0.0  # C4
    assert e["max_ratio"] == 0.0  # C5
    assert e["lin_gap"] == pytest.approx(2 * r - 1)  # C8
    for ell in range(1, depth):
        assert e[f"h_rms/{ell}"] == 0.0  # C1
        assert e[f"dh/{ell}"] == pytest.approx(r)  # C2, every hidden layer
        assert e[f"dh_rms/{ell}"] == pytest.approx(r - 0.5)
        assert e[f"grad_h/{ell}"] == pytest.approx(-r)  # C7: ‖∂L/∂h‖ ~ 1/‖Δh‖


def test_sp_breaks_ntc_at_fixed_lr():
    p = rn.preset("sp")
    verdict = {c.name: c for c in p.criteria()}
    assert not verdict["NTC"].holds
    assert verdict["NTC"].exponent == 1.0  # ‖Δf‖ ~ n (C9)
    assert verdict["activations"].holds


def test_sp_with_lr_over_n_freezes_the_input_layer():
    """SP with η ∝ 1/n: NTC holds but the first layer's update is useless (THEORY.md §3)."""
    sp = rn.preset("sp")
    over_n = Power(1.0, 0.0, -1.0)
    table = {role: RoleScaling(s.multiplier, s.init_std, over_n) for role, s in sp.roles.items()}
    p = rn.Parameterization(roles=table, name="sp, lr ∝ 1/n")
    verdict = {c.name: c for c in p.criteria()}
    assert verdict["NTC"].holds
    assert not verdict["UUC"].holds
    assert "layer 1" in verdict["UUC"].detail
    assert p.predict()["dh/1"] == -1.0  # ‖Δh_1‖ ~ d/n


def test_hand_made_table_with_large_output_init_breaks_activations():
    """r < 0 (off the scale): the initial output explodes, ‖f0‖ ~ n^{-r}."""
    p = rn.richness(-0.25, allow_off_scale=True)
    verdict = {c.name: c for c in p.criteria()}
    assert not verdict["activations"].holds
    assert verdict["activations"].exponent == pytest.approx(0.25)
    # the exploding residual f0 − y then drives an exploding output update
    assert not verdict["NTC"].holds
    assert verdict["NTC"].exponent == pytest.approx(0.25)


def test_depth_is_checked():
    with pytest.raises(ValueError, match="depth"):
        rn.preset("mup").predict(depth=1)
