"""Which predicted exponent each measured series has: `predict()`'s keys as the Meter's keys.

`Parameterization.predict(depth)` files its exponents by representation index ℓ ("dh/2") and
by model-level name ("f0", "df", "lin_gap"); the Meter files its measurements by layer name
("dh/layers.1"). `predicted_series` maps one onto the other once, at run time, and the run
stores the result (`richness.build.identity`), so analysis never rebuilds a table.

The mapping (THEORY.md §4): model-level quantities use their own key (f0 C3, df C4, lin_gap C8);
a per-layer quantity q of layer ℓ uses "q/ℓ" when predict() has it. The output layer (ℓ = depth)
is the model output f, so its ‖Δh‖ is ‖Δf‖ ("df") and its RMS is ‖f0‖ at init and the larger of
f0 and Δf after a step. Otherwise the summary key "q" (for instance "align", C6) is used only
when predict() has no per-layer version of q, so one layer's law never stands in for another's.
"""

from __future__ import annotations

import math

from richness.scaling.parameterization import Parameterization

__all__ = ["LAYER_QUANTITIES", "MODEL_QUANTITIES", "predicted_series"]

LAYER_QUANTITIES = (
    "h_rms",
    "dh",
    "dh_rms",
    "dW_fro",
    "dW_op",
    "max_ratio",
    "align",
    "align_w0",
    "grad",
    "grad_h",
)
"""The Meter's per-layer quantities (richness.measure.meter, stored as "quantity/layer")."""

MODEL_QUANTITIES = ("f0", "df", "lin_gap", "ntk_dist")
"""The Meter's model-level quantities."""


def _layer_exponent(pred: dict[str, float], q: str, ell: int, depth: int, init: bool) -> float:
    # the output's rules first: predict() files "h_rms/depth" as after a step only
    if ell == depth:
        if q in ("dh", "dh_rms"):
            return pred["df"]
        if q == "h_rms":
            return pred["f0"] if init else max(pred["f0"], pred["df"])
    if f"{q}/{ell}" in pred:
        return pred[f"{q}/{ell}"]
    if any(k.startswith(f"{q}/") for k in pred):
        return math.nan
    return pred.get(q, math.nan)


def predicted_series(
    p: Parameterization, layers: list[str], roles: list[str] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Predicted width exponents keyed by Meter key, for a model whose measured layers are
    `layers` in order (ℓ = position + 1, the last is the output, depth = len(layers)), with
    their `roles` in that order (None: input, hidden…, output; see `predict_exponents`).

    Returns:
      (predicted, predicted_init): the exponents after ≥ 1 step, and the keys whose exponent at
      step 0 differs. A key in neither has no prediction. Both empty when depth < 2.
    """
    depth = len(layers)
    if depth < 2:
        return {}, {}
    pred = p.predict(depth, roles=roles)
    after: dict[str, float] = {q: pred[q] for q in MODEL_QUANTITIES if q in pred}
    init: dict[str, float] = {}
    for ell, name in enumerate(layers, start=1):
        for q in LAYER_QUANTITIES:
            later = _layer_exponent(pred, q, ell, depth, init=False)
            first = _layer_exponent(pred, q, ell, depth, init=True)
            if not math.isnan(later):
                after[f"{q}/{name}"] = float(later)
            if first != later and not math.isnan(first):
                init[f"{q}/{name}"] = float(first)
    return after, init
