"""The richness meter across width: r̂, the width exponent of ‖Δh‖ of one recipe, with a verdict.

Estimates where a recipe sits on the richness scale ‖Δh‖ ~ γ·n^r (THEORY.md §3) from the
Meter's measurements (`richness.measure.meter`) of the same recipe at two or more widths:
r̂ = the fitted exponent of ‖Δh_ℓ‖ against width (C2), per hidden layer and pooled. It reads r
directly, whatever γ is, and it tells whether the run is well scaled at all (‖Δf‖ ~ n^0, C4/NTC;
h_rms ~ n^0, C1). The fits are `fit_exponents`' (seed bootstrap), the scale checks are judged
by `richness.analysis.agreement`, the result and its verdict are
`richness.analysis.reading.RichnessEstimate` (verdict rules there). At one width see
`richness.analysis.laziness.laziness_index`.

Floor 3: numpy and pandas only, no torch. `richness.estimate.estimate_richness` runs a user's
factory at several widths and calls `estimate_multiwidth`.

Example:
  >>> import richness.analysis.richness_meter as rm
  >>> records = [{"width": n, "seed": s, "dh/l0": 0.1 * n**0.5 * (1 + 0.01 * s),
  ...             "dh/out": 1.0, "df": 1.0, "h_rms/l0": 1.0} for n in (128, 256, 512)
  ...            for s in range(3)]
  >>> est = rm.estimate_multiwidth(rm.measurement_frames(records))
  >>> round(est.r_hat, 3), est.verdict
  (0.5, 'rich')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from richness.analysis import _stats
from richness.analysis._frames import load_frames, plain_identity, run_frames, tidy
from richness.analysis.agreement import agreement
from richness.analysis.fits import fit_exponents
from richness.analysis.reading import RichnessEstimate, check_thresholds, scale_verdict

__all__ = ["estimate_multiwidth", "estimate_store", "measurement_frames", "residual_normalized"]

_POOLED = "dh_pooled"  # the hidden layers' geometric-mean ‖Δh‖, one series per run and step
_OK = {"agrees": True, "disagrees": False, "undetermined": None}


def measurement_frames(records: Iterable[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns store-shaped ``(runs, metrics)`` from Meter dicts labelled by width and seed.

    Args:
      records: one mapping per measurement: ``"width"`` (int, required), ``"seed"`` (default 0),
        ``"step"`` (default 0: the step the measurement was taken after; keep it the same
        across widths) and the `Meter.measure()` keys (``"dh/layers.1"``, ``"df"``, ...).
        Records of one (width, seed) are one run.

    Returns:
      `richness.analysis.run_frames` output: one run per (width, seed), whose identity lists
      the measured layers in the order of their first appearance (ℓ = position + 1, the last
      is the readout) without predictions.

    Raises:
      ValueError: a record without an integer ``"width"`` ≥ 1.
    """
    order: list[str] = []
    runs: dict[tuple[int, Any], list[tuple[int, str, str, float]]] = {}
    for i, record in enumerate(records):
        width = record.get("width")
        if not isinstance(width, int | np.integer) or width < 1:
            raise ValueError(f"record {i} has width={width!r}; every record needs an int ≥ 1")
        seed, step = record.get("seed", 0), int(record.get("step", 0))
        rows = runs.setdefault((int(width), seed), [])
        for key, value in record.items():
            if key in ("width", "seed", "step"):
                continue
            quantity, _, layer = key.partition("/")
            if layer and layer not in order:
                order.append(layer)
            rows.append((step, layer, quantity, float(value)))
    identity = plain_identity(order)
    return run_frames(
        {
            "run_id": f"n{width}-s{seed}",
            "config": {"width": width, "seed": seed},
            "identity": identity,
            "rows": rows,
        }
        for (width, seed), rows in runs.items()
    )


