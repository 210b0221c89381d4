"""C22 (THEORY.md §4, note under the table; issue 15): a discontinuous transition at n = ∞ only.

Measures: C22. "In the limit n → ∞ there is a discontinuous transition: every r < 1/2 is lazy,
r = 1/2 is rich. At finite n, behaviour changes smoothly with r." The order parameter is the
feature movement ‖Δh_ℓ‖/‖h_ℓ(0)‖ (Frobenius over the training inputs, after the last step)
of both hidden layers, in C21's setup (claims/c21_rich_limit.py: SETUP) at r on R_GRID.

The limit (`rn.infinite.deep_linear`) moves its features by ε·u with ε = lim γ·n^{r−1/2}: 0 for
every r < 1/2, γ at r = 1/2, so its movement is a step. A width-n network has ε = γ·n^{r−1/2},
a smooth function of r: its movement is ≈ m(ε) (the limit program at that ε, drawn in the
figure, `rn.infinite.deep_linear_at`) and falls as n^{r−1/2} for r < 1/2.

Verdict (RULE, fixed before the claim was first run), all of:
  1. the limit's movement is 0 (≤ 1e-12) at every step for every r < 1/2 on the grid;
  2. at r = 1/2 the limit's final movement is ≥ 0.05 in every hidden layer;
  3. finite widths approach the step at r = 1/2: |m_n − m_∞|/m_∞ at the widest width is at
     most the bound, in every hidden layer (seed mean);
  4. finite widths are smooth: at every width and layer the seed-mean movement is > 0 at
     r = 0 and increases strictly along the grid;
  5. for r < 1/2 the finite movement vanishes at its rate: the slope of log movement on
     log n (widths `asymptotic_widths`, seed bootstrap) agrees with r − 1/2 at the tolerance
     (`richness.analysis.agreement`), in every hidden layer.
Cost: full trains 75 networks up to n = 4096 (a few minutes on one core); quick 30 up to 512.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from richness.analysis.agreement import agreement, asymptotic_widths
from richness.build import load_data
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import limit_config, limit_of, seed_slope, train_finite
from richness.claims.c21_rich_limit import SETUP
from richness.config import RunConfig
from richness.infinite import deep_linear_at

__all__ = ["CLAIM", "RULE", "R_GRID", "TITLE", "run"]

CLAIM = "C22"
TITLE = "the lazy-rich transition is a step at n = ∞ (r = 1/2) and smooth at finite width"
R_GRID = (0.0, 0.125, 0.25, 0.375, 0.5)
RULE: dict[str, Any] = {
    "order_parameter": "‖Δh_ℓ‖_F/‖h_ℓ(0)‖_F on the training inputs after the last step",
    "limit_zero_below_half_at_most": 1e-12,
    "limit_at_half_at_least": 0.05,
    "finite_at_half_relative_gap_at_most": {"quick": 0.1, "full": 0.05},
    "finite_monotone_in_r": True,
    "finite_rate": "slope of log movement on log n agrees with r − 1/2 (asymptotic widths)",
    "finite_rate_tolerance": {"quick": 0.15, "full": 0.1},
    "widths": {"quick": [128, 256, 512], "full": [256, 512, 1024, 2048, 4096]},
    "seeds": {"quick": [0, 1], "full": [0, 1, 2]},
}


def _config(ctx: Context, r: float, width: int, seed: int) -> RunConfig:
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


def run(ctx: Context) -> ClaimResult:
    """Runs the experiment and returns the verdict (RULE)."""
    start = time.perf_counter()
    widths, seeds = RULE["widths"][ctx.scale], RULE["seeds"][ctx.scale]
    cache = ctx.out / "limit_runs"
    layers = SETUP["depth"] - 1
    limit = {r: limit_of(_config(ctx, r, widths[0], seeds[0]), r) for r in R_GRID}
    moves = np.full((len(R_GRID), len(widths), len(seeds), layers), np.nan)
    rows = []
    for a, r in enumerate(R_GRID):
        for i, width in enumerate(widths):
            for j, seed in enumerate(seeds):
                net = train_finite(_config(ctx, r, width, seed), cache)
                moves[a, i, j] = net.feature_movement[-1].numpy()
                rows.append(
                    {"r": r, "width": width, "seed": seed}
                    | {f"movement_h{k + 1}": float(moves[a, i, j, k]) for k in range(layers)}
                )
    mean = moves.mean(2)  # (R, W, layers)
    at_half = limit[0.5].feature_movement[-1].numpy()
    below = max(float(limit[r].feature_movement.abs().max()) for r in R_GRID if r < 0.5)
    gap = np.abs(mean[-1, -1] - at_half) / at_half
    gap_bound = RULE["finite_at_half_relative_gap_at_most"][ctx.scale]
    increasing = bool(np.all(np.diff(mean, axis=0) > 0) and np.all(mean[0] > 0))
    tol = RULE["finite_rate_tolerance"][ctx.scale]
    upper = asymptotic_widths(widths)
    keep = [widths.index(w) for w in upper]
    rates, rate_ok = {}, True
    for a, r in enumerate(R_GRID[:-1]):
        for k in range(layers):
            slope, low, high = seed_slope(upper, moves[a, keep, :, k])
            verdict = agreement(slope, low, high, r - 0.5, tol)
            rate_ok &= verdict == "agrees"
            rates[f"r={r:g}/h{k + 1}"] = {
                "slope": round(slope, 4),
                "ci": [round(low, 4), round(high, 4)],
                "predicted": r - 0.5,
                "agreement": verdict,
            }
    checks = {
        "limit: movement 0 for r < 1/2": below <= RULE["limit_zero_below_half_at_most"],
        f"limit: movement ≥ {RULE['limit_at_half_at_least']} at r = 1/2": bool(
            at_half.min() >= RULE["limit_at_half_at_least"]
        ),
        f"finite: |m_n − m_∞|/m_∞ ≤ {gap_bound} at r = 1/2, n = {widths[-1]}": bool(
            gap.max() <= gap_bound
        ),
        "finite: movement > 0 and increasing in r at every width": increasing,
        f"finite: movement ~ n^(r−1/2) for r < 1/2 (tolerance {tol})": bool(rate_ok),
    }
    data = load_data(_config(ctx, 0.5, widths[0], seeds[0]))
    figure = _figure(ctx, widths, mean, at_half, data)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured={
            "limit_movement_at_half": [round(float(v), 4) for v in at_half],
            "limit_movement_below_half_max": below,
            f"finite_gap_at_half_n{widths[-1]}": [round(float(v), 4) for v in gap],
            "finite_rates": rates,
        },
        predicted={"limit": "0 for r < 1/2, > 0 at r = 1/2", "finite_rate": "r − 1/2"},
        tolerance={"rate": tol, "gap_at_half": gap_bound},
        details={
            "checks": checks,
            "rule": RULE,
            "setup": SETUP,
            "r_grid": list(R_GRID),
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
        table=rows,
    )


def _figure(ctx: Context, widths: list[int], mean: np.ndarray, at_half: np.ndarray, data) -> str:
    """Movement against r per width (points: networks; lines: the limit program at ε_n), and
    the limit's step."""
    fine = np.linspace(0.0, 0.5, 21)
    x, y, xs = data.x_train.flatten(1), data.y_train, data.x_test.flatten(1)
    fig, axes = plt.subplots(1, mean.shape[2], figsize=(5 * mean.shape[2], 4), squeeze=False)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(widths)))
    for k, ax in enumerate(axes[0]):
        for i, width in enumerate(widths):
            predicted = [
                float(
                    deep_linear_at(
                        x,
                        y,
                        xs,
                        feature_strength=SETUP["gamma"] * width ** (r - 0.5),
                        depth=SETUP["depth"],
                        lr=SETUP["lr"],
                        steps=SETUP["steps"],
                    ).feature_movement[-1, k]
                )
                for r in fine
            ]
            ax.plot(fine, predicted, "-", color=colors[i], lw=0.8)
            ax.plot(R_GRID, mean[:, i, k], "o", color=colors[i], ms=4, label=f"n={width}")
        ax.plot([0, 0.5], [0, 0], "k-", lw=2.5, label="n = ∞ (limit)")
        ax.plot([0.5], [at_half[k]], "ko", ms=8, mfc="none", mew=2)
        ax.plot([0.5, 0.5], [0, at_half[k]], "k:", lw=1)
        ax.set_xlabel("richness r")
        ax.set_ylabel(f"‖Δh_{k + 1}‖ / ‖h_{k + 1}(0)‖ after {SETUP['steps']} steps")
        ax.set_title(f"hidden layer {k + 1} (lines: limit program at ε = γ n^(r−1/2))", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
