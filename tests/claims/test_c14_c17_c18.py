"""C14 (weight updates per layer), C17 (off the scale) and C18 (SP with η ∝ 1/n), quick forms.

The quick forms run few seeds: with them some intervals are wider than the band, so the verdict
under the written rule can be "fail" with no row disagreeing (docs/claims_new.md). What must
hold in the quick form: every judged slope lies within tolerance of its prediction, no row
disagrees where the claim expects agreement, and each negative control fails the claim.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from richness.claims import CLAIMS, Context
from richness.claims import c14_weight_updates as c14
from richness.claims import c17_off_scale as c17
from richness.claims import c18_sp_small_lr as c18
from richness.claims.rules import RULES
from richness.cli import app
from richness.config import RunConfig
from richness.sweep import SpecError, parse_spec


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("c14_c17_c18")


@pytest.fixture(scope="module")
def c14_linear(out, one_thread):
    return c14.run(Context(out, scale="quick", archs=("linear",), workers=1))


@pytest.fixture(scope="module")
def c17_quick(out, one_thread):
    return c17.run(Context(out, scale="quick", workers=1))


@pytest.fixture(scope="module")
def c18_quick(out, one_thread):
    return c18.run(Context(out, scale="quick", workers=1))


def test_registered_with_rules():
    for claim in ("C14", "C17", "C18"):
        assert claim in CLAIMS
        rule = RULES[claim]
        assert rule["version"] == rule["history"][-1]["version"] == 1
        assert rule["history"][0]["after_data"] is False
        assert rule["negative_control"]


def test_c14_linear_rows_agree_and_sp_fails_it(c14_linear):
    rows = c14_linear.table
    assert {row["quantity"] for row in rows} == {"dW_op", "dW_fro", "dW_entry"}
    assert {row["ell"] for row in rows} == {1, 2, 3}  # every layer, the readout too
    assert all(row["agreement"] == "agrees" for row in rows), json.dumps(rows)[:2000]
    assert all(c14_linear.details["control_fails_claim"].values())
    assert c14_linear.verdict == "pass"
    # per entry = Frobenius minus the fans: the hidden layer's entries move as n^{r − 3/2}
    hidden = [r for r in rows if r["quantity"] == "dW_entry" and r["ell"] == 2]
    assert all(abs(r["slope"] - (r["r"] - 1.5)) <= 0.1 for r in hidden)


def test_c14_fails_when_sp_is_trained_in_place_of_the_scale(out, one_thread):
    result = c14.run(Context(out, scale="quick", archs=("linear",), substitute="sp", workers=1))
    assert result.verdict == "fail"
    assert any(row["agreement"] == "disagrees" for row in result.table)


def test_c17_off_scale_tables_break_and_controls_do_not(c17_quick):
    rows = c17_quick.table
    tables = c17_quick.details["tables"]
    for arch in ("linear", "mlp"):
        assert tables[f"{arch} r=0"] and tables[f"{arch} r=0.5"]  # the controls find nothing
        f0 = next(
            r for r in rows if r["arch"] == arch and r["r"] == -0.25 and r["quantity"] == "f0"
        )
        assert f0["explodes"] and abs(f0["slope"] - 0.25) <= c17.TOL
        above = [
            r for r in rows if r["arch"] == arch and r["r"] == 0.75 and r["quantity"] == "dh_rms"
        ]
        assert above and all(r["outgrows"] for r in above)
        assert all(abs(r["slope"] - 0.25) <= c17.TOL for r in above)
    assert tables["linear r=-0.25"] and tables["linear r=0.75"]
    assert c17_quick.verdict in ("pass", "fail")


def test_c17_runs_are_marked_off_scale(out, c17_quick):
    records = json.loads(next(out.glob("C17-linear-*.json")).read_text())
    marks = {r["config"]["r"]: r["config"]["off_scale"] for r in records}
    assert marks == {-0.25: True, 0.75: True, 0.0: False, 0.5: False}


def test_user_facing_validation_still_refuses_off_scale_r():
    spec = {"widths": [64], "richness": [0.75], "optimizer": {"kind": "sgd", "lr": 0.1}}
    with pytest.raises(SpecError, match="richness"):
        parse_spec(spec)
    with pytest.raises(SpecError, match="allow_off_scale"):
        RunConfig.parse(
            {
                "data": {"kind": "digits"},
                "width": 64,
                "seed": 0,
                "r": -0.25,
                "train": {"lr": 0.1, "steps": 1},
                "measure": {"steps": [0, 1]},
            }
        )


def test_c18_sp_small_lr_matches_its_prediction_and_mup_does_not(c18_quick):
    rows = c18_quick.table
    sp = [r for r in rows if r["table"] == "sp-lr/n" and r["step"] > 0]
    assert sp and all(abs(r["slope"] - r["predicted"]) <= r["tolerance"] for r in sp)
    assert not [r for r in rows if r.get("agreement") == "disagrees"], rows
    checks = c18_quick.details["checks"]
    assert all(checks["linear sp-lr/n"][step].values() for step in checks["linear sp-lr/n"])
    assert c18_quick.details["control_fails_claim"]
    by = {(r["arch"], r["table"], r["quantity"], r["step"]): r["predicted"] for r in rows}
    assert by[("mlp", "sp-lr/n", "dh_rms", 1)] == -1.5  # the input layer's features freeze
    assert by[("mlp", "sp-lr/n", "max_ratio", 1)] == 1.0  # MAX fails at layer 1's contribution
    assert by[("mlp", "sp-lr/n", "df", 1)] == 0.0  # stable


@pytest.mark.slow
def test_reproduce_c14_c17_c18_quick_ends_with_verdicts(tmp_path):
    result = CliRunner().invoke(
        app, ["reproduce", "C14,C17,C18", "--scale", "quick", "--out", str(tmp_path)]
    )
    assert result.exit_code in (0, 1), result.output
    rows = {r["claim"]: r for r in json.loads((tmp_path / "claims.json").read_text())}
    assert set(rows) == {"C14", "C17", "C18"}
    assert all(r["verdict"] in ("pass", "fail") for r in rows.values())
