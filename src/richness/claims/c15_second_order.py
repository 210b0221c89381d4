"""C15 (THEORY.md §4 C8; the tutorial's ‖Δθᵀ∇²_θ f(x; θ0)Δθ‖ ∼ ‖Δh‖²/n): the second-order term.

Measures: C15. The second-order Taylor term of the network in its parameters around θ0,
S = ‖½ Δθᵀ∇²f(θ0)Δθ‖ with Δθ = θ_T − θ0 after T steps, is measured directly as a `jvp` of a
`jvp` (`richness.measure.second_order.second_order_norms`), not as the total linearization
gap that C8 fits. S is the RMS over the probe inputs of the per-input output norm. The
tutorial sizes it ‖Δh‖²/n = n^{2r−1} (‖Δh‖ ~ n^r): the slope of log S on log n is 2r − 1.

Setup: the scale experiment's linear net (16 → n → n → 8, linear teacher; f is a polynomial
in θ, so its gap is exactly the second- plus third-order term) and deep ReLU MLP
(64 → n → n → n → 10, digits), the base-relative STP table at r ∈ R_GRID, SGD with the scale
experiment's η0 = 0.05, full batch, centered, float64, trained by `richness.train.train` with a
`SecondOrderRecorder` in its Meter slot (every step measured: C16 reads the same runs).

At finite width THEORY.md's note under §4 expects a first-step term of order n^{r−1} (Δh still
uncorrelated with h) beside the leading n^{2r−1}; the two coincide at r = 0. For ReLU the
autograd Hessian is 0 at the kink, so S carries none of the kink term n^{r/2−3/4} that sets
C8's −0.75 at r = 0: S should sit at −1 there for the MLP as for the linear net.

Verdict (RULE, written before the claim was first run), all of, in every architecture:
  1. r = 0: the slope of log(seed-mean S) on log n (all widths, seed bootstrap 95% interval)
     agrees with −1 at tolerance 0.15 (`richness.analysis.agreement`);
  2. r > 0: the slope and its interval lie within [r − 1 − 0.15, 2r − 1 + 0.15] (between the
     first-step term and the leading term; reported: agreement with 2r − 1 alone);
  3. the slope rises with r: slope(r = ½) − slope(r = 0) ≥ 0.25.
The negative control is `Context.substitute` ("sp": standard parameterization at the same
η0, trained wherever an r is expected); it must fail.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from richness.analysis.agreement import agreement
from richness.build import build_optimizer, flattens, setup
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import seed_slope
from richness.claims._scale import ARCHS
from richness.config import RunConfig
from richness.measure.second_order import SecondOrderRecorder
from richness.sweep.store import config_hash
from richness.train import train

__all__ = ["CLAIM", "RULE", "SETUP", "TITLE", "recorded_run", "run", "run_config"]

CLAIM = "C15"
TITLE = "the second-order term ‖½Δθᵀ∇²fΔθ‖ ~ ‖Δh‖²/n = n^{2r−1}, measured by HVPs"
R_GRID = (0.0, 0.25, 0.5)
SETUP: dict[str, Any] = {
    "archs": ["linear", "mlp"],
    "r_grid": list(R_GRID),
    "lr": 0.05,
    "steps": {"quick": 10, "full": 30},
    "widths": {"quick": [64, 128, 256], "full": [128, 256, 512, 1024, 2048]},
    "seeds": {"quick": [0, 1, 2], "full": [0, 1, 2, 3]},
    "base_width": 64,
    "dtype": "float64",
}
RULE: dict[str, Any] = {
    "quantity": "S = RMS over probe inputs of ‖½ Δθᵀ∇²f(θ0)Δθ‖, Δθ = θ_T − θ0 (jvp of jvp)",
    "fit": "slope of log(seed-mean S) on log n, all widths, seed-bootstrap 95% interval",
    "r0_predicted": -1.0,
    "r0_tolerance": 0.15,
    "bracket": "r > 0: slope and interval within [r − 1 − 0.15, 2r − 1 + 0.15]",
    "bracket_slack": 0.15,
    "rise_at_least": 0.25,
    "negative_control": "substitute='sp' must fail",
}


def run_config(arch: str, r: float, width: int, seed: int, ctx: Context) -> RunConfig:
    """The run config of one (architecture, r, width, seed) point; every step measured."""
    a = ARCHS[arch]
    steps = SETUP["steps"][ctx.scale]
    table = (
        {"preset": ctx.substitute, "r": None}
        if ctx.substitute
        else {"r": r, "gauge": "stp", "base_width": SETUP["base_width"]}
    )
    return RunConfig.parse(
        {
            "model": a["model"],
            "data": a["data"],
            "width": width,
            "seed": seed,
            **table,
            "center": True,
            "train": {"kind": "sgd", "lr": SETUP["lr"], "steps": steps},
            "measure": {"steps": list(range(steps + 1)), "metrics": ["default"]},
            "dtype": SETUP["dtype"],
        }
    )


def recorded_run(config: RunConfig, cache: Path | None, freeze: str | None = None) -> dict:
    """Trains `config` by `richness.train.train` with a `SecondOrderRecorder` in its Meter slot.

    Args:
      config: from `run_config`.
      cache: a directory: results are read from / written to cache/<id>.json.
      freeze: a layer ("layers.1") whose param groups get lr 0 (C16's negative control).

    Returns:
      {"decrease": {t: {layer: float}}, "second_order": {t: {...}}, "loss": [..],
       "status": str}.
    """
    key = config_hash(config.as_json()) + (f"-freeze-{freeze}" if freeze else "")
    path = None if cache is None else Path(cache) / f"{key}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())
    model, data = setup(config)
    opt = build_optimizer(config, model)
    if freeze is not None:
        groups = [g for g in opt.param_groups if str(g.get("layer", "")).startswith(freeze + ".")]
        if not groups:
            raise ValueError(f"no param group of layer {freeze!r} to freeze")
        for g in groups:
            g["lr"] = 0.0
    flat = flattens(config)
    x_probe = data.x_probe.flatten(1) if flat else data.x_probe
    steps = config.train.steps
    recorder = SecondOrderRecorder(model, x_probe, second_order_steps={steps})
    outcome = train(
        model,
        data,
        opt,
        steps=steps,
        meter=recorder,  # type: ignore[arg-type]  # train reads measure_members() only
        measure_steps=list(range(steps + 1)),
        center=config.center,
        seed=config.seed,
        flatten=flat,
    )
    result = {
        "status": outcome.status,
        "decrease": {str(t): v for t, v in recorder.decrease.items()},
        "second_order": {str(t): v for t, v in recorder.second_order.items()},
        "loss": [v for _, _, q, v in outcome.rows if q == "loss"],
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    return result


def _collect(ctx: Context, arch: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """(S, gap, df) arrays of shape (R, W, S) and the table rows of one architecture."""
    widths, seeds = SETUP["widths"][ctx.scale], SETUP["seeds"][ctx.scale]
    steps = SETUP["steps"][ctx.scale]
    shape = (len(R_GRID), len(widths), len(seeds))
    so, gap, df = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    rows = []
    for a, r in enumerate(R_GRID):
        for i, w in enumerate(widths):
            for j, s in enumerate(seeds):
                out = recorded_run(run_config(arch, r, w, s, ctx), ctx.out / "second_order_runs")
                last = out["second_order"].get(str(steps))
                if out["status"] == "done" and last is not None:
                    so[a, i, j], gap[a, i, j], df[a, i, j] = (
                        last["second_order"],
                        last["lin_gap"],
                        last["df"],
                    )
                rows.append(
                    {"arch": arch, "r": r, "width": w, "seed": s, "status": out["status"]}
                    | (last or {})
                )
    return so, gap, df, rows


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (RULE)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small float64 matrices on shared cores: no OpenMP spinning
    try:
        return _run(ctx)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: Context) -> ClaimResult:
    start = time.perf_counter()
    widths = SETUP["widths"][ctx.scale]
    checks: dict[str, bool] = {}
    fits: dict[str, Any] = {}
    table: list[dict] = []
    panels = {}
    for arch in SETUP["archs"]:
        so, gap, df, rows = _collect(ctx, arch)
        table += rows
        panels[arch] = (so.mean(2), gap.mean(2))
        slope = {}
        for a, r in enumerate(R_GRID):
            s, low, high = seed_slope(widths, so[a])
            g_s = seed_slope(widths, gap[a], n_boot=20)[0] if np.all(gap[a] > 0) else float("nan")
            slope[r] = s
            leading = agreement(s, low, high, 2 * r - 1, RULE["r0_tolerance"])
            fits[f"{arch} r={r:g}"] = {
                "slope": round(s, 4),
                "ci": [round(low, 4), round(high, 4)],
                "predicted": 2 * r - 1,
                "agreement_with_2r-1": leading,
                "lin_gap_slope": round(g_s, 4),
                "share_of_gap_at_widest": round(float(np.mean(so[a, -1] / gap[a, -1])), 4),
                "S_over_df_at_widest": round(float(np.mean(so[a, -1] / df[a, -1])), 5),
            }
            if r == 0:
                checks[f"{arch}: r=0 slope agrees with −1 (±{RULE['r0_tolerance']})"] = (
                    agreement(s, low, high, RULE["r0_predicted"], RULE["r0_tolerance"]) == "agrees"
                )
            else:
                lo, hi = r - 1 - RULE["bracket_slack"], 2 * r - 1 + RULE["bracket_slack"]
                checks[f"{arch}: r={r:g} slope within [{lo:g}, {hi:g}]"] = bool(
                    np.isfinite(s) and lo <= low and high <= hi
                )
        rise = slope[R_GRID[-1]] - slope[R_GRID[0]]
        fits[f"{arch} rise"] = round(rise, 4)
        checks[f"{arch}: slope(½) − slope(0) ≥ {RULE['rise_at_least']}"] = bool(
            np.isfinite(rise) and rise >= RULE["rise_at_least"]
        )
    figure = _figure(ctx, widths, panels)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured={k: v["slope"] if isinstance(v, dict) else v for k, v in fits.items()},
        predicted={f"{arch} r={r:g}": 2 * r - 1 for arch in SETUP["archs"] for r in R_GRID},
        tolerance={"r0": RULE["r0_tolerance"], "bracket_slack": RULE["bracket_slack"]},
        details={
            "checks": checks,
            "fits": fits,
            "rule": RULE,
            "setup": SETUP,
            "trained": ctx.substitute or "each r's STP table",
            "seconds": round(time.perf_counter() - start, 1),
        },
        figures=[figure],
        table=table,
    )


def _figure(ctx: Context, widths: list[int], panels: dict) -> str:
    """S (solid) and the total gap (dashed) against width, per r, with n^{2r−1} guides."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    w = np.asarray(widths, dtype=float)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(R_GRID)))
    for ax, (arch, (so, gap)) in zip(axes[0], panels.items(), strict=True):
        for a, r in enumerate(R_GRID):
            ax.loglog(w, so[a], "o-", color=colors[a], ms=3, label=f"S, r={r:g}")
            ax.loglog(w, gap[a], "x--", color=colors[a], ms=3, lw=0.7)
            ax.loglog(w, so[a, 0] * (w / w[0]) ** (2 * r - 1), ":", color=colors[a], lw=0.8)
        ax.set_xlabel("width n")
        ax.set_ylabel("RMS ‖·‖ on probes")
        ax.set_title(f"{arch} (dashed: total gap; dotted: n^(2r−1))", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
