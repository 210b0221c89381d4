"""Width exponents with seed-bootstrap confidence intervals, local slopes, criteria verdicts.

Measures: THEORY.md §4, claims C1–C8 (and C9 for SP): for a fixed parameterization and a
fixed number of steps t, the slope of log(quantity) against log(width n). THEORY.md's note on
C8 and research/notes.md ask for the local slopes between consecutive widths next to the global
fit, to show whether the slope has converged; `local_slopes` gives them.

Uncertainty comes from the seeds: seeds are the independent replicates (one seed's runs at
different widths may share data order, probe inputs and so on), so the bootstrap resamples
seed ids with replacement (a cluster bootstrap) and refits, never single (width, seed) points
(`richness.analysis._stats`). Verdicts judge a slope against its target by
`richness.analysis.agreement.agreement`.

Example:
  >>> fits = fit_exponents(runs, metrics, quantities=["dh"])  # doctest: +SKIP
  >>> fits[["label", "layer", "step", "slope", "ci_low", "ci_high", "predicted"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from richness.analysis import _stats
from richness.analysis._frames import GROUP_KEYS, group_key, meter_key, predicted_exponent, tidy
from richness.analysis.agreement import Agreement, agreement

__all__ = ["CRITERIA", "criteria_verdicts", "fit_exponents", "local_slopes"]

_FIT_COLUMNS = [
    "quantity",
    "layer",
    "ell",
    *GROUP_KEYS,
    "step",
    "slope",
    "ci_low",
    "ci_high",
    "predicted",
    "n_widths",
    "n_seeds",
    "n_points",
    "n_skipped",
    "widths",
    "local_slopes",
]
_LOCAL_COLUMNS = [
    "quantity",
    "layer",
    "ell",
    *GROUP_KEYS,
    "step",
    "width_lo",
    "width_hi",
    "slope",
    "ci_low",
    "ci_high",
    "predicted",
]


def fit_exponents(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    quantities: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    ci_method: _stats.CiMethod = "expanded",
) -> pd.DataFrame:
    """Returns one fitted width exponent per (quantity, layer, parameterization, step).

    For each series the slope is the least-squares fit of log(value) on log(width) over every
    (width, seed) point of the runs with status "done" (several values in one cell are
    averaged in log space first). The confidence interval is a cluster bootstrap: seed ids
    are resampled with replacement ``n_boot`` times and the slope refitted. Sweeps have few
    seeds (3–8), where plain percentile intervals are too narrow (about 75% coverage at a
    nominal 95% with 4 seeds), so by default the percentile levels are widened as in
    Hesterberg's expanded percentile interval (arXiv:1411.5279, §6.1): the tail
    probability α/2 becomes Φ(−√(S/(S−1))·t_{S−1, 1−α/2}) for S seeds. The
    prediction is the one the run recorded for that Meter key when it ran (its identity;
    `richness.scaling.series.predicted_series` maps `Parameterization.predict` onto the keys).

    Measures: THEORY.md §4 C1–C8 (one row per claim quantity and layer).

    Args:
      runs: the store's runs frame (run_id, status, config JSON and flattened fields, identity),
        or `run_frames` output.
      metrics: the store's metrics frame (run_id, step, layer, quantity, value).
      quantities: keep only these quantities (None: all).
      steps: keep only these steps (None: all).
      n_boot: bootstrap resamples; 0 skips the intervals.
      ci: confidence level of the interval, in (0, 1).
      seed: seed of the bootstrap's random draws (results are reproducible).
      ci_method: "expanded" (default, small-sample widening) or "percentile" (plain).

    Returns:
      A DataFrame with columns quantity, layer (module name, "" at model level), ell (ℓ, or
      -1 at model level), label (preset name or "r=…"), r (NaN for SP), preset, gauge (""
      when undefined), gamma, optimizer, base_width, depth, step, slope, ci_low, ci_high (NaN
      with fewer than two seeds), predicted (NaN without a prediction), n_widths, n_seeds,
      n_points, n_skipped (values dropped for being ≤ 0 or not finite), widths (sorted list)
      and local_slopes (list, the slope between consecutive widths). Series with fewer than
      two usable widths are left out.

    Raises:
      ValueError: ``n_boot`` < 0, ``ci`` outside (0, 1), frames without the needed columns, or
        a done run without an identity record.
    """
    fits, _ = _fit_all(
        runs, metrics, quantities, steps, n_boot, ci, seed, ci_method, want_local=False
    )
    return fits


def local_slopes(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    quantities: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    ci_method: _stats.CiMethod = "expanded",
) -> pd.DataFrame:
    """Returns the slopes between consecutive widths, with seed-bootstrap intervals.

    A global fit hides curvature: THEORY.md (note under §4, C8) and research/notes.md show
    finite-width slopes drifting towards the prediction as width grows. Each row is the fit
    restricted to two consecutive widths, so a converged exponent shows as flat local slopes.

    Args:
      runs, metrics, quantities, steps, n_boot, ci, seed, ci_method: as in `fit_exponents`.

    Returns:
      A long DataFrame: quantity, layer, ell, label, r, preset, gauge, gamma, optimizer,
      base_width, depth, step, width_lo, width_hi, slope, ci_low, ci_high, predicted.
    """
    _, local = _fit_all(
        runs, metrics, quantities, steps, n_boot, ci, seed, ci_method, want_local=True
    )
    return local


def _check(n_boot: int, ci: float, ci_method: str) -> None:
    if ci_method not in ("expanded", "percentile"):
        raise ValueError(f"ci_method={ci_method!r} is not one of 'expanded', 'percentile'")
    if not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"n_boot={n_boot!r} must be an integer ≥ 0 (0 skips the intervals)")
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie in (0, 1), e.g. 0.95")


def _fit_all(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    quantities: Sequence[str] | None,
    steps: Sequence[int] | None,
    n_boot: int,
    ci: float,
    seed: int,
    ci_method: str,
    *,
    want_local: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    _check(n_boot, ci, ci_method)
    data = tidy(runs, metrics)
    if quantities is not None:
        data = data[data["quantity"].isin(list(quantities))]
    if steps is not None:
        data = data[data["step"].isin([int(s) for s in steps])]
    data = data[np.isfinite(data["width"]) & (data["width"] > 0)]
    fit_rows: list[dict[str, Any]] = []
    local_rows: list[dict[str, Any]] = []
    if data.empty:
        return pd.DataFrame(columns=_FIT_COLUMNS), pd.DataFrame(columns=_LOCAL_COLUMNS)
    for (group, quantity, layer, step), series in data.groupby(
        ["group", "quantity", "layer", "step"], sort=True
    ):
        first = series.iloc[0]
        values = series["value"].to_numpy(dtype=np.float64)
        good = np.isfinite(values) & (values > 0)
        n_skipped = int((~good).sum())
        series = series[good]
        widths = np.sort(series["width"].unique())
        if len(widths) < 2:
            continue
        x, y, mask, n_seeds = _stats.seed_matrix(series, widths)
        ell = int(first["ell"])
        predicted = predicted_exponent(first["identity"], meter_key(quantity, layer), int(step))
        key = f"{group}|{quantity}|{layer}|{step}"
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        counts = _stats.seed_counts(rng, n_seeds, n_boot)
        lo_q = _stats.tail(ci, n_seeds, ci_method)  # type: ignore[arg-type]
        hi_q = 1 - lo_q
        slope, low, high = _stats.slope_ci(x, y, mask, counts, lo_q, hi_q)
        ident = {"quantity": quantity, "layer": layer, "ell": ell}
        ident.update({k: first[k] for k in GROUP_KEYS})
        ident["step"] = int(step)
        local = []
        for i in range(len(widths) - 1):
            pair = slice(i, i + 2)
            s_i, lo_i, hi_i = _stats.slope_ci(x[pair], y[pair], mask[pair], counts, lo_q, hi_q)
            local.append(s_i)
            if want_local:
                local_rows.append(
                    {
                        **ident,
                        "width_lo": int(widths[i]),
                        "width_hi": int(widths[i + 1]),
                        "slope": s_i,
                        "ci_low": lo_i,
                        "ci_high": hi_i,
                        "predicted": predicted,
                    }
                )
        fit_rows.append(
            {
                **ident,
                "slope": slope,
                "ci_low": low,
                "ci_high": high,
                "predicted": predicted,
                "n_widths": len(widths),
                "n_seeds": n_seeds,
                "n_points": int(mask.sum()),
                "n_skipped": n_skipped,
                "widths": [int(w) for w in widths],
                "local_slopes": local,
            }
        )
    fits = pd.DataFrame.from_records(fit_rows, columns=_FIT_COLUMNS)
    local_df = pd.DataFrame.from_records(local_rows, columns=_LOCAL_COLUMNS)
    return fits, local_df


# ------------------------------------------------------------------------------- criteria

# name -> (quantity, claim, which layers, target): "hidden" is ℓ < depth, "update" is ℓ ≥ 2
# (layers with an input that moves), "model" is the model-level row. Target None: predicted.
CRITERIA: dict[str, tuple[str, str, str, float | None]] = {
    "activations": ("h_rms", "C1", "hidden", 0.0),
    "NTC": ("df", "C4", "model", 0.0),
    "richness": ("dh", "C2", "hidden", None),
    "MAX": ("max_ratio", "C5", "update", 0.0),
}

_VERDICT_COLUMNS = [
    *GROUP_KEYS,
    "criterion",
    "claim",
    "quantity",
    "layer",
    "step",
    "measured",
    "ci_low",
    "ci_high",
    "target",
    "predicted",
    "tolerance",
    "verdict",
    "expected",
    "agreement",
    "detail",
]


def criteria_verdicts(
    fits: pd.DataFrame, tolerance: float = 0.1, *, step: int | None = None
) -> pd.DataFrame:
    """Returns a verdict per parameterization for THEORY.md §2's criteria.

    Criteria (each judged from the fitted slopes of `fit_exponents`):
      activations (C1): hidden h_rms slope ≈ 0, at init and at the evaluated step;
      NTC (C4): ‖Δf‖ slope ≈ 0;
      richness (C2): hidden ‖Δh‖ slope ≈ the predicted exponent (r on the scale);
      MAX (C5): max_ratio slope ≈ 0 in layers ℓ ≥ 2.
    Each covered layer's slope is judged against its target by `agreement` (the whole
    interval within ±``tolerance``: agrees; entirely outside: disagrees; else undetermined).
    A criterion passes when every covered layer agrees, fails when one disagrees, and is
    "undetermined" otherwise; the worst layer is reported.

    Args:
      fits: the output of `fit_exponents`.
      tolerance: the half-width of the band around the target, in exponent units.
      step: the step to judge (None: each parameterization's last fitted step).

    Returns:
      One row per (parameterization, criterion): the group keys (label, r, gauge, ...),
      criterion, claim, quantity, layer (the worst one), step, measured, ci_low, ci_high,
      target, predicted (theory's exponent of that layer), tolerance, verdict ("pass",
      "fail", "undetermined", or "n/a" when the quantity was not measured or has no
      prediction), expected (theory's verdict: does the predicted exponent meet the target;
      SP's NTC is expected to fail), agreement (the measured slopes against their predictions,
      the worst layer's `agreement`; None without a prediction) and detail (every covered
      layer's slope).

    Raises:
      ValueError: ``tolerance`` < 0.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} must be ≥ 0 (exponent units, e.g. 0.1)")
    rows: list[dict[str, Any]] = []
    if fits.empty:
        return pd.DataFrame(columns=_VERDICT_COLUMNS)
    keyed = fits.assign(_key=[group_key(row) for row in fits.to_dict("records")])
    for _, group in keyed.groupby("_key", sort=False):
        first = group.iloc[0]
        positive = group["step"][group["step"] > 0]
        t = (
            int(step)
            if step is not None
            else int((positive if len(positive) else group["step"]).max())
        )
        depth = None if pd.isna(first["depth"]) else int(first["depth"])
        for name, (quantity, claim, layers, target) in CRITERIA.items():
            sel = group[(group["quantity"] == quantity)]
            if layers == "model":
                sel = sel[sel["ell"] < 0]
            elif layers == "hidden":
                sel = sel[(sel["ell"] >= 1) & ((sel["ell"] < depth) if depth else True)]
            else:
                sel = sel[sel["ell"] >= 2]
            wanted_steps = {0, t} if name == "activations" else {t}
            sel = sel[sel["step"].isin(wanted_steps)]
            rows.append(_verdict(first, name, claim, quantity, t, sel, target, tolerance))
    return pd.DataFrame.from_records(rows, columns=_VERDICT_COLUMNS)


# how bad each agreement is, for picking the worst layer
_RANK: dict[Agreement, int] = {"agrees": 0, "undetermined": 1, "disagrees": 2}
_CRITERION: dict[Agreement, str] = {
    "agrees": "pass",
    "undetermined": "undetermined",
    "disagrees": "fail",
}


def _gap(slope: float, goal: float) -> float:
    return abs(slope - goal) if math.isfinite(slope) else math.inf


def _verdict(
    first: pd.Series,
    name: str,
    claim: str,
    quantity: str,
    step: int,
    sel: pd.DataFrame,
    target: float | None,
    tolerance: float,
) -> dict[str, Any]:
    row: dict[str, Any] = {k: first[k] for k in GROUP_KEYS}
    row.update(criterion=name, claim=claim, quantity=quantity, step=step, tolerance=tolerance)
    checked = []  # (fit, goal, its agreement with the goal, with the prediction, theory's)
    for fit in sel.to_dict("records"):
        goal = fit["predicted"] if target is None else target
        if math.isnan(goal):
            continue
        predicted = fit["predicted"]
        has_pred = not math.isnan(predicted)
        checked.append(
            (
                fit,
                goal,
                agreement(fit["slope"], fit["ci_low"], fit["ci_high"], goal, tolerance),
                agreement(fit["slope"], fit["ci_low"], fit["ci_high"], predicted, tolerance)
                if has_pred
                else None,
                agreement(predicted, predicted, predicted, goal, tolerance) if has_pred else None,
            )
        )
    if not checked:
        row.update(
            layer=None,
            measured=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            target=math.nan if target is None else target,
            predicted=math.nan,
            verdict="n/a",
            expected="n/a",
            agreement=None,
            detail="not measured" if sel.empty else "no prediction",
        )
        return row
    worst = max(checked, key=lambda c: (_RANK[c[2]], _gap(c[0]["slope"], c[1])))
    fit, goal = worst[0], worst[1]
    with_pred = [c for c in checked if c[3] is not None]
    row.update(
        layer=fit["layer"],
        step=int(fit["step"]),
        measured=fit["slope"],
        ci_low=fit["ci_low"],
        ci_high=fit["ci_high"],
        target=goal,
        predicted=fit["predicted"],
        verdict=_CRITERION[worst[2]],
        expected=_CRITERION[max((c[4] for c in with_pred), key=_RANK.__getitem__)]
        if with_pred
        else "n/a",
        agreement=max((c[3] for c in with_pred), key=_RANK.__getitem__) if with_pred else None,
        detail="; ".join(
            f"{c[0]['layer'] or 'model'} t={int(c[0]['step'])}: {c[0]['slope']:+.3f}"
            + (f" (pred {c[0]['predicted']:+.3g})" if c[3] is not None else "")
            for c in sorted(checked, key=lambda c: (c[0]["ell"], c[0]["step"]))
        ),
    )
    return row
