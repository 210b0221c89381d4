"""Every claim in its reduced form holds, and a wrong parameterization fails it.

The reduced ("quick") experiments use small widths and few seeds; the tolerances are the
claims' own (stated in each module), not loosened for the test. A slope claim (C1–C7) passes
only when every fitted exponent agrees with its prediction by `richness.analysis.agreement`
(the slope and its whole seed-bootstrap interval within the band); with the reduced form's two
to four seeds some intervals straddle the band, so there a slope claim holds when no row
disagrees and every slope lies within tolerance, and passes only if every interval fits too.
"""

import json
from pathlib import Path

import pytest
from _reduced import assert_reduced_form_holds
from typer.testing import CliRunner

from richness.claims import CLAIMS, reproduce
from richness.claims.rules import RULES, rule_of
from richness.cli import app

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
    assert list(CLAIMS)[:13] == [f"C{i}" for i in range(1, 14)]


def test_claims_json_entries_carry_their_rule(quick):
    out, results = quick
    rows = {row["claim"]: row for row in json.loads((out / "claims.json").read_text())}
    for claim in SHARED:
        assert rows[claim]["rule"] == rule_of(claim), claim
        assert results[claim].rule["version"] == RULES[claim]["version"]


@pytest.mark.parametrize("claim", ["C3", "C7"])
def test_negative_control_fails_the_claim(quick, claim):
    """SP in place of the scale's tables, judged against r: some row disagrees."""
    _, results = quick
    control = results[claim].details["negative_control"]
    assert control["trained"] == "sp"
    assert control["verdict"] == "fail"
    assert control["disagreeing_rows"] > 0
    assert control["fails_as_required"]


def test_c1_negative_control_is_reported_not_required(quick):
    """SP does not fail C1 (hidden activations stay Θ(1) under it): the control is shown
    with its verdict, and the rule says plainly that it is not required."""
    _, results = quick
    control = results["C1"].details["negative_control"]
    assert control["trained"] == "sp" and control["required"] is False
    assert control["verdict"] in ("pass", "fail") and "finding" in control


def test_c1_unnormalized_init_fails_it(quick):
    """The required control: σ_hidden = Θ(1) makes h_rms grow as n^{1/2} per hidden layer,
    so a hidden row disagrees with C1's 0 (layer 2 of the linear net near 1/2, of the MLP
    near 1/2 and its layer 3 near 1); the first layer (fan-in fixed) is untouched."""
    _, results = quick
    required = results["C1"].details["off_scale_controls"]["required"]
    assert required["fails_as_required"] and required["disagreeing_rows"] > 0
    rows = {(row["arch"], row["ell"]): row for row in required["table"]}
    assert abs(rows["linear", 2]["slope"] - 0.5) < 0.1
    assert abs(rows["mlp", 3]["slope"] - 1.0) < 0.2
    assert rows["linear", 1]["agreement"] == "agrees" and rows["mlp", 1]["agreement"] == "agrees"
    reported = results["C1"].details["off_scale_controls"]["reported"]
    assert {row["step"] for row in reported["table"]} == {1, 20}


def test_gauges_are_compared_off_the_base_width(quick):
    _, results = quick
    table = results["C10"].table
    assert {row["gamma"] for row in table} == set(RULES["C10"]["gammas"]["quick"])
    assert all(row["gamma"] != 1 and row["width"] != row["base_width"] for row in table)
    assert all(row["max_rel_diff"] <= RULES["C10"]["tolerance"]["rtol"] for row in table)


def test_first_rule_verdicts_are_reported(quick):
    _, results = quick
    for claim in ("C2", "C5", "C8", "C9"):
        assert results[claim].first_rule_verdict in ("pass", "fail"), claim


def test_rules_are_versioned_with_their_history():
    for claim in [f"C{i}" for i in range(1, 14)]:
        rule = RULES[claim]
        versions = [h["version"] for h in rule["history"]]
        assert versions == list(range(1, len(versions) + 1)), claim
        assert rule["version"] == versions[-1], claim
        for h in rule["history"]:
            assert {"commit", "date", "rule", "reason", "after_data", "verdict"} <= set(h)


def test_reproduce_rules_prints_json():
    result = CliRunner().invoke(app, ["reproduce", "--rules"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["C2"]["tolerance"] == RULES["C2"]["tolerance"]
    one = json.loads(CliRunner().invoke(app, ["reproduce", "C10", "--rules"]).output)
    assert list(one) == ["C10"]
    assert CliRunner().invoke(app, ["reproduce", "C99", "--rules"]).exit_code == 2


def test_recorded_reproduction_was_judged_under_the_current_rules():
    """docs/reproduction/claims.json holds every claim of the rules table, each carrying the
    rule it was judged by, and that rule is the current one: a rule changed since the
    full-scale run fails this test until the reproduction is regenerated."""
    root = Path(__file__).parents[2]
    stored = json.loads((root / "docs/reproduction/claims.json").read_text())
    assert [row["claim"] for row in stored] == list(RULES), "a claim is missing or extra"
    stale = [row["claim"] for row in stored if row.get("rule") != rule_of(row["claim"])]
    assert not stale, f"{stale} were judged under rules other than the current ones"
