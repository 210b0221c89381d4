"""The one-width laziness index: where a run sits between a lazy and a rich reference.

At a single width n nothing separates r from the prefactor γ (‖Δh‖ ~ γ·n^r, THEORY.md §3), so
`laziness_index` places a run between two references of the same recipe at that width, NTP
(r = 0) and μP (r = 1/2): it measures the activity α = γ·n^r, not r (its docstring says what
that means and when it equals r). Two widths
(`richness.analysis.richness_meter.estimate_multiwidth`) are the estimator; this is an index.

Floor 3: numpy only, no torch; reads `Meter.measure()` dicts (keys "quantity/layer"), whose
hidden layers are the measured layers but the last (the readout), in the Meter's order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from richness.analysis._stats import tail
from richness.analysis.reading import (
    R_MAX,
    RichnessEstimate,
    Verdict,
    check_thresholds,
    scale_verdict,
)

__all__ = ["laziness_index"]

_SIGNALS = ("rho", "lin_gap", "ntk_dist")


def laziness_index(
    run: Mapping[str, float] | Sequence[Mapping[str, float]],
    lazy: Mapping[str, float] | Sequence[Mapping[str, float]],
    rich: Mapping[str, float] | Sequence[Mapping[str, float]],
    *,
    layers: Sequence[str] | None = None,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    lazy_below: float = 0.1,
    rich_above: float = 0.4,
    max_ci_width: float = 0.3,
    min_separation: float = 0.1,
    label: str = "",
) -> RichnessEstimate:
    """Returns the effective richness of a run at one width, between a lazy and a rich reference.

    Implements: THEORY.md §3 (‖Δh‖ ~ α = γ·n^r; model rescaling emulates any richness, C11)
    and §4 C2, with C8 (linearization gap) and the NTK movement as cross-checks.

    At one width n nothing separates r from the prefactor γ: a signal q whose width law is
    q ~ c·α^k (k known or not) only gives α. So the run is compared with two references of the
    same model, data, learning rate, step and width: lazy (NTP, r = 0) and rich (μP, r = 1/2),
    both base-relative to the same base width n0 (``rn.preset("ntp"|"mup", base_width=n0)``),
    where every r gives the same model at n = n0. Then log q is linear in r with the shared
    intercept, and the laziness index

        I_q = (log q − log q_lazy) / (log q_rich − log q_lazy),   r̂_q = I_q / 2

    is the r of the run's activity: r̂ = log(α/γ_ref)/log(n/n0), the richness a run of the
    reference recipe would need to move its features as much. It equals the run's r when the
    run is that recipe at some r (measured: the index of an r = 1/4 run at n = 512, n0 = 64
    is 0.500 from ‖Δh‖); a different γ, learning rate or data shifts it by
    log(γ/γ_ref)/log(n/n0), which is why two widths (`estimate_multiwidth`) are the estimator
    and this is an index. No k is needed: the references calibrate it. It reads nothing about
    whether the run is well scaled (NTC): an index beyond 1 (richer than μP) is either a larger
    γ or a run off the scale (SP at a fixed LR gives 1.2–4 on digits), and gives "undetermined".

    Signals: ρ_ℓ = dh_rms/ℓ / h_rms/ℓ, the relative feature movement of each hidden layer
    (~ n^{r−1/2}, C2) gives r̂ (mean over layers); "lin_gap" (~ n^{2r−1} to leading order,
    C8) and "ntk_dist" are cross-checks in `checks`, as their finite-width terms (THEORY.md
    note under §4) bias them (measured r̂ 0.243 and 0.226 for an r = 1/4 MLP on digits).

    Interval: with two or more measurements (seeds) in each of run, lazy and rich, a seed
    bootstrap (each set resampled on its own, expanded percentile); otherwise the spread
    [min, max] of r̂ over the signals (every ρ_ℓ, lin_gap, ntk_dist that is present), a
    systematic range and not a confidence interval.

    Args:
      run, lazy, rich: `Meter.measure()` dicts (or sequences of them, one per seed) at the
        same width and step; need dh_rms/ℓ and h_rms/ℓ of hidden layers, lin_gap and ntk_dist
        optionally.
      layers: hidden layers (None: those with dh_rms but the last measured layer, the readout).
      ci, n_boot, seed, lazy_below, rich_above, max_ci_width: as in
        `richness.analysis.richness_meter.estimate_multiwidth`.
      min_separation: smallest |log q_rich − log q_lazy| for a usable signal: the references
        coincide as n → n0, and the index is then noise.
      label: carried into the result.

    Returns:
      A `RichnessEstimate` with method "one-width".

    Raises:
      ValueError: no hidden layer with dh_rms and h_rms in all three, or bad thresholds.
    """
    check_thresholds(lazy_below, rich_above, ci, n_boot, max_ci_width, 0.0)
    sets = [list(s) if not isinstance(s, Mapping) else [s] for s in (run, lazy, rich)]
    for name, group in zip(("run", "lazy", "rich"), sets, strict=True):
        if not group:
            raise ValueError(f"{name} holds no measurement; pass a Meter.measure() dict")
    hidden = _one_width_layers(sets, layers)
    keys = [f"rho/{name}" for name in hidden]
    keys += [k for k in _SIGNALS[1:] if all(k in m for group in sets for m in group)]
    logs = [np.array([[_signal(m, k) for k in keys] for m in group]) for group in sets]
    means = [g.mean(0) for g in logs]  # (K,) per set
    span = means[2] - means[1]
    usable = np.abs(span) >= min_separation
    r_signal = np.where(usable, (means[0] - means[1]) / np.where(usable, span, 1) / 2, np.nan)
    n_rho = len(hidden)
    notes = []
    if not usable[:n_rho].all():
        notes.append(
            f"references differ by less than {min_separation} in log ρ: the width is too "
            "close to the base width for a one-width index"
        )
    r_hat = float(np.nanmean(r_signal[:n_rho])) if usable[:n_rho].any() else math.nan
    low = high = math.nan
    interval = "none"
    sizes = [len(g) for g in logs]
    rng = np.random.default_rng(seed)
    if min(sizes) >= 2 and not math.isnan(r_hat):
        boots = []
        for g in logs:
            draws = rng.multinomial(len(g), np.full(len(g), 1 / len(g)), size=n_boot)
            boots.append(draws @ g[:, :n_rho] / len(g))  # (B, n_rho)
        run_b, lazy_b, rich_b = boots
        with np.errstate(divide="ignore", invalid="ignore"):
            r_boot = ((run_b - lazy_b) / (rich_b - lazy_b) / 2)[:, usable[:n_rho]].mean(1)
        r_boot = r_boot[np.isfinite(r_boot)]
        lo_q = tail(ci, min(sizes), "expanded")
        low, high = (float(v) for v in np.quantile(r_boot, [lo_q, 1 - lo_q]))
        interval = "seed bootstrap"
    elif not math.isnan(r_hat) and np.isfinite(r_signal).sum() >= 2:
        low, high = float(np.nanmin(r_signal)), float(np.nanmax(r_signal))
        interval = "signal spread"
        notes.append(
            "one measurement per set: the interval is the spread of the signals, not a "
            "confidence interval; measure ≥ 2 seeds of each"
        )
    if not math.isnan(low) and low > R_MAX + 0.1:
        verdict: Verdict = "undetermined"
        notes.append(
            "richer than the μP reference: a larger γ or a run off the scale (e.g. SP); "
            "one width can't tell which: measure two widths"
        )
    else:
        verdict, why = scale_verdict(r_hat, low, high, lazy_below, rich_above, max_ci_width, None)
        if why:
            notes.append(why)
    notes.append(
        "one width reads the activity γ·n^r, not r: r̂ is the r of the reference recipe "
        "that moves its features as much (THEORY.md §3, C11)"
    )
    layer_table = pd.DataFrame(
        {
            "layer": hidden,
            "ell": list(range(1, n_rho + 1)),
            "r_hat": r_signal[:n_rho],
            "ci_low": math.nan,
            "ci_high": math.nan,
        }
    )
    checks = pd.DataFrame(
        {
            "signal": keys,
            "claim": ["C2"] * n_rho + ["C8" if k == "lin_gap" else "" for k in keys[n_rho:]],
            "value": r_signal,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "expected": math.nan,
            "ok": None,
        }
    )
    return RichnessEstimate(
        r_hat=r_hat,
        ci_low=low,
        ci_high=high,
        verdict=verdict,
        method="one-width",
        layers=layer_table,
        checks=checks,
        interval=interval,
        label=label,
        context={"n_run": sizes[0], "n_lazy": sizes[1], "n_rich": sizes[2]},
        notes=tuple(notes),
    )


def _one_width_layers(sets: list[list[Mapping[str, float]]], layers) -> list[str]:
    first = sets[0][0]
    order = [k.partition("/")[2] for k in first if k.startswith("dh_rms/")]
    hidden = list(layers) if layers is not None else order[:-1]
    complete = [
        name
        for name in hidden
        if all(f"dh_rms/{name}" in m and f"h_rms/{name}" in m for g in sets for m in g)
    ]
    if not complete or (layers is not None and len(complete) < len(hidden)):
        raise ValueError(
            f"hidden layers {hidden} need dh_rms/<layer> and h_rms/<layer> in run, lazy and "
            f"rich (the Meter's default metrics); layers with dh_rms: {order}"
        )
    return complete


def _signal(measurement: Mapping[str, float], key: str) -> float:
    """log of one signal: ρ_ℓ = dh_rms/h_rms, or lin_gap / ntk_dist as measured."""
    if key.startswith("rho/"):
        name = key.partition("/")[2]
        value = measurement[f"dh_rms/{name}"] / measurement[f"h_rms/{name}"]
    else:
        value = measurement[key]
    return math.log(value) if value > 0 else math.nan
