"""C16 (THEORY.md §2 UUC): every layer's update decreases the loss by Θ(1) in n.

Measures: C16. Layer ℓ's contribution to the first-order loss decrease of step t is
D_ℓ(t) = −∇_{W_ℓ}L(θ_{t−1})·(W_ℓ(t) − W_ℓ(t−1)) (`richness.measure.second_order.
layer_loss_decrease`: the step's actual update is read; for SGD it is η_ℓ‖∇_ℓL‖² ≥ 0). On the
richness scale every layer's update moves the output by Θ(1) (NTC, MAX), so every D_ℓ is Θ(1)
in n: width exponent 0, no layer's share vanishing. D_ℓ = Σ_{t=1..T} D_ℓ(t) over C15's runs
(claims/c15_second_order.py: SETUP; the same runs, cached once).

Verdict (RULE, written before the claim was first run), all of:
  1. for every architecture, r and layer, the slope of log(seed-mean D_ℓ) on log n (all
     widths, seed-bootstrap 95% interval) agrees with 0 at tolerance 0.15
     (`richness.analysis.agreement`);
  2. every layer's share D_ℓ/Σ_k D_k is ≥ 0.01 at every width and r (seed mean);
  3. the negative control fails rule 1 or 2: the same runs at r = ½ with one hidden layer
     frozen (its param groups' lr set to 0 in the optimizer that `rn.optimizer` builds).
`Context.substitute` (e.g. "sp" at the same η0) trains that preset wherever an r is expected.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from richness.analysis.agreement import agreement
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import seed_slope
from richness.claims.c15_second_order import R_GRID, SETUP, recorded_run, run_config

__all__ = ["CLAIM", "RULE", "TITLE", "run"]

CLAIM = "C16"
TITLE = "useful updates (UUC): each layer's first-order loss decrease is Θ(1) in n"
RULE: dict[str, Any] = {
    "quantity": "D_ℓ = Σ_{t=1..T} −∇_{W_ℓ}L(θ_{t−1})·ΔW_ℓ(t), per layer",
    "fit": "slope of log(seed-mean D_ℓ) on log n, all widths, seed-bootstrap 95% interval",
    "predicted": 0.0,
    "tolerance": 0.15,
    "share_at_least": 0.01,
    "control": {"frozen": "layers.1", "r": 0.5, "must": "fail rule 1 or 2"},
}


def _layer_table(ctx: Context, arch: str, r: float, freeze: str | None):
    """{layer: (W, S) array of D_ℓ} for one (architecture, r)."""
    widths, seeds = SETUP["widths"][ctx.scale], SETUP["seeds"][ctx.scale]
    values: dict[str, np.ndarray] = {}
    for i, w in enumerate(widths):
        for j, s in enumerate(seeds):
            out = recorded_run(
                run_config(arch, r, w, s, ctx), ctx.out / "second_order_runs", freeze=freeze
            )
            if out["status"] != "done":
                continue
            for step in out["decrease"].values():
                for layer, v in step.items():
                    table = values.setdefault(layer, np.zeros((len(widths), len(seeds))))
                    table[i, j] += v
    return values


def _judge(widths: list[int], values: dict[str, np.ndarray], prefix: str):
    """Rules 1 and 2 on one (architecture, r): (checks, fits)."""
    checks, fits = {}, {}
    total = sum(v.mean(1) for v in values.values())
    for layer, v in values.items():
        s, low, high = seed_slope(widths, v)
        share = v.mean(1) / total
        verdict = agreement(s, low, high, RULE["predicted"], RULE["tolerance"])
        fits[f"{prefix} {layer}"] = {
            "slope": round(s, 4),
            "ci": [round(low, 4), round(high, 4)],
            "share": [round(float(x), 4) for x in share],
            "D": [round(float(x), 5) for x in v.mean(1)],
            "agreement": verdict,
        }
        checks[f"{prefix} {layer}: slope agrees with 0"] = verdict == "agrees"
        checks[f"{prefix} {layer}: share ≥ {RULE['share_at_least']}"] = bool(
            np.all(share >= RULE["share_at_least"])
        )
    return checks, fits


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
    widths = SETUP["widths"][ctx.scale]
    checks: dict[str, bool] = {}
    fits: dict[str, Any] = {}
    panels = {}
    for arch in SETUP["archs"]:
        for r in R_GRID:
            values = _layer_table(ctx, arch, r, None)
            c, f = _judge(widths, values, f"{arch} r={r:g}")
            checks |= c
            fits |= f
            if r == R_GRID[-1]:
                panels[arch] = values
    control = RULE["control"]
    control_checks, control_fits = {}, {}
    for arch in SETUP["archs"]:
        values = _layer_table(ctx, arch, control["r"], control["frozen"])
        c, f = _judge(widths, values, f"{arch} r={control['r']:g} frozen {control['frozen']}")
        control_checks |= c
        control_fits |= f
    control_fails = not all(control_checks.values())
    checks[f"control (frozen {control['frozen']}) fails"] = control_fails
    figure = _figure(ctx, widths, panels)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured={k: v["slope"] for k, v in fits.items()},
        predicted={k: RULE["predicted"] for k in fits},
        tolerance={"slope": RULE["tolerance"], "share_at_least": RULE["share_at_least"]},
        details={
            "checks": checks,
            "fits": fits,
            "control_checks": control_checks,
            "control_fits": control_fits,
            "rule": RULE,
            "setup": SETUP,
            "trained": ctx.substitute or "each r's STP table",
            "seconds": round(time.perf_counter() - start, 1),
        },
        figures=[figure],
        table=[{"key": k, **v} for k, v in fits.items()],
    )


def _figure(ctx: Context, widths: list[int], panels: dict) -> str:
    """D_ℓ against width per layer at r = ½."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    w = np.asarray(widths, dtype=float)
    for ax, (arch, values) in zip(axes[0], panels.items(), strict=True):
        for layer, v in values.items():
            ax.loglog(w, v.mean(1), "o-", ms=3, label=layer)
        ax.set_xlabel("width n")
        ax.set_ylabel("first-order loss decrease D_ℓ")
        ax.set_title(f"{arch}, r = {R_GRID[-1]:g}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
