"""Cross-entropy keeps the predicted width exponents (docs/losses.md): fitted over widths and
seeds on digits, the first-step ‖Δh‖ slopes of a ReLU MLP match `predict()` (the run's
identity) within 0.1, centered and uncentered."""

import numpy as np
import pytest

from richness.train import run_many

WIDTHS = (128, 256, 512, 1024)
SEEDS = (0, 1, 2)
TOLERANCE = 0.1  # exponent units, written before the data; the fit: log ‖Δh‖ (seed mean) on log n


def _configs(r, width, center):
    return [
        {
            "model": {"kind": "mlp", "depth": 3},
            "data": {"kind": "digits", "n_train": 256, "n_test": 0, "n_probe": 64, "seed": 0},
            "width": width,
            "r": r,
            "gauge": "stp",
            "base_width": 128,
            "seed": seed,
            "center": center,
            "loss": "cross_entropy",
            "train": {"kind": "sgd", "lr": 0.5, "steps": 1},
            "measure": {"steps": [1], "metrics": ["default"]},
        }
        for seed in SEEDS
    ]


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
def test_cross_entropy_first_step_exponents_match_predict(r, center):
    means, predicted = {}, {}
    for width in WIDTHS:
        outcomes = run_many(_configs(r, width, center))
        assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
        for layer in ("layers.0", "layers.1"):
            values = [v for o in outcomes for _, lay, q, v in o.rows if q == "dh" and lay == layer]
            means.setdefault(layer, []).append(np.mean(values))
            predicted[layer] = outcomes[0].identity["predicted"][f"dh/{layer}"]
    for layer, series in means.items():
        slope = np.polyfit(np.log(WIDTHS), np.log(series), 1)[0]
        assert slope == pytest.approx(predicted[layer], abs=TOLERANCE), (layer, slope)
