"""Adam's ε and coupled-decay laws (docs/adam.md; THEORY.md §3, Adam symmetry).

ε must follow the raw gradient's coordinates, which the one-step derivation gives per role
(`weight_gradient_exponents`); across gauges it must move with θ like the raw gradient does.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import richness as rn
from richness.scaling.predict import weight_gradient_exponents

ROLES = ("input", "hidden", "output")


def _exponents(p, field):
    return tuple(getattr(p.roles[role], field).exponent(role != "input") for role in ROLES)


@pytest.mark.parametrize("base_width", [None, 64])
@pytest.mark.parametrize("r", [0.0, 0.125, 0.25, 0.375, 0.5])
def test_stp_and_mup_gauge_eps_exponents(r, base_width):
    """STP: |∂L/∂W| ~ n^{(−1/2−r, −1/2−r, 0)}; μP gauge (g = θ = η_stp): n^{(−1, −2, −1)}."""
    stp = rn.richness(r, "stp", optimizer="adam", base_width=base_width)
    assert _exponents(stp, "eps") == pytest.approx((-0.5 - r, -0.5 - r, 0.0), abs=1e-12)
    assert _exponents(stp, "l2") == pytest.approx((-0.5 - r, -r, 0.5 + r), abs=1e-12)
    mup = rn.richness(r, "mup", optimizer="adam", base_width=base_width)
    assert _exponents(mup, "eps") == pytest.approx((-1.0, -2.0, -1.0), abs=1e-12)
    resc = rn.richness(r, "rescaling", optimizer="adam", base_width=base_width)
    assert _exponents(resc, "eps") == pytest.approx((-1 - r, -2 - r, -1 - r), abs=1e-12)


@pytest.mark.parametrize("gauge", ["stp", "mup", "rescaling"])
def test_sgd_tables_and_sp_keep_torch_eps(gauge):
    for p in (rn.richness(0.3, gauge, base_width=32), rn.preset("sp", optimizer="adam")):
        for role in ROLES:
            s = p.layer(role, width=1024, fan_in=1024)
            assert (s.eps, s.l2) == (1.0, 1.0)


@pytest.mark.parametrize("gauge", ["stp", "mup", "rescaling"])
@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
def test_base_model_keeps_torch_eps(gauge, r):
    p = rn.richness(r, gauge, optimizer="adam", base_width=128)
    for role, fan_in in zip(ROLES, (10, 128, 128), strict=True):
        s = p.layer(role, width=128, fan_in=fan_in)
        assert s.eps == pytest.approx(1.0, rel=1e-12)
        assert s.l2 == pytest.approx(1.0, rel=1e-12)


r_values = st.floats(0.0, 0.5)
gammas = st.floats(0.05, 20.0)
widths = st.integers(1, 200_000)
fan_ins = st.integers(1, 200_000)
roles = st.sampled_from(ROLES)
gauges = st.sampled_from(["stp", "mup", "rescaling"])
base_widths = st.one_of(st.none(), st.integers(1, 4096))


@settings(max_examples=300, deadline=None)
@given(r_values, gammas, gauges, base_widths, st.integers(2, 6))
def test_eps_follows_the_derived_gradient_in_every_gauge(r, gamma, gauge, base_width, depth):
    """The ε law of each gauge's table (built from STP by ε → θ·ε) has the width exponent that
    the forward/backward derivation gives for that table's raw gradient, at any depth."""
    p = rn.richness(r, gauge, gamma, "adam", base_width)
    grads = weight_gradient_exponents(p, depth)
    for role, e in zip(ROLES, _exponents(p, "eps"), strict=True):
        if depth > 2 or role != "hidden":
            assert math.isclose(grads[f"grad_w/{role}"], e, abs_tol=1e-9)
    layer_roles = ["input"] + ["hidden"] * (depth - 2) + ["output"]
    for ell, role in enumerate(layer_roles, start=1):
        assert math.isclose(grads[f"grad_w/{ell}"], grads[f"grad_w/{role}"], abs_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(r_values, gammas, widths, fan_ins, roles, gauges, base_widths)
def test_eps_moves_with_theta_like_the_raw_gradient(r, gamma, n, fan_in, role, gauge, base_width):
    """Adam symmetry (θg, σ/θ, η/θ): the raw gradient scales by θ = g/g_stp, so ε/θ and
    l2/θ² are gauge invariant (the same numbers as in STP, prefactors included)."""
    stp = rn.richness(r, "stp", gamma, "adam", base_width).layer(role, n, fan_in)
    other = rn.richness(r, gauge, gamma, "adam", base_width).layer(role, n, fan_in)
    theta = other.multiplier / stp.multiplier
    assert math.isclose(other.eps / theta, stp.eps, rel_tol=1e-9)
    assert math.isclose(other.l2 / theta**2, stp.l2, rel_tol=1e-9)
