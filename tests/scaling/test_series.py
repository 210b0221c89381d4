"""predicted_series: predict()'s exponents keyed by the Meter's keys (THEORY.md §4)."""

from __future__ import annotations

from richness.measure.meter import ALL_METRICS
from richness.scaling import predicted_series, preset, richness
from richness.scaling.series import LAYER_QUANTITIES, MODEL_QUANTITIES

LAYERS = ["layers.0", "layers.1", "layers.2"]


def test_quantities_are_the_meters():
    assert sorted(LAYER_QUANTITIES + MODEL_QUANTITIES) == sorted(ALL_METRICS)


def test_keys_and_values_at_r_one_quarter():
    predicted, predicted_init = predicted_series(richness(0.25, base_width=64), LAYERS)
    assert predicted["dh/layers.0"] == predicted["dh/layers.1"] == 0.25  # C2
    assert predicted["dh_rms/layers.1"] == -0.25
    assert predicted["dh/layers.2"] == predicted["df"] == 0.0  # the output moves like f (C4)
    assert (predicted["f0"], predicted["lin_gap"]) == (-0.25, -0.5)  # C3, C8
    assert predicted["align/layers.1"] == 0.0  # C6: the summary, no per-layer law
    assert predicted["h_rms/layers.2"] == 0.0  # the output's RMS after a step: max(f0, Δf)
    assert predicted_init == {"h_rms/layers.2": -0.25}  # ... and at init: ‖f0‖
    for key in ("max_ratio/layers.0", "grad_h/layers.2", "dW_op/layers.1", "ntk_dist"):
        assert key not in predicted and key not in predicted_init  # theory has none


def test_sp_breaks_ntc():
    predicted, _ = predicted_series(preset("sp"), LAYERS)
    assert predicted["df"] == 1.0 and predicted["h_rms/layers.2"] == 1.0  # C9


def test_a_single_layer_has_no_prediction():
    assert predicted_series(richness(0.25), ["only"]) == ({}, {})