def estimate_multiwidth(
    source: Any,
    *,
    step: int | None = None,
    layers: Sequence[str] | None = None,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    lazy_below: float = 0.1,
    rich_above: float = 0.4,
    scale_tolerance: float = 0.15,
    max_ci_width: float = 0.3,
    label: str = "",
    context: Mapping[str, Any] | None = None,
) -> RichnessEstimate:
    """Returns r̂, the width exponent of ‖Δh_ℓ‖ of one recipe measured at several widths.

    Implements: THEORY.md §3 (‖Δh‖ ~ γ·n^r, 0 ≤ r ≤ 1/2) and §4 claim C2, with C4 (‖Δf‖ ~ n^0,
    NTC), C1 (h_rms ~ n^0) and C3 (‖f0‖ ~ n^−r) as cross-checks.

    Per hidden layer ℓ (every layer of the runs' identity but the last, the readout), r̂_ℓ is
    `fit_exponents`' slope of log ‖Δh_ℓ‖ on log n over every (width, seed) point. The pooled
    r̂ is the slope of the layers' mean log ‖Δh_ℓ‖ (the geometric mean over layers), which the
    verdict uses. Because γ is the same at every width of one recipe, it cancels: r̂ needs no
    reference run.

    Interval (what is honest with what was measured):
      - two or more seeds: `fit_exponents`' cluster bootstrap over seeds (the independent
        replicates; layers and probe inputs of one run are not), expanded percentile;
      - one seed, three or more widths: the t-interval of the slope from the residuals about
        the log-log line (W − 2 degrees of freedom). It covers width-to-width scatter and
        curvature (finite-width terms), not the seed-to-seed spread, so it is optimistic when
        the widths are few;
      - one seed, two widths: none (NaN) and the verdict is "undetermined".

    Scale checks: the exponents of ‖Δf‖ and of each hidden h_rms against 0, by `agreement` at
    ``scale_tolerance``: one that disagrees makes the run "ill-scaled", one that is
    undetermined makes the verdict "undetermined"; ‖f0‖ against −r̂ is shown, not judged (it
    holds on the scale only).

    Finite widths bias r̂ (THEORY.md note under §4; research/notes.md): centered training
    and widths of 128 and more give r̂ within about ±0.05 of r after a few steps; the random
    initial output of an uncentered run drags r̂ low at small widths (−0.05 / +0.07 / +0.31
    measured for r = 0 / 0.25 / 0.5 in research/notes.md). `layers` lists local slopes: flat
    ones mean the exponent has converged.

    Args:
      source: the ``(runs, metrics)`` of one recipe (`measurement_frames`, `run_frames`, or
        one family of a store), or anything `load_frames` reads that holds one. Needs "dh"
        rows of at least one hidden layer at two or more widths.
      step: the step to estimate at (None: the largest step present).
      layers: hidden layers to use (None: every layer of the identity but the last).
      ci: interval level in (0, 1).
      n_boot: bootstrap resamples (≥ 1).
      seed: seed of the bootstrap draws.
      lazy_below, rich_above: verdict thresholds on r, 0 ≤ lazy_below < rich_above ≤ 1/2.
      scale_tolerance: the tolerance of the scale checks, and how far r̂'s interval may lie
        off [0, 1/2] before the run is "ill-scaled".
      max_ci_width: an interval wider than this gives "undetermined".
      label, context: carried into the result.

    Returns:
      A `RichnessEstimate` with method "multi-width".

    Raises:
      ValueError: a bad threshold, ``ci`` or ``n_boot``, runs of several recipes, or fewer
        than two widths with ‖Δh‖ of a hidden layer.
    """
    check_thresholds(lazy_below, rich_above, ci, n_boot, max_ci_width, scale_tolerance)
    runs, metrics = load_frames(source)
    data = tidy(runs, metrics)
    if data["group"].nunique() > 1:
        raise ValueError(
            f"the runs hold {data['group'].nunique()} recipes ({sorted(set(data['label']))}); "
            "estimate one at a time or use estimate_store"
        )
    data = data[np.isfinite(data["value"]) & (data["value"] > 0)]
    chosen = int(data["step"].max()) if step is None and len(data) else step
    data = data[data["step"] == chosen]
    dh = data[data["quantity"] == "dh"]
    hidden = _hidden_layers(dh, layers)
    dh = dh[dh["layer"].isin(hidden)]
    widths = np.sort(dh["width"].unique())
    if len(widths) < 2:
        raise ValueError(
            f"widths={[int(w) for w in widths]}: the multi-width estimate needs ≥ 2 widths; "
            "use richness.analysis.laziness.laziness_index for one width"
        )
    pooled = (
        dh.assign(value=np.log(dh["value"]))
        .groupby(["run_id", "step", "width", "seed"], as_index=False)["value"]
        .mean()
        .assign(layer="", quantity=_POOLED, value=lambda t: np.exp(t["value"]))
    )
    columns = ["run_id", "step", "layer", "quantity", "value"]
    metrics = pd.concat([metrics[columns], pooled[columns]], ignore_index=True)
    fits = fit_exponents(
        runs,
        metrics,
        quantities=["dh", "h_rms", "df", "f0", _POOLED],
        steps=[chosen],
        n_boot=n_boot,
        ci=ci,
        seed=seed,
    )
    points = pd.concat([data, pooled], ignore_index=True)
    by_series = {
        (f["quantity"], f["layer"]): _reading(f, points, ci) for f in fits.to_dict("records")
    }
    rows = [{"layer": name, **by_series[("dh", name)]} for name in hidden]
    layer_table = pd.DataFrame(
        rows,
        columns=[
            "layer",
            "ell",
            "r_hat",
            "ci_low",
            "ci_high",
            "n_widths",
            "n_seeds",
            "interval",
            "local_slopes",
        ],
    )
    total = by_series[(_POOLED, "")]
    checks = _scale_checks(by_series, hidden, total["r_hat"], scale_tolerance)
    notes = []
    if total["interval"] == "width residuals":
        notes.append(
            "one seed: the interval is the scatter about the log-log line, not seed variation; "
            "run ≥ 2 seeds for a seed bootstrap"
        )
    if total["interval"] == "none":
        notes.append("one seed at two widths: no interval; add a seed or a width")
    local = total["local_slopes"]
    if len(local) >= 2 and abs(local[-1] - local[0]) > 0.1:
        notes.append(
            f"local slopes drift from {local[0]:+.2f} to {local[-1]:+.2f}: not converged in "
            "width; trust the largest widths"
        )
    broken = checks[checks["ok"] == False]  # noqa: E712 (None: undetermined or not judged)
    unsure = checks[checks["judged"] & checks["ok"].isna()]
    if len(broken):
        worst = ", ".join(
            f"{s} n^{v:+.2f}" for s, v in zip(broken["signal"], broken["value"], strict=True)
        )
        verdict, why = "ill-scaled", f"not on the richness scale: {worst} (expected n^0, C1/C4)"
    elif len(unsure):
        verdict = "undetermined"
        why = (
            f"can't tell whether the run is on the scale: {', '.join(unsure['signal'])} "
            f"neither within ±{scale_tolerance} of n^0 nor beyond it (C1/C4)"
        )
    else:
        verdict, why = scale_verdict(
            total["r_hat"],
            total["ci_low"],
            total["ci_high"],
            lazy_below,
            rich_above,
            max_ci_width,
            scale_tolerance,
        )
    if why:
        notes.append(why)
    return RichnessEstimate(
        r_hat=total["r_hat"],
        ci_low=total["ci_low"],
        ci_high=total["ci_high"],
        verdict=verdict,
        method="multi-width",
        layers=layer_table,
        checks=checks.drop(columns="judged"),
        interval=total["interval"],
        label=label,
        context={
            **(dict(context) if context else {}),
            "widths": [int(w) for w in widths],
            "n_seeds": total["n_seeds"],
            "step": chosen,
        },
        notes=tuple(notes),
    )


