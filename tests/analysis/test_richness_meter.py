"""The multi-width richness meter on synthetic measurements with known exponents (THEORY.md §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from richness.analysis.richness_meter import estimate_multiwidth, measurement_frames

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
    est = estimate_multiwidth(measurement_frames(_records(r)))
    assert est.r_hat == pytest.approx(r, abs=0.02)
    assert est.ci_low <= r <= est.ci_high
    assert est.ci_high - est.ci_low < 0.1
    assert est.verdict == verdict
    assert est.interval == "seed bootstrap"
    assert list(est.layers["layer"]) == ["layers.0", "layers.1"]  # the readout is left out
    assert est.context["widths"] == list(WIDTHS) and est.context["n_seeds"] == 4
    assert est.checks.set_index("signal").loc["df", "ok"]


def test_raw_value_is_reported_and_clipped_reading_is_separate():
    est = estimate_multiwidth(measurement_frames(_records(0.7)))
    assert est.r_hat == pytest.approx(0.7, abs=0.02)
    assert est.r == 0.5 and est.position == 1.0
    assert est.verdict == "ill-scaled"  # interval off [0, 1/2] by more than the tolerance


def test_output_growing_with_width_is_ill_scaled():
    """SP-like: ‖Δf‖ ~ n^1 breaks NTC (C4, C9) whatever ‖Δh‖ does."""
    est = estimate_multiwidth(measurement_frames(_records(0.5, df_exp=1.0)))
    assert est.verdict == "ill-scaled"
    df = est.checks.set_index("signal").loc["df"]
    assert df["value"] == pytest.approx(1.0, abs=1e-9) and df["ok"] == False  # noqa: E712
    assert any("df n^+1.00" in note for note in est.notes)


def test_one_seed_uses_width_residuals_and_two_widths_give_no_interval():
    three = estimate_multiwidth(measurement_frames(_records(0.25, seeds=[0])))
    assert three.interval == "width residuals"
    assert three.ci_low < 0.25 < three.ci_high
    two = estimate_multiwidth(measurement_frames(_records(0.25, seeds=[0], widths=(256, 512))))
    assert two.interval == "none" and math.isnan(two.ci_low)
    assert two.verdict == "undetermined"
    assert two.r_hat == pytest.approx(0.25, abs=0.1)


def test_wide_interval_is_undetermined():
    est = estimate_multiwidth(measurement_frames(_records(0.25, noise=1.0, seeds=range(4))))
    assert est.ci_high - est.ci_low > 0.3
    assert est.verdict == "undetermined"


def test_threshold_straddle_is_undetermined():
    est = estimate_multiwidth(measurement_frames(_records(0.1, noise=0.01)))
    assert est.ci_low < 0.1 < est.ci_high
    assert est.verdict == "undetermined"


def test_result_prints_and_serializes():
    est = estimate_multiwidth(measurement_frames(_records(0.25)), label="r=0.25")
    text = str(est)
    assert "r̂ = +0.2" in text and "intermediate" in text and "layers.1" in text
    data = json.loads(json.dumps(est.to_dict()))
    assert data["verdict"] == "intermediate" and len(data["layers"]) == 2


def test_bad_inputs_name_the_field():
    frame = measurement_frames(_records(0.25))
    with pytest.raises(ValueError, match="lazy_below"):
        estimate_multiwidth(frame, lazy_below=0.45)
    with pytest.raises(ValueError, match="ci="):
        estimate_multiwidth(frame, ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        estimate_multiwidth(frame, n_boot=0)
    with pytest.raises(ValueError, match="widths"):
        estimate_multiwidth(measurement_frames(_records(0.25, widths=(256,))))
    with pytest.raises(ValueError, match="layers"):
        estimate_multiwidth(frame, layers=["nope"])
    with pytest.raises(ValueError, match="width="):
        measurement_frames([{"seed": 0, "dh/a": 1.0}])


def test_undetermined_scale_check_gives_no_reading():
    """Two seeds whose ‖Δf‖ exponents are 0.05 and 0.2: the fit (0.125) is within 0.15 of 0,
    its interval (the two seeds' range) is not, so whether the run is on the scale is open."""
    records = _records(0.5, seeds=range(2), noise=0.0)
    for record in records:
        record["df"] = (record["width"] / BASE) ** (0.05 + 0.15 * record["seed"])
    est = estimate_multiwidth(measurement_frames(records))
    df = est.checks.set_index("signal").loc["df"]
    assert df["value"] == pytest.approx(0.125) and df["ok"] is None
    assert est.verdict == "undetermined"
    assert any("on the scale" in note for note in est.notes)


def test_several_recipes_are_refused():
    runs, metrics = measurement_frames(_records(0.25))
    other = runs.assign(r=0.5, run_id=runs["run_id"] + "x")
    both = (
        pd.concat([runs, other]),
        pd.concat([metrics, metrics.assign(run_id=metrics["run_id"] + "x")]),
    )
    with pytest.raises(ValueError, match="estimate_store"):
        estimate_multiwidth(both)


def test_residual_normalization_removes_the_initial_residuals_width_dependence():
    """A run whose ‖Δh‖ carries ‖f0 − y‖ ~ √(1 + n^{−2r}·c) reads r once divided by it."""
    import numpy as np

    from richness.analysis.richness_meter import residual_normalized

    records = []
    for n in (128, 256, 512, 1024):
        for s in range(3):
            residual = np.sqrt(1 + 4.0 * (n / 128) ** -0.5)  # ‖f0‖² = 4 (n/128)^{-2r}, r = ¼
            records.append(
                {
                    "width": n,
                    "seed": s,
                    "dh/l0": 0.1 * n**0.25 * residual * (1 + 0.01 * s),
                    "dh/out": 1.0,
                    "df": 1.0,
                    "h_rms/l0": 1.0,
                }
            )
    runs, metrics = measurement_frames(records)
    loss0 = metrics[metrics.quantity == "df"].copy()
    loss0["quantity"], loss0["step"] = "loss", 0
    residuals = {
        r: rec["dh/l0"] / (0.1 * rec["width"] ** 0.25 * (1 + 0.01 * rec["seed"]))
        for r, rec in zip(runs.run_id, records, strict=True)
    }
    loss0["value"] = loss0["run_id"].map(residuals) ** 2 / 2
    metrics = pd.concat([metrics, loss0], ignore_index=True)
    raw = estimate_multiwidth((runs, metrics))
    fixed = estimate_multiwidth(residual_normalized(runs, metrics))
    assert raw.r_hat < 0.2
    assert fixed.r_hat == pytest.approx(0.25, abs=1e-6)
