"""Exponent fits, seed-bootstrap intervals, local slopes and criteria verdicts (THEORY.md §4)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _synthetic import LAYERS, identity_of, synth_frames

from richness.analysis import CRITERIA, criteria_verdicts, fit_exponents, local_slopes
from richness.scaling import richness


def _row(fits: pd.DataFrame, label: str, quantity: str, layer: str, step: int) -> pd.Series:
    sel = fits[
        (fits["label"] == label)
        & (fits["quantity"] == quantity)
        & (fits["layer"] == layer)
        & (fits["step"] == step)
    ]
    assert len(sel) == 1, sel
    return sel.iloc[0]


@pytest.fixture(scope="module")
def fits(frames):
    runs, metrics = frames
    return fit_exponents(runs, metrics, n_boot=300)


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("layer", LAYERS[:2])
def test_dh_slope_recovers_r_within_ci(fits, r, layer):
    """C2: ‖Δh‖ ∝ n^r in every hidden layer."""
    row = _row(fits, f"r={r:g}", "dh", layer, 3)
    assert row["slope"] == pytest.approx(r, abs=0.05)
    assert row["ci_low"] <= r <= row["ci_high"]
    assert row["ci_low"] < row["slope"] < row["ci_high"]
    assert (row["n_widths"], row["n_seeds"], row["n_points"]) == (5, 4, 20)
    assert row["widths"] == [64, 128, 256, 512, 1024]


def test_ci_covers_truth_in_most_repetitions():
    """The seed bootstrap's 95% interval covers the true exponent in most synthetic sweeps."""
    covered = []
    for rep in range(40):
        runs, metrics = synth_frames(
            points=(("r", 0.25),),
            seeds=tuple(range(6)),
            steps=(1,),
            rng_seed=1000 + rep,
            seed_slope_noise=0.02,
            noise=0.05,
            broken_runs=False,
        )
        row = _row(
            fit_exponents(runs, metrics, quantities=["dh"], n_boot=300),
            "r=0.25",
            "dh",
            "layers.1",
            1,
        )
        covered.append(row["ci_low"] <= 0.25 <= row["ci_high"])
    assert np.mean(covered) >= 0.8


