"""The richness meter's estimators on synthetic measurements with known exponents (THEORY.md §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from richness.analysis.richness_meter import (
    estimate_multiwidth,
    laziness_index,
    measurements_frame,
)

WIDTHS = (128, 256, 512, 1024)
BASE = 64


def _records(r, *, seeds=range(4), widths=WIDTHS, df_exp=0.0, noise=0.02, rng_seed=0):
    """Meter-like dicts: ‖Δh_ℓ‖ = c_ℓ·n^r·(1 + noise), ‖Δf‖ ~ n^df_exp, h_rms = 1."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for n in widths:
        for s in seeds:
            record = {"width": n, "seed": s, "step": 5}
            for ell, c in ((1, 0.3), (2, 0.5)):
                dh = c * n**r * math.exp(noise * rng.standard_normal())
                record[f"dh/layers.{ell - 1}"] = dh
                record[f"dh_rms/layers.{ell - 1}"] = dh / n**0.5
                record[f"h_rms/layers.{ell - 1}"] = 1.0
            record["dh/layers.2"] = record["df"] = (n / BASE) ** df_exp
            record["f0"] = (n / BASE) ** -r
            out.append(record)
    return out


@pytest.mark.parametrize(("r", "verdict"), [(0.0, "lazy"), (0.25, "intermediate"), (0.5, "rich")])
def test_multiwidth_recovers_r_with_a_covering_interval(r, verdict):
    est = estimate_multiwidth(measurements_frame(_records(r)))
    assert est.r_hat == pytest.approx(r, abs=0.02)
    assert est.ci_low <= r <= est.ci_high
    assert est.ci_high - est.ci_low < 0.1
    assert est.verdict == verdict
    assert est.interval == "seed bootstrap"
    assert list(est.layers["layer"]) == ["layers.0", "layers.1"]  # the readout is left out
    assert est.context["widths"] == list(WIDTHS) and est.context["n_seeds"] == 4
    assert est.checks.set_index("signal").loc["df", "ok"]


def test_raw_value_is_reported_and_clipped_reading_is_separate():
    est = estimate_multiwidth(measurements_frame(_records(0.7)))
    assert est.r_hat == pytest.approx(0.7, abs=0.02)
    assert est.r == 0.5 and est.position == 1.0
    assert est.verdict == "ill-scaled"  # interval off [0, 1/2] by more than the tolerance


def test_output_growing_with_width_is_ill_scaled():
    """SP-like: ‖Δf‖ ~ n^1 breaks NTC (C4, C9) whatever ‖Δh‖ does."""
    est = estimate_multiwidth(measurements_frame(_records(0.5, df_exp=1.0)))
    assert est.verdict == "ill-scaled"
    df = est.checks.set_index("signal").loc["df"]
    assert df["value"] == pytest.approx(1.0, abs=1e-9) and df["ok"] == False  # noqa: E712
    assert any("df n^+1.00" in note for note in est.notes)


def test_one_seed_uses_width_residuals_and_two_widths_give_no_interval():
    three = estimate_multiwidth(measurements_frame(_records(0.25, seeds=[0])))
    assert three.interval == "width residuals"
    assert three.ci_low < 0.25 < three.ci_high
    two = estimate_multiwidth(measurements_frame(_records(0.25, seeds=[0], widths=(256, 512))))
    assert two.interval == "none" and math.isnan(two.ci_low)
    assert two.verdict == "undetermined"
    assert two.r_hat == pytest.approx(0.25, abs=0.1)


def test_wide_interval_is_undetermined():
    est = estimate_multiwidth(measurements_frame(_records(0.25, noise=1.0, seeds=range(4))))
    assert est.ci_high - est.ci_low > 0.3
    assert est.verdict == "undetermined"


def test_threshold_straddle_is_undetermined():
    est = estimate_multiwidth(measurements_frame(_records(0.1, noise=0.01)))
    assert est.ci_low < 0.1 < est.ci_high
    assert est.verdict == "undetermined"


def test_result_prints_and_serializes():
    est = estimate_multiwidth(measurements_frame(_records(0.25)), label="r=0.25")
    text = str(est)
    assert "r̂ = +0.2" in text and "intermediate" in text and "layers.1" in text
    data = json.loads(json.dumps(est.to_dict()))
    assert data["verdict"] == "intermediate" and len(data["layers"]) == 2


def test_bad_inputs_name_the_field():
    frame = measurements_frame(_records(0.25))
    with pytest.raises(ValueError, match="lazy_below"):
        estimate_multiwidth(frame, lazy_below=0.45)
    with pytest.raises(ValueError, match="ci="):
        estimate_multiwidth(frame, ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        estimate_multiwidth(frame, n_boot=0)
    with pytest.raises(ValueError, match="widths"):
        estimate_multiwidth(frame[frame["width"] == 256])
    with pytest.raises(ValueError, match="layers"):
        estimate_multiwidth(frame, layers=["nope"])
    with pytest.raises(ValueError, match="width="):
        measurements_frame([{"seed": 0, "dh/a": 1.0}])


def _one_width(r, n=1024, gamma=1.0, seeds=range(3), noise=0.01, rng_seed=0):
    """Base-relative runs at width n: ‖Δh‖ ~ α = γ·(n/n0)^r, as the tables give (§3)."""
    out = _records(0.0, seeds=seeds, widths=(n,), noise=noise, rng_seed=rng_seed)
    for record in out:
        for name in ("layers.0", "layers.1"):
            record[f"dh_rms/{name}"] *= gamma * (n / BASE) ** r
        record["lin_gap"] = 0.3 * (gamma * (n / BASE) ** r) ** 2 / n
    return out


def test_laziness_index_reads_r_between_references():
    lazy, rich = _one_width(0.0, rng_seed=1), _one_width(0.5, rng_seed=2)
    for r in (0.0, 0.25, 0.5):
        est = laziness_index(_one_width(r, rng_seed=3), lazy, rich)
        assert est.r_hat == pytest.approx(r, abs=0.01)
        assert est.ci_low <= r <= est.ci_high and est.interval == "seed bootstrap"
        assert est.checks.set_index("signal").loc["lin_gap", "value"] == pytest.approx(r, abs=0.01)


def test_laziness_index_reads_gamma_as_richness_and_says_so():
    """One width cannot separate γ from n^r (C11): γ = 8^{1/4} at n/n0 = 16 reads as r + 3/16."""
    lazy, rich = _one_width(0.0), _one_width(0.5)
    est = laziness_index(_one_width(0.25, gamma=8**0.25), lazy, rich)
    assert est.r_hat == pytest.approx(0.25 + 0.25 * math.log(8) / math.log(16), abs=0.01)
    assert any("activity" in note for note in est.notes)


def test_laziness_index_one_seed_reports_signal_spread():
    est = laziness_index(_one_width(0.25)[0], _one_width(0.0)[0], _one_width(0.5)[0])
    assert est.interval == "signal spread"
    assert est.ci_low <= est.r_hat <= est.ci_high


def test_laziness_index_at_the_base_width_is_undetermined():
    est = laziness_index(_one_width(0.25, n=BASE), _one_width(0.0, n=BASE), _one_width(0.5, n=BASE))
    assert est.verdict == "undetermined" and math.isnan(est.r_hat)


def test_laziness_index_needs_hidden_layers():
    with pytest.raises(ValueError, match="dh_rms"):
        laziness_index({"df": 1.0}, {"df": 1.0}, {"df": 1.0})
