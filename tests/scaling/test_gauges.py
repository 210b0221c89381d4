"""Gauge symmetry (THEORY.md §3): the three gauges agree on g·σ and the effective LR."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import richness as rn

r_values = st.floats(0.0, 0.5)
gammas = st.floats(0.05, 20.0)
widths = st.integers(1, 200_000)
fan_ins = st.integers(1, 200_000)
roles = st.sampled_from(["input", "hidden", "output"])
optimizers = st.sampled_from(["sgd", "adam"])
base_widths = st.one_of(st.none(), st.integers(1, 4096))


@settings(max_examples=300, deadline=None)
@given(r_values, gammas, widths, fan_ins, roles, optimizers, base_widths)
def test_gauges_share_physical_quantities(r, gamma, n, fan_in, role, optimizer, base_width):
    layers = [
        rn.richness(r, gauge, gamma, optimizer, base_width).layer(role, n, fan_in)
        for gauge in ("stp", "mup", "rescaling")
    ]
    for s in layers[1:]:
        assert math.isclose(s.effective_std, layers[0].effective_std, rel_tol=1e-12)
        assert math.isclose(s.effective_lr, layers[0].effective_lr, rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(r_values, gammas, optimizers, base_widths, st.integers(2, 8))
def test_gauges_share_predictions(r, gamma, optimizer, base_width, depth):
    preds = [
        rn.richness(r, gauge, gamma, optimizer, base_width).predict(depth)
        for gauge in ("stp", "mup", "rescaling")
    ]
    assert preds[0] == preds[1] == preds[2]
    assert math.isclose(preds[0]["dh"], r, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(r_values, gammas, widths, fan_ins, roles, base_widths)
def test_gauge_fixing_conditions(r, gamma, n, fan_in, role, base_width):
    """STP has g = 1; the μP gauge has one LR; the rescaling gauge one LR α²."""
    stp = rn.richness(r, "stp", gamma, "sgd", base_width).layer(role, n, fan_in)
    mup = rn.richness(r, "mup", gamma, "sgd", base_width).layer(role, n, fan_in)
    resc = rn.richness(r, "rescaling", gamma, "sgd", base_width).layer(role, n, fan_in)
    w = n if base_width is None else n / base_width
    assert stp.multiplier == 1.0
    assert math.isclose(mup.lr, 1.0, rel_tol=1e-12)
    assert math.isclose(resc.lr, (gamma * w**r) ** 2, rel_tol=1e-12)