def residual_normalized(runs: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """(runs, metrics) with every run's ‖Δh‖ divided by its initial residual ‖f0 − y‖: the
    correction for uncentered MSE runs (docs/meter.md, docs/losses.md).

    An uncentered run's backward signal at step 0 is χ0 = f0 − y, with ‖χ0‖² = ‖y‖² + ‖f0‖²
    = 2·L0 (f0 independent of y); ‖f0‖ ~ n^{−r} (C3), so ‖χ0‖ falls with width and drags the
    ‖Δh‖ exponent below r. Each ‖Δh‖ is divided by √(2·L0) of its own run ("loss" at step 0,
    which the run must have measured), removing χ0's width dependence from the first steps.
    Centered runs have χ0 = −y at every width: the division changes nothing in their exponent.

    Raises:
      ValueError: a run without its step-0 loss.
    """
    loss0 = metrics[(metrics["quantity"] == "loss") & (metrics["step"] == 0)]
    scale = (2 * loss0.set_index("run_id")["value"]) ** 0.5
    missing = set(metrics["run_id"]) - set(scale.index)
    if missing:
        raise ValueError(f"runs {sorted(missing)[:3]} have no loss at step 0: measure step 0")
    out = metrics.copy()
    dh = out["quantity"] == "dh"
    out.loc[dh, "value"] = out.loc[dh, "value"] / out.loc[dh, "run_id"].map(scale).to_numpy()
    return runs, out


def estimate_store(
    source: Any, *, step: int | None = None, **kwargs: Any
) -> list[RichnessEstimate]:
    """Returns one multi-width estimate per parameterization family of a sweep store.

    Runs are grouped as `fit_exponents` groups them (preset or r, gauge, γ, optimizer, base
    width, depth); families measured at fewer than two widths are skipped.

    Args:
      source: a store path, a `Store`, or a ``(runs, metrics)`` pair of DataFrames.
      step: the step to estimate at (None: each family's last measured step).
      **kwargs: passed to `estimate_multiwidth` (thresholds, ci, n_boot, seed).

    Returns:
      Estimates in the order of the families' r, then labels; each ``context`` has r, preset,
      gauge, gamma and optimizer.
    """
    runs, metrics = load_frames(source)
    data = tidy(runs, metrics)
    out = []
    for _, family in data.groupby("group", sort=False):
        first = family.iloc[0]
        if family[family["quantity"] == "dh"]["width"].nunique() < 2:
            continue
        ids = set(family["run_id"])
        gauge = first["gauge"] or ""
        context = {
            "r": None if math.isnan(first["r"]) else float(first["r"]),
            "preset": first["preset"],
            "gauge": gauge,
            "gamma": float(first["gamma"]),
            "optimizer": first["optimizer"],
        }
        out.append(
            estimate_multiwidth(
                (
                    runs[runs["run_id"].astype(str).isin(ids)],
                    metrics[metrics["run_id"].astype(str).isin(ids)],
                ),
                step=step,
                label=str(first["label"]) + (f" · {gauge}" if gauge else ""),
                context=context,
                **kwargs,
            )
        )
    return sorted(out, key=lambda e: (e.context.get("r") is None, e.context.get("r") or 0, e.label))


def _hidden_layers(dh: pd.DataFrame, layers: Sequence[str] | None) -> list[str]:
    """The layers to fit: ``layers``, or every layer with ‖Δh‖ rows but the readout, by ℓ."""
    measured = dh[dh["layer"] != ""].sort_values("ell", kind="stable")
    order = list(measured["layer"].drop_duplicates())
    if layers is not None:
        absent = [name for name in layers if name not in order]
        if absent:
            raise ValueError(f"layers {absent} have no 'dh' measurements; found {order}")
        return list(layers)
    hidden = list(measured.loc[measured["ell"] < measured["depth"], "layer"].drop_duplicates())
    if not hidden:
        raise ValueError(
            "no hidden layer with 'dh' measurements at this step; the Meter's default "
            "metrics give dh/<layer> (the last layer is the readout and is not counted)"
        )
    return hidden


def _reading(fit: Mapping[str, Any], points: pd.DataFrame, ci: float) -> dict[str, Any]:
    """One fitted series as the meter reports it, with the residual interval for one seed."""
    low, high, interval = fit["ci_low"], fit["ci_high"], "seed bootstrap"
    if fit["n_seeds"] < 2 and fit["n_widths"] >= 3:
        series = points[(points["quantity"] == fit["quantity"]) & (points["layer"] == fit["layer"])]
        x, y, _, _ = _stats.seed_matrix(series, np.asarray(fit["widths"], dtype=np.float64))
        low, high = _stats.residual_interval(x, y[:, 0], fit["slope"], ci)
        interval = "width residuals"
    elif math.isnan(low):
        interval = "none"
    return {
        "ell": int(fit["ell"]),
        "r_hat": float(fit["slope"]),
        "ci_low": float(low),
        "ci_high": float(high),
        "n_widths": int(fit["n_widths"]),
        "n_seeds": int(fit["n_seeds"]),
        "interval": interval,
        "local_slopes": list(fit["local_slopes"]),
    }


def _scale_checks(
    series: Mapping[tuple[str, str], Mapping[str, Any]],
    hidden: list[str],
    r_hat: float,
    tolerance: float,
) -> pd.DataFrame:
    """Width exponents of ‖Δf‖ (C4), hidden h_rms (C1) and ‖f0‖ (C3) against theory.

    ``ok`` is True when the exponent agrees with its expectation, False when it disagrees,
    None when undetermined (``judged``) or not judged at all (f0, which holds on the scale only).
    """
    rows = []
    specs = [("df", "", 0.0), *[("h_rms", name, 0.0) for name in hidden], ("f0", "", -r_hat)]
    for quantity, layer, expected in specs:
        fit = series.get((quantity, layer))
        if fit is None:
            continue
        judged = quantity != "f0"
        ok = (
            _OK[agreement(fit["r_hat"], fit["ci_low"], fit["ci_high"], expected, tolerance)]
            if judged
            else None
        )
        rows.append(
            {
                "signal": f"{quantity}/{layer}" if layer else quantity,
                "claim": {"df": "C4", "h_rms": "C1", "f0": "C3"}[quantity],
                "value": fit["r_hat"],
                "ci_low": fit["ci_low"],
                "ci_high": fit["ci_high"],
                "expected": expected,
                "ok": ok,
                "judged": judged,
            }
        )
    columns = ["signal", "claim", "value", "ci_low", "ci_high", "expected", "ok", "judged"]
    return pd.DataFrame(rows, columns=columns).astype({"ok": object, "judged": bool})
