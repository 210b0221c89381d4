"""Every claim in its reduced form holds, and a wrong parameterization fails it.

The reduced ("quick") experiments use small widths and few seeds; the tolerances are the
claims' own (stated in each module), not loosened for the test. A slope claim (C1–C7) passes
only when every fitted exponent agrees with its prediction by `richness.analysis.agreement`
(the slope and its whole seed-bootstrap interval within the band); with the reduced form's two
to four seeds some intervals straddle the band, so there a slope claim holds when no row
disagrees and every slope lies within tolerance, and passes only if every interval fits too.
"""

import json

import pytest
from _reduced import assert_reduced_form_holds

from richness.claims import CLAIMS, reproduce

SHARED = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    return out, {r.claim: r for r in reproduce(SHARED, out, scale="quick")}


@pytest.mark.parametrize("claim", SHARED)
def test_claim_holds_in_reduced_form(quick, claim):
    _, results = quick
    assert_reduced_form_holds(results[claim])


def test_claims_json_has_the_design_format(quick):
    out, _ = quick
    rows = json.loads((out / "claims.json").read_text())
    assert [row["claim"] for row in rows] == SHARED
    for row in rows:
        assert {"claim", "verdict", "measured", "predicted", "tolerance", "details"} <= set(row)
        assert row["verdict"] in ("pass", "fail")


def test_figures_are_written(quick):
    _, results = quick
    for claim in ("C2", "C8", "C9", "C11"):
        for fig in results[claim].figures:
            with open(fig, "rb") as fh:
                assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_standard_parameterization_where_the_scale_is_expected_fails(tmp_path):
    """SP trained where r ∈ {0, 1/4, 1/2} is expected: C2 (‖Δh‖ ~ n^r) and C4 (NTC) fail."""
    results = {
        r.claim: r for r in reproduce(["C2", "C4"], tmp_path, scale="quick", substitute="sp")
    }
    for claim in ("C2", "C4"):
        assert results[claim].verdict == "fail"
        assert any(row["agreement"] == "disagrees" for row in results[claim].table)


def test_unknown_claim_is_refused(tmp_path):
    with pytest.raises(ValueError, match="C99"):
        reproduce(["C99"], tmp_path, scale="quick")


def test_every_claim_has_a_module():
    assert list(CLAIMS) == [f"C{i}" for i in range(1, 14)]
