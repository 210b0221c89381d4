"""C21 (THEORY.md §3, §4; issue 15): finite widths converge to the n → ∞ limit, rich or lazy.

Measures: C21, C12 at the rich end. The setup (SETUP below, stated in docs/infinite.md): the
linear MLP 16 → n → n → 4 (depth 3, no biases) in the absolute STP table at r ∈ {1/2, 1/4},
γ = 1, trained in float64 by full-batch SGD (η0 = 0.5, 10 steps) on the centered loss, on a
linear teacher (x ~ N(0, I_16), y = W x, 64 training and 64 test points). Each width-n run goes
through `richness.train.train` (claims/_limit.py); its limit is `rn.infinite.deep_linear` of
the same config: at r = 1/2 the μP limit with moving features, at r = 1/4 the lazy NTK limit.

Distance per run: ‖f_net − f_∞‖/‖f_∞‖ over the centered test-output trajectory (steps 0..10,
all test points and outputs), averaged over seeds. Finite-width fluctuations are O(n^{−1/2}),
and at r = 1/4 the finite run's feature strength ε = n^{−1/4} adds an O(ε²) = O(n^{−1/2}) bias
(the limit is even in ε, docs/infinite.md), so the predicted slope is −1/2 at both points.

Verdict (RULE, fixed before the claim was first run): at each point, the least-squares slope of
log(mean distance) on log(width) over all widths agrees with −1/2 at the tolerance
(`richness.analysis.agreement`: slope and seed-bootstrap 95% interval inside the band), and the
mean distance at the widest width is at most the bound. Details also report the distance of
the r = 1/2 networks to the lazy limit (it levels off: the rich limit is not the NTK's).

Cost: full trains 48 networks up to n = 8192 in float64 in this process (the eight at 8192
take about 30 s each on one core); quick 24 networks up to n = 1024, about 15 s.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from richness.analysis.agreement import agreement
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import (
    limit_config,
    limit_of,
    relative_distance,
    seed_slope,
    train_finite,
)
from richness.config import RunConfig

__all__ = ["CLAIM", "RULE", "SETUP", "TITLE", "run"]

CLAIM = "C21"
TITLE = "finite widths converge to the infinite-width limit as n^(-1/2), rich (r = 1/2) and lazy"
SETUP: dict[str, Any] = {
    "data": {
        "kind": "synthetic",
        "teacher": "linear",
        "d_in": 16,
        "d_out": 4,
        "n_train": 64,
        "n_test": 64,
        "n_probe": 8,
        "seed": 0,
    },
    "depth": 3,
    "lr": 0.5,
    "steps": 10,
    "gamma": 1.0,
}
RULE: dict[str, Any] = {
    "points": [0.5, 0.25],
    "distance": "‖f_net − f_∞‖/‖f_∞‖ over the centered test-output trajectory, seed mean",
    "predicted_slope": -0.5,
    "slope_fit": "all widths; agreement(): slope and seed-bootstrap 95% interval in the band",
    "tolerance": {"quick": 0.25, "full": 0.15},
    "distance_at_widest_at_most": {"quick": 0.1, "full": 0.05},
    "widths": {"quick": [128, 256, 512, 1024], "full": [256, 512, 1024, 2048, 4096, 8192]},
    "seeds": {"quick": [0, 1, 2], "full": [0, 1, 2, 3]},
}


def _config(ctx: Context, r: float, width: int, seed: int) -> RunConfig:
    """The run of point r at one width and seed (`ctx.substitute`: that preset instead)."""
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
    """Runs the experiment (minutes at full scale) and returns the verdict (RULE)."""
    start = time.perf_counter()
    widths, seeds = RULE["widths"][ctx.scale], RULE["seeds"][ctx.scale]
    tol, bound = RULE["tolerance"][ctx.scale], RULE["distance_at_widest_at_most"][ctx.scale]
    cache = ctx.out / "limit_runs"
    limits = {r: limit_of(_config(ctx, r, widths[0], seeds[0]), r) for r in RULE["points"]}
    lazy = limits[0.25].f_test  # every r < 1/2 has this limit: NTK gradient descent
    rows, checks, measured, curves = [], {}, {}, {}
    for r in RULE["points"]:
        dist = np.full((len(widths), len(seeds)), np.nan)
        to_lazy = np.full_like(dist, np.nan)
        example = {}
        for i, width in enumerate(widths):
            for j, seed in enumerate(seeds):
                net = train_finite(_config(ctx, r, width, seed), cache)
                dist[i, j] = relative_distance(net.f_test, limits[r].f_test)
                to_lazy[i, j] = relative_distance(net.f_test, lazy)
                rows.append(
                    {
                        "r": r,
                        "width": width,
                        "seed": seed,
                        "distance": dist[i, j],
                        "distance_to_lazy_limit": to_lazy[i, j],
                        "seconds": round(net.seconds, 2),
                    }
                )
                if seed == seeds[0]:
                    example[width] = net.f_test
        slope, low, high = seed_slope(widths, dist)
        widest = float(dist[-1].mean())
        key = f"r={r:g}"
        checks[f"{key}: slope and interval within {tol} of -1/2"] = (
            agreement(slope, low, high, RULE["predicted_slope"], tol) == "agrees"
        )
        checks[f"{key}: distance at n={widths[-1]} ≤ {bound}"] = bool(widest <= bound)
        measured[key] = {
            "slope": round(slope, 4),
            "ci": [round(low, 4), round(high, 4)],
            f"distance_n{widths[-1]}": round(widest, 4),
            "mean_distance": {w: float(m) for w, m in zip(widths, dist.mean(1), strict=True)},
            "mean_distance_to_lazy_limit": {
                w: float(m) for w, m in zip(widths, to_lazy.mean(1), strict=True)
            },
        }
        curves[r] = (dist, example)
    rich_to_lazy = list(measured["r=0.5"]["mean_distance_to_lazy_limit"].values())
    figure = _figure(ctx, widths, curves, limits[0.5].f_test, lazy, np.asarray(rich_to_lazy))
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured=measured,
        predicted={"slope": RULE["predicted_slope"]},
        tolerance={"slope": tol, f"distance_n{widths[-1]}_at_most": bound},
        details={
            "checks": checks,
            "rule": RULE,
            "setup": SETUP,
            "trained": ctx.substitute or "each point's own STP table",
            "rich_vs_lazy_limit": relative_distance(limits[0.5].f_test, lazy),
            "seconds": round(time.perf_counter() - start, 1),
        },
        figures=[figure],
        table=rows,
    )


def _figure(
    ctx: Context,
    widths: list[int],
    curves: dict,
    rich: torch.Tensor,
    lazy: torch.Tensor,
    to_lazy: np.ndarray,
) -> str:
    """Distance against width per point (n^{−1/2} guide) and one test output's trajectory."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    w = np.asarray(widths, dtype=float)
    for r, (dist, _) in curves.items():
        mean = dist.mean(1)
        ax.loglog(w, mean, "o-", ms=3, label=f"r={r:g} networks to their limit")
        ax.fill_between(w, dist.min(1), dist.max(1), alpha=0.15)
        ax.loglog(w, mean[0] * (w / w[0]) ** -0.5, "k--", lw=0.6)
    ax.loglog(w, to_lazy, "s:", ms=3, color="gray", label="r=0.5 networks to the lazy limit")
    ax.set_xticks(w, [str(x) for x in widths], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_xlabel("width n")
    ax.set_ylabel("‖f_net − f_∞‖ / ‖f_∞‖ (test trajectory)")
    ax.set_title("relative distance to the n → ∞ limit (dashed: n^-1/2)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    example = curves[0.5][1]
    steps = np.arange(rich.shape[0])
    point, out = divmod(int(rich[-1].abs().argmax()), rich.shape[2])  # the largest output
    bx.plot(steps, rich[:, point, out].numpy(), "k-", lw=2, label="μP limit (r = 1/2)")
    bx.plot(steps, lazy[:, point, out].numpy(), "k:", lw=2, label="lazy (NTK) limit")
    for width in (widths[0], widths[-1]):
        trajectory = example[width][:, point, out].numpy()
        bx.plot(steps, trajectory, "o-", ms=3, lw=0.8, label=f"n={width}")
    bx.set_xlabel("step t")
    bx.set_ylabel(f"f_t(x*) − f_0(x*), test point {point}, output {out}")
    bx.set_title("r = 1/2: networks follow the rich limit, not the NTK", fontsize=9)
    bx.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
