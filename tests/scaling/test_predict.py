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


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("gauge", ["stp", "mup", "rescaling"])
def test_weight_update_sizes_per_layer(r, gauge):
    """C14: ΔW̃ entries n^{(r−1/2, r−3/2, −1)}, Frobenius/operator norms n^{(r, r−1/2, −1/2)}
    (input, hidden, output) in every gauge (effective weights); a deeper net repeats the
    hidden row; the norms are an entry times √(fan_in·fan_out)."""
    for depth in (3, 5):
        e = rn.richness(r, gauge, base_width=64).predict(depth)
        hidden = range(2, depth)
        assert e["dW_entry/1"] == pytest.approx(r - 0.5)
        assert e["dW_norm/1"] == pytest.approx(r)
        assert all(e[f"dW_entry/{ell}"] == pytest.approx(r - 1.5) for ell in hidden)
        assert all(e[f"dW_norm/{ell}"] == pytest.approx(r - 0.5) for ell in hidden)
        assert (e[f"dW_entry/{depth}"], e[f"dW_norm/{depth}"]) == (-1.0, -0.5)
        # C6 consistency: aligned ‖ΔW h‖ = ‖ΔW‖_op ‖h‖ is ‖Δh‖ (n^r) below the readout
        assert e["dW_norm/1"] == pytest.approx(e["dh/1"])
        assert e["dW_norm/2"] + 0.5 == pytest.approx(e["dh/2"])


def test_weight_update_sizes_under_sp():
    """SP at a fixed LR: entries n^{−1/2} below the readout, n^0 at it (C14's control)."""
    e = rn.preset("sp").predict(3)
    assert [e[f"dW_entry/{ell}"] for ell in (1, 2, 3)] == [-0.5, -0.5, 0.0]
    assert [e[f"dW_norm/{ell}"] for ell in (1, 2, 3)] == [0.0, 0.5, 0.5]


def test_adam_weight_update_entries_follow_the_lr():
    e = rn.richness(0.5, optimizer="adam", base_width=64).predict(3)
    exps = rn.richness(0.5, optimizer="adam", base_width=64).exponents()
    for ell, role in ((1, "input"), (2, "hidden"), (3, "output")):
        assert e[f"dW_entry/{ell}"] == pytest.approx(exps[role]["lr"])  # sign-like first step


def test_existing_keys_are_unchanged_by_the_weight_update_keys():
    e = rn.richness(0.25, base_width=64).predict(3)
    assert (e["dh"], e["f0"], e["df"], e["max_ratio"], e["lin_gap"]) == (0.25, -0.25, 0, 0, -0.5)
    assert not any(k.startswith(("dW_fro", "dW_op")) for k in e)  # not filed as Meter keys


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
def test_attention_q_and_k(r):
    """q, k: backward signal n^{−r} below a hidden layer's (the logit's backward is an
    incoherent sum at init), own update n^0, ‖Δq‖ ~ n^r by the passthrough, MAX ratio n^{−r}."""
    from richness.scaling.predict import attention_exponents

    a = attention_exponents(rn.richness(r, base_width=64))
    assert a["logit"] == pytest.approx(-r)  # s = c·q·k at init
    for name in ("q", "k"):
        assert a[f"grad_h/{name}"] == pytest.approx(a["grad_h_hidden"] - r)
        assert a[f"own/{name}"] == pytest.approx(0.0)
        assert a[f"pass/{name}"] == pytest.approx(r)
        assert a[f"dh/{name}"] == pytest.approx(r)
        assert a[f"max_ratio/{name}"] == pytest.approx(-r)
    assert a["own_hidden"] == pytest.approx(r)  # a generic hidden layer's own update


def test_attention_exponents_refuse_adam():
    from richness.scaling.predict import attention_exponents

    with pytest.raises(ValueError, match="optimizer"):
        attention_exponents(rn.richness(0.5, optimizer="adam"))
