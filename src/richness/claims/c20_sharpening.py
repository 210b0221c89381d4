"""C20 (THEORY.md §4, note; the tutorial: "a discontinuous phase transition" at n → ∞): the
lazy-rich crossover sharpens with width toward a step at r = ½.

Measures: C20. C22 (claims/c22_transition.py) shows the limit's step and that finite widths
are smooth; this claim measures where and how wide the finite-width crossover is, and how both
move with n. Same networks as C22 (C21's SETUP: linear MLP 16 → n → n → 4, absolute STP table,
γ = 1, η0 = 0.5, 10 full-batch SGD steps, centered, float64; through `richness.train.train`),
read from the same cache (out/limit_runs) at C22's r grid, plus R_EXTRA to resolve the
crossover. Order parameter: m_n(r) = ‖Δh_ℓ‖_F/‖h_ℓ(0)‖_F after the last step (seed mean).

Definitions: q_n(r) = m_n(r)/m_n(½), increasing in r (C22, rule 4). r_q(n) is the r at which
q_n reaches q, by linear interpolation of log q_n in r between neighbouring grid points (exact
when m ∝ n^{r−½}). The crossover is r_½(n); its width is Δ(n) = r_¾(n) − r_¼(n). Prediction:
the limit program at the width's feature strength ε = γ·n^{r−½} (`rn.infinite.deep_linear_at`,
C22's figure lines), solved for the same r_q on a fine r grid; where m is linear in ε this is
r_½ = ½ − ln 2/ln n and Δ = ln 3/ln n: the crossover reaches ½ and its width 0 only
logarithmically in n — every r < ½ is lazy in the limit, slowly.

Verdict (RULE, written before the claim was first run), in every hidden layer, all of:
  1. r_½(n) increases strictly with n (toward ½);
  2. Δ(n) decreases strictly with n (the step sharpens);
  3. |r_½(n) − r_½^pred(n)| ≤ 0.03 at every width (quick and full);
  4. |Δ(n) − Δ^pred(n)| ≤ 0.03 at every width.
Reported: the prediction extrapolated to n = 10^4, 10^6, 10^9. Negative control:
`Context.substitute="mup"` (μP trained at every r: q_n ≡ 1, no crossover) must fail.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from richness.build import load_data
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import limit_config, train_finite
from richness.claims.c21_rich_limit import SETUP
from richness.claims.c22_transition import R_GRID as C22_GRID
from richness.claims.c22_transition import RULE as C22_RULE
from richness.config import RunConfig
from richness.infinite import deep_linear_at

__all__ = ["CLAIM", "RULE", "R_GRID", "TITLE", "crossing", "run"]

CLAIM = "C20"
TITLE = "the lazy-rich crossover sharpens with width: r_½(n) → ½, its width → 0 (as 1/ln n)"
R_EXTRA = (0.3125, 0.4375)
R_GRID = tuple(sorted(set(C22_GRID) | set(R_EXTRA)))
RULE: dict[str, Any] = {
    "order_parameter": "m_n(r) = ‖Δh_ℓ‖_F/‖h_ℓ(0)‖_F after the last step, seed mean (C22's)",
    "crossover": "r_½(n): q_n(r) = m_n(r)/m_n(½) = ½, log q_n interpolated linearly in r",
    "width": "Δ(n) = r_¾(n) − r_¼(n)",
    "prediction": "the same from deep_linear_at(ε = γ n^(r−½)) on a fine r grid",
    "r_grid": list(R_GRID),
    "crossover_increasing_in_n": True,
    "width_decreasing_in_n": True,
    "crossover_within": 0.03,
    "width_within": 0.03,
    "widths": C22_RULE["widths"],
    "seeds": C22_RULE["seeds"],
    "negative_control": "substitute='mup' must fail",
}
FINE = np.linspace(0.0, 0.5, 101)


def crossing(r_grid, q, level: float) -> float:
    """The r at which q (increasing in r, q(r_max) = 1) first reaches `level`, by linear
    interpolation of log q in r; NaN when q never crosses it (or is not positive)."""
    r, q = np.asarray(r_grid, dtype=float), np.asarray(q, dtype=float)
    if np.any(~np.isfinite(q)) or np.any(q <= 0):
        return math.nan
    lq, target = np.log(q), math.log(level)
    for i in range(len(r) - 1):
        if lq[i] < target <= lq[i + 1]:
            return float(r[i] + (target - lq[i]) * (r[i + 1] - r[i]) / (lq[i + 1] - lq[i]))
    return math.nan


def _config(ctx: Context, r: float, width: int, seed: int) -> RunConfig:
    """C22's run config (same cache entry at C22's grid points)."""
    return limit_config(
        width=width,
        seed=seed,
        r=r,
        data=SETUP["data"],
        depth=SETUP["depth"],
        lr=SETUP["lr"],
        steps=SETUP["steps"],
        gamma=SETUP["gamma"],
        preset=ctx.substitute,
    )


def _summary(r_grid, m: np.ndarray) -> tuple[float, float]:
    """(r_½, Δ) of one movement curve m(r) (r_grid ends at ½)."""
    q = m / m[-1]
    return crossing(r_grid, q, 0.5), crossing(r_grid, q, 0.75) - crossing(r_grid, q, 0.25)


def _predicted(width: float, layers: int, data) -> list[tuple[float, float]]:
    """(r_½, Δ) per hidden layer from the limit program at ε = γ·width^(r−½)."""
    x, y, xs = data.x_train.flatten(1), data.y_train, data.x_test.flatten(1)
    m = np.array(
        [
            deep_linear_at(
                x,
                y,
                xs,
                feature_strength=SETUP["gamma"] * width ** (r - 0.5),
                depth=SETUP["depth"],
                lr=SETUP["lr"],
                steps=SETUP["steps"],
            )
            .feature_movement[-1]
            .numpy()
            for r in FINE
        ]
    )  # (F, layers)
    return [_summary(FINE, m[:, k]) for k in range(layers)]


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (RULE)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small float64 matrices on shared cores
    try:
        return _run(ctx)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: Context) -> ClaimResult:
    start = time.perf_counter()
    widths, seeds = RULE["widths"][ctx.scale], RULE["seeds"][ctx.scale]
    layers = SETUP["depth"] - 1
    cache = ctx.out / "limit_runs"
    moves = np.full((len(R_GRID), len(widths), len(seeds), layers), np.nan)
    for a, r in enumerate(R_GRID):
        for i, w in enumerate(widths):
            for j, s in enumerate(seeds):
                net = train_finite(_config(ctx, r, w, s), cache)
                moves[a, i, j] = net.feature_movement[-1].numpy()
    mean = moves.mean(2)  # (R, W, layers)
    data = load_data(_config(ctx, 0.5, widths[0], seeds[0]))
    measured = np.array(
        [[_summary(R_GRID, mean[:, i, k]) for k in range(layers)] for i in range(len(widths))]
    )  # (W, layers, 2)
    predicted = np.array([_predicted(float(w), layers, data) for w in widths])  # (W, layers, 2)
    far = {f"n=1e{e}": _predicted(10.0**e, layers, data) for e in (4, 6, 9)}
    checks: dict[str, bool] = {}
    for k in range(layers):
        cross, width_ = measured[:, k, 0], measured[:, k, 1]
        name = f"h{k + 1}"
        checks[f"{name}: r_½(n) increases with n"] = bool(
            np.all(np.isfinite(cross)) and np.all(np.diff(cross) > 0)
        )
        checks[f"{name}: Δ(n) decreases with n"] = bool(
            np.all(np.isfinite(width_)) and np.all(np.diff(width_) < 0)
        )
        checks[f"{name}: |r_½ − predicted| ≤ {RULE['crossover_within']}"] = bool(
            np.all(np.abs(cross - predicted[:, k, 0]) <= RULE["crossover_within"])
        )
        checks[f"{name}: |Δ − predicted| ≤ {RULE['width_within']}"] = bool(
            np.all(np.abs(width_ - predicted[:, k, 1]) <= RULE["width_within"])
        )

    def per_width(values: np.ndarray) -> dict[str, dict[int, float]]:
        return {
            f"h{k + 1}": {w: round(float(values[i, k]), 4) for i, w in enumerate(widths)}
            for k in range(layers)
        }

    figure = _figure(ctx, widths, mean, measured, predicted)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured={
            "crossover_r_half": per_width(measured[..., 0]),
            "transition_width": per_width(measured[..., 1]),
        },
        predicted={
            "crossover_r_half": per_width(predicted[..., 0]),
            "transition_width": per_width(predicted[..., 1]),
            "small_eps_law": {
                w: [round(0.5 - math.log(2) / math.log(w), 4), round(math.log(3) / math.log(w), 4)]
                for w in widths
            },
        },
        tolerance={"crossover": RULE["crossover_within"], "width": RULE["width_within"]},
        details={
            "checks": checks,
            "rule": RULE,
            "setup": SETUP,
            "extrapolated_prediction": {
                n: [[round(float(v), 4) for v in layer] for layer in vals]
                for n, vals in far.items()
            },
            "mean_movement": {
                f"r={r:g}": {
                    w: [round(float(v), 5) for v in mean[a, i]] for i, w in enumerate(widths)
                }
                for a, r in enumerate(R_GRID)
            },
            "trained": ctx.substitute or "each point's own STP table",
            "seconds": round(time.perf_counter() - start, 1),
        },
        figures=[figure],
        table=[
            {
                "width": w,
                "layer": f"h{k + 1}",
                "r_half": measured[i, k, 0],
                "delta": measured[i, k, 1],
                "r_half_pred": predicted[i, k, 0],
                "delta_pred": predicted[i, k, 1],
            }
            for i, w in enumerate(widths)
            for k in range(layers)
        ],
    )


def _figure(ctx, widths, mean, measured, predicted) -> str:
    """q_n(r) per width (the step it approaches), and r_½(n), Δ(n) against log n."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 3.9))
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(widths)))
    for i, w in enumerate(widths):
        ax.plot(R_GRID, mean[:, i, 0] / mean[-1, i, 0], "o-", color=colors[i], ms=3, label=f"n={w}")
    ax.plot([0, 0.5, 0.5], [0, 0, 1], "k-", lw=2, label="n = ∞")
    ax.axhline(0.5, color="gray", lw=0.6, ls=":")
    ax.set_xlabel("richness r")
    ax.set_ylabel("m_n(r)/m_n(½), hidden layer 1")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    w = np.asarray(widths, dtype=float)
    bx.semilogx(w, measured[:, 0, 0], "o-", label="r_½(n)")
    bx.semilogx(w, predicted[:, 0, 0], "k--", lw=0.8, label="r_½ predicted")
    bx.semilogx(w, measured[:, 0, 1], "s-", label="Δ(n) = r_¾ − r_¼")
    bx.semilogx(w, predicted[:, 0, 1], "k:", lw=0.8, label="Δ predicted")
    bx.set_xlabel("width n")
    bx.legend(fontsize=7)
    bx.grid(True, which="both", alpha=0.3)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
