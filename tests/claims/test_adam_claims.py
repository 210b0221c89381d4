"""C1–C5 and C8 with Adam (docs/adam.md): the scale experiment trains the Adam tables.

The reduced form: the linear net at the quick scale (widths 64–256, 2 seeds, 3 Adam steps),
judged by the claims' own tolerances against `richness(r, optimizer="adam").predict()`; SP
trained with Adam where the scale is expected fails. The MLP's verdicts at the full protocol
are in docs/adam.md (its first Adam steps are transient at widths ≤ 256).
"""

import pytest
from _reduced import assert_reduced_form_holds

from richness.claims import reproduce
from richness.claims._base import Context
from richness.claims._scale import scale_spec

ADAM_CLAIMS = ["C1", "C2", "C3", "C4", "C5", "C8"]


@pytest.fixture(scope="module")
def adam_linear(tmp_path_factory):
    out = tmp_path_factory.mktemp("adam-claims")
    results = reproduce(ADAM_CLAIMS, out, scale="quick", optimizer="adam", archs=["linear"])
    return out, {r.claim: r for r in results}


@pytest.mark.parametrize("claim", ADAM_CLAIMS)
def test_adam_claim_holds_in_reduced_form(adam_linear, claim):
    _, results = adam_linear
    assert_reduced_form_holds(results[claim])


def test_adam_slopes_are_judged_against_the_adam_tables(adam_linear):
    """‖Δh‖ ~ n^r with Adam: the fitted slopes rise by ≈ 1/4 per step of r (measured)."""
    _, results = adam_linear
    rows = [row for row in results["C2"].table if row["layer"] == "layers.1"]
    slopes = {row["r"]: row["slope"] for row in rows}
    assert slopes[0.25] - slopes[0.0] == pytest.approx(0.25, abs=0.05)
    assert slopes[0.5] - slopes[0.25] == pytest.approx(0.25, abs=0.05)
    assert all(row["predicted"] == row["r"] for row in rows)


def test_adam_standard_parameterization_fails(tmp_path):
    """SP with Adam (one LR) where r ∈ {0, 1/4, 1/2} is expected: C2 and C4 fail."""
    results = reproduce(
        ["C2", "C4"], tmp_path, scale="quick", optimizer="adam", archs=["linear"], substitute="sp"
    )
    assert [r.verdict for r in results] == ["fail", "fail"]


def test_scale_spec_uses_adam_and_caps_widths(tmp_path):
    ctx = Context(tmp_path, scale="full", optimizer="adam", max_width=512)
    spec = scale_spec("mlp", ctx)
    assert spec["optimizer"] == {"kind": "adam", "lr": 0.001}
    assert spec["widths"] == [128, 256, 512]
    assert spec["name"] == "scale-mlp-adam"
    assert scale_spec("mlp", Context(tmp_path))["optimizer"]["kind"] == "sgd"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "lion"}, "optimizer"),
        ({"max_width": 0}, "max_width"),
    ],
)
def test_context_refuses_bad_fields(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Context(tmp_path, **kwargs)


def test_unknown_arch_and_too_small_cap_are_refused(tmp_path):
    with pytest.raises(ValueError, match="archs"):
        reproduce(["C2"], tmp_path, scale="quick", archs=["resnet"])
    with pytest.raises(ValueError, match="max_width"):
        scale_spec("linear", Context(tmp_path, scale="quick", max_width=64))