def _two_seed_frames(slopes: dict[int, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs, rows = [], []
    identity = identity_of(richness(0.25))
    for seed, slope in slopes.items():
        for width in (64, 128, 256, 512):
            config = {"width": width, "r": 0.25, "gauge": "stp", "seed": seed, "center": True}
            run_id = f"s{seed}w{width}"
            runs.append(
                {
                    "run_id": run_id,
                    "status": "done",
                    "config": json.dumps(config),
                    "identity": identity,
                }
            )
            rows.append((run_id, 1, "layers.1", "dh", 0.7 * width**slope))
    return pd.DataFrame(runs), pd.DataFrame(
        rows, columns=["run_id", "step", "layer", "quantity", "value"]
    )


def test_bootstrap_resamples_whole_seeds():
    """Two noiseless seeds with slopes 0.2 and 0.4: resampling seeds can only give 0.2, 0.3, 0.4."""
    runs, metrics = _two_seed_frames({0: 0.2, 1: 0.4})
    row = fit_exponents(runs, metrics, n_boot=200).iloc[0]
    assert row["slope"] == pytest.approx(0.3)
    assert row["ci_low"] == pytest.approx(0.2)
    assert row["ci_high"] == pytest.approx(0.4)
    # the same through plain percentiles: every resample is one of the three seed mixtures
    row = fit_exponents(runs, metrics, n_boot=200, ci_method="percentile").iloc[0]
    assert {round(row["ci_low"], 9), round(row["ci_high"], 9)} <= {0.2, 0.3, 0.4}


def test_one_seed_has_no_interval():
    runs, metrics = _two_seed_frames({0: 0.25})
    row = fit_exponents(runs, metrics).iloc[0]
    assert row["slope"] == pytest.approx(0.25)
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert row["n_seeds"] == 1


def test_results_are_reproducible(frames):
    runs, metrics = frames
    a = fit_exponents(runs, metrics, quantities=["dh"], n_boot=100, seed=3)
    b = fit_exponents(runs, metrics, quantities=["dh"], n_boot=100, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_local_slopes_show_a_bend():
    """Local slopes follow a change of exponent that a single global fit averages away."""
    runs, rows = [], []
    widths = [64, 128, 256, 512, 1024]
    identity = identity_of(richness(0.5))
    for seed in range(3):
        for width in widths:
            config = {"width": width, "r": 0.5, "gauge": "stp", "seed": seed}
            run_id = f"s{seed}w{width}"
            runs.append(
                {
                    "run_id": run_id,
                    "status": "done",
                    "config": json.dumps(config),
                    "identity": identity,
                }
            )
            # slope 0.1 up to 256, then 0.4
            value = min(width, 256) ** 0.1 * (max(width, 256) / 256) ** 0.4 * (1 + 0.001 * seed)
            rows.append((run_id, 2, "layers.0", "dh", value))
    runs = pd.DataFrame(runs)
    metrics = pd.DataFrame(rows, columns=["run_id", "step", "layer", "quantity", "value"])
    local = local_slopes(runs, metrics, n_boot=50)
    assert list(zip(local["width_lo"], local["width_hi"], strict=True)) == [
        (64, 128),
        (128, 256),
        (256, 512),
        (512, 1024),
    ]
    np.testing.assert_allclose(local["slope"], [0.1, 0.1, 0.4, 0.4], atol=1e-9)
    assert (local["predicted"] == 0.5).all()
    fit = fit_exponents(runs, metrics, n_boot=50).iloc[0]
    np.testing.assert_allclose(fit["local_slopes"], [0.1, 0.1, 0.4, 0.4], atol=1e-9)
    assert 0.1 < fit["slope"] < 0.4


def test_predicted_column(fits):
    """The prediction each run recorded in its identity, per layer where theory has one."""
    expected = {
        ("r=0.25", "dh", "layers.0"): 0.25,
        ("r=0.25", "dh", "layers.1"): 0.25,
        ("r=0.25", "dh", "layers.2"): 0.0,  # the output layer moves like ‖Δf‖ (C4)
        ("r=0.25", "dh_rms", "layers.1"): -0.25,
        ("r=0.25", "f0", ""): -0.25,  # C3
        ("r=0.25", "df", ""): 0.0,  # C4
        ("r=0.25", "lin_gap", ""): -0.5,  # C8: 2r − 1
        ("r=0.25", "align", "layers.1"): 0.0,  # C6, summary key
        ("r=0.5", "dh", "layers.1"): 0.5,
        ("r=0", "lin_gap", ""): -1.0,
        ("sp", "df", ""): 1.0,  # C9: SP at fixed LR breaks NTC
        ("sp", "dh", "layers.1"): 1.0,
        ("sp", "max_ratio", "layers.1"): 1.0,
        ("sp", "h_rms", "layers.2"): 1.0,
    }
    for (label, quantity, layer), value in expected.items():
        assert _row(fits, label, quantity, layer, 3)["predicted"] == pytest.approx(value), (
            label,
            quantity,
            layer,
        )
    # at init the output layer's RMS is ‖f0‖ (C3), after a step the larger of f0 and Δf
    assert _row(fits, "r=0.25", "h_rms", "layers.2", 0)["predicted"] == -0.25
    assert _row(fits, "r=0.25", "h_rms", "layers.2", 3)["predicted"] == 0.0
    for label, quantity, layer in [("r=0.25", "loss", ""), ("r=0.25", "max_ratio", "layers.0")]:
        assert math.isnan(_row(fits, label, quantity, layer, 3)["predicted"])
    sp = fits[fits["label"] == "sp"]
    assert sp["r"].isna().all() and (sp["gauge"] == "").all() and (sp["preset"] == "sp").all()


def test_preset_on_the_scale_gets_its_r_and_gauge():
    runs, metrics = synth_frames(points=(("preset", "mup"),), broken_runs=False)
    fits = fit_exponents(runs, metrics, quantities=["dh", "f0"], n_boot=50)
    row = _row(fits, "mup", "dh", "layers.1", 3)
    assert row["r"] == 0.5 and row["gauge"] == "mup" and row["predicted"] == 0.5
    assert _row(fits, "mup", "f0", "", 3)["predicted"] == -0.5


def test_nested_config_fields():
    """A spec-shaped config (optimizer and model as mappings) is read as well as a flat one."""
    rows, runs = [], []
    identity = identity_of(richness(0.0, "mup", optimizer="adam"), ["l0", "l1", "l2", "l3"])
    for seed in range(2):
        for width in (128, 256, 512):
            config = {
                "width": width,
                "r": 0.0,
                "gauge": "mup",
                "seed": seed,
                "optimizer": {"kind": "adam", "lr": 1e-3},
                "model": {"kind": "mlp", "depth": 4},
            }
            run_id = f"s{seed}w{width}"
            runs.append(
                {
                    "run_id": run_id,
                    "status": "done",
                    "config": json.dumps(config),
                    "identity": identity,
                }
            )
            rows.append((run_id, 1, "l2", "dh", width**0.01))
    metrics = pd.DataFrame(rows, columns=["run_id", "step", "layer", "quantity", "value"])
    row = fit_exponents(pd.DataFrame(runs), metrics, n_boot=20).iloc[0]
    assert (row["optimizer"], row["depth"], row["ell"], row["gauge"]) == ("adam", 4, 3, "mup")
    assert row["predicted"] == 0.0  # dh/3 of a depth-4 table at r = 0


def test_skips_nonpositive_and_nonfinite_values(frames):
    runs, metrics = frames
    fits = fit_exponents(runs, metrics, quantities=["dh"], n_boot=50)
    assert (fits["step"] > 0).all()  # every ‖Δh‖ at init is 0: no step-0 fit
    bad = metrics.copy()
    target = (bad["quantity"] == "dh") & (bad["layer"] == "layers.1") & (bad["step"] == 3)
    hit = bad.index[target][:3]
    bad.loc[hit, "value"] = [-1.0, np.nan, np.inf]
    fits = fit_exponents(runs, bad, quantities=["dh"], steps=[3], n_boot=50)
    counts = fits.loc[fits["layer"] == "layers.1", "n_skipped"]
    assert counts.sum() == 3
    assert fits.loc[fits["layer"] == "layers.1", "n_points"].min() < 20


def test_only_done_runs_are_fitted(fits, frames):
    runs, _ = frames
    assert {"diverged", "failed"} <= set(runs["status"])
    assert all(2048 not in widths for widths in fits["widths"])
    assert np.isfinite(fits["slope"]).all()


def test_steps_and_quantities_filter(frames):
    runs, metrics = frames
    fits = fit_exponents(runs, metrics, quantities=["f0", "df"], steps=[1], n_boot=0)
    assert set(fits["quantity"]) == {"f0", "df"} and set(fits["step"]) == {1}
    assert fits["ci_low"].isna().all()  # n_boot=0: no intervals


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n_boot": -1}, "n_boot"), ({"ci": 1.5}, "ci"), ({"ci_method": "bca"}, "ci_method")],
)
def test_bad_arguments(frames, kwargs, field):
    runs, metrics = frames
    with pytest.raises(ValueError, match=field):
        fit_exponents(runs, metrics, **kwargs)


def test_a_done_run_without_identity_is_refused(frames):
    """No identity, no prediction: the fits never guess a run's layers from its config."""
    runs, metrics = frames
    runs = runs.copy()
    runs.loc[runs["status"] == "done", "identity"] = None
    with pytest.raises(ValueError, match="identity"):
        fit_exponents(runs, metrics, n_boot=0)


def test_a_layer_missing_from_the_identity_is_refused(frames):
    runs, metrics = frames
    renamed = metrics.assign(layer=metrics["layer"].replace("layers.1", "blocks.1"))
    with pytest.raises(ValueError, match="blocks.1"):
        fit_exponents(runs, renamed, n_boot=0)


def test_missing_columns_are_named():
    metrics = pd.DataFrame(columns=["run_id", "step", "layer", "quantity", "value"])
    with pytest.raises(ValueError, match="status"):
        fit_exponents(pd.DataFrame({"run_id": []}), metrics)
    with pytest.raises(ValueError, match="quantity"):
        fit_exponents(pd.DataFrame({"run_id": [], "status": []}), metrics.drop(columns="quantity"))


# --------------------------------------------------------------------------------- verdicts


def _verdict(verdicts: pd.DataFrame, label: str, criterion: str) -> pd.Series:
    sel = verdicts[(verdicts["label"] == label) & (verdicts["criterion"] == criterion)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_scale_points_pass_every_criterion(fits):
    verdicts = criteria_verdicts(fits)
    assert set(verdicts["criterion"]) == set(CRITERIA)
    for label in ("r=0", "r=0.25", "r=0.5"):
        for criterion in CRITERIA:
            row = _verdict(verdicts, label, criterion)
            assert row["verdict"] == "pass", row.to_dict()
            assert row["expected"] == "pass" and row["agreement"] == "agrees"
    richness = _verdict(verdicts, "r=0.25", "richness")
    assert richness["target"] == 0.25 and richness["predicted"] == 0.25
    assert richness["layer"] in LAYERS[:2] and richness["step"] == 3


def test_sp_fails_ntc_and_max_as_theory_expects(fits):
    """C9: an SP-like ‖Δf‖ slope of 1 fails NTC; the measured slope still matches predict()."""
    verdicts = criteria_verdicts(fits)
    ntc = _verdict(verdicts, "sp", "NTC")
    assert ntc["verdict"] == "fail" and ntc["expected"] == "fail"
    assert ntc["agreement"] == "agrees"
    assert ntc["measured"] == pytest.approx(1.0, abs=0.05) and ntc["predicted"] == 1.0
    assert ntc["target"] == 0.0
    mx = _verdict(verdicts, "sp", "MAX")
    assert mx["verdict"] == "fail" and mx["layer"] == "layers.1"
    assert _verdict(verdicts, "sp", "activations")["verdict"] == "pass"


def _fit_row(slope, low, high, predicted=0.0, quantity="df", layer="", ell=-1, step=1):
    return {
        "quantity": quantity,
        "layer": layer,
        "ell": ell,
        "label": "x",
        "r": 0.0,
        "preset": None,
        "gauge": "stp",
        "gamma": 1.0,
        "optimizer": "sgd",
        "base_width": np.nan,
        "depth": 3.0,
        "step": step,
        "slope": slope,
        "ci_low": low,
        "ci_high": high,
        "predicted": predicted,
    }


@pytest.mark.parametrize(
    ("slope", "low", "high", "verdict"),
    [
        (0.05, 0.01, 0.09, "pass"),  # slope and whole interval within ±0.1
        (0.08, 0.05, 0.11, "undetermined"),  # slope within, interval reaches past the band
        (0.15, 0.12, 0.18, "fail"),  # the whole interval beyond the band
        (0.15, -0.01, 0.30, "undetermined"),  # a wide interval covering 0 does not pass
        (-0.2, np.nan, np.nan, "undetermined"),  # no interval (one seed): no verdict
    ],
)
def test_agreement_rule(slope, low, high, verdict):
    fits = pd.DataFrame([_fit_row(slope, low, high)])
    row = _verdict(criteria_verdicts(fits, tolerance=0.1), "x", "NTC")
    assert row["verdict"] == verdict


def test_unmeasured_criteria_are_na():
    fits = pd.DataFrame([_fit_row(0.0, -0.1, 0.1)])
    verdicts = criteria_verdicts(fits)
    assert _verdict(verdicts, "x", "MAX")["verdict"] == "n/a"
    assert _verdict(verdicts, "x", "MAX")["detail"] == "not measured"


def test_verdict_step_argument(fits):
    verdicts = criteria_verdicts(fits, step=1)
    assert (verdicts.loc[verdicts["criterion"] == "NTC", "step"] == 1).all()


def test_bad_tolerance(fits):
    with pytest.raises(ValueError, match="tolerance"):
        criteria_verdicts(fits, tolerance=-0.1)
