"""C11 (THEORY.md §3): model rescaling emulates any richness.

Measures: C11 on a deep MLP on digits, once with tanh (smooth: no kink term in the gap) and
once with ReLU (rule v4: the claim passes only if both do). Two families reach the same
activity α:
  width family:  r = 1/2, STP gauge, widths n = n0·α² (α = (n/n0)^{1/2});
  γ family:      fixed width n0, rescaling gauge (NTP with its output divided by γ and its
                 learning rate multiplied by γ²), γ = α.
Leading order (THEORY.md §3–4): ‖Δh‖ ∝ α. The linearization gap is A·α²/n + B·α/n (THEORY.md
note on C8: the correlated-update term and the first-step term), so gap·m with m = n/n0 is
(A·α² + B·α)/n0 in both families: the normalized curves coincide, growing like α^k with k
between 1 (early) and 2 (once features have moved). A ReLU network adds the kink term
C·n^{r/2−3/4}, which is α^{1/2} at fixed width but α^{−1}·… along widths and breaks the
collapse (measured with ReLU under rule v2: γ family α^0.75 against α^1.66, a factor 3.5 apart
at α = 4), so a claim that holds only for smooth networks fails here and says so per activation.
Verdict, per activation: in each family the exponent of ‖Δh‖ against α is within 0.1 of 1
and that of gap·m lies in [0.9, 2.1]; at every α the families agree within 15% on ‖Δh‖ and
within a factor 1.5 on gap·m. The claim passes iff every activation passes. Measured for
tanh at full scale (n0 = 256, α ∈ {1, 2, 4}, 20 steps, 4 seeds; rule v3): ‖Δh‖ exponents
0.99 and 0.99, ratios 1.00 / 0.99 / 0.99; gap·m exponents 1.33 and 1.17, ratios 1.00 /
1.04 / 1.25."""

from __future__ import annotations

import math

import numpy as np

from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._scale import ARCHS
from richness.claims.rules import rule_of

CLAIM = "C11"
TITLE = "rescaling by γ at fixed width reproduces width scaling at matching α"
_TOL = rule_of(CLAIM)["tolerance"]  # richness.claims.rules
TOL_DH = _TOL["dh_slope"]
GAP_RANGE = tuple(_TOL["gap_slope_range"])
AGREE_DH, AGREE_GAP = _TOL["dh_agree"], _TOL["gap_agree_factor"]
ACTIVATIONS = tuple(rule_of(CLAIM)["activations"])


def _curves(runs, metrics, step, alpha_of):
    """{α: (geometric-mean ‖Δh‖ of layer 2, geometric-mean gap·m)} over seeds."""
    m = metrics[metrics.step == step]
    out = {}
    for run in runs[runs.status == "done"].itertuples():
        rows = m[m.run_id == run.run_id]
        dh = rows[(rows.quantity == "dh") & (rows.layer == "layers.1")].value
        gap = rows[rows.quantity == "lin_gap"].value
        alpha, mfac = alpha_of(run)
        if len(dh) and len(gap):
            out.setdefault(round(alpha, 6), []).append((dh.iloc[0], gap.iloc[0] * mfac))
    return {a: tuple(np.exp(np.log(np.array(v)).mean(0))) for a, v in sorted(out.items())}


def _slope(curve, index):
    a = np.log(np.array(list(curve)))
    y = np.log(np.array([v[index] for v in curve.values()]))
    return float(np.polyfit(a, y, 1)[0])


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) both families for each activation and returns the verdict: pass
    iff every activation passes (rule v4); each activation's verdict is in the details."""
    per = {act: _families(ctx, act) for act in ACTIVATIONS}
    ok = all(p["ok"] for p in per.values())
    figure = _figure(ctx, {act: (p["width_curve"], p["gamma_curve"]) for act, p in per.items()})
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured={
            f"{act}: {k}": round(v, 4) for act, p in per.items() for k, v in p["slopes"].items()
        },
        predicted={
            f"{act}: {k}": (1.0 if "Δh" in k else "1 to 2")
            for act, p in per.items()
            for k in p["slopes"]
        },
        tolerance={
            "dh_slope": TOL_DH,
            "gap_slope_range": GAP_RANGE,
            "dh_agree": AGREE_DH,
            "gap_agree_factor": AGREE_GAP,
        },
        details={
            "base_width": per[ACTIVATIONS[0]]["base"],
            "step": per[ACTIVATIONS[0]]["step"],
            "verdict_by_activation": {act: "pass" if p["ok"] else "fail" for act, p in per.items()},
            "checks_by_activation": {act: p["checks"] for act, p in per.items()},
        },
        figures=[figure],
        table=[{"activation": act, **row} for act, p in per.items() for row in p["table"]],
    )


def _families(ctx: Context, activation: str) -> dict:
    """The width and γ families of one activation, their slopes, per-α table and checks."""
    full = ctx.scale == "full"
    base, step = (256, 20) if full else (64, 6)
    alphas = [1, 2, 4]
    common = {
        "model": {**ARCHS["mlp"]["model"], "activation": activation},
        "data": ARCHS["mlp"]["data"],
        "base_width": base,
        "seeds": [0, 1, 2, 3] if full else [0, 1],
        "optimizer": {"kind": "sgd", "lr": 0.05},
        "steps": step,
        "measure": {"steps": [step], "metrics": ["default", "lin_gap"]},
    }
    width_spec = {
        **common,
        "name": "c11-width",
        "widths": [base * a * a for a in alphas],
        "richness": [0.5],
        "gauges": ["stp"],
    }
    runs_w, metrics_w = ctx.sweep(width_spec, substitutable=False)
    width_curve = _curves(
        runs_w, metrics_w, step, lambda run: ((run.width / base) ** 0.5, run.width / base)
    )
    gamma_curve = {}
    for a in alphas:
        spec = {
            **common,
            "name": "c11-gamma",
            "widths": [base],
            "richness": [0.0],
            "gauges": ["rescaling"],
            "gamma": float(a),
        }
        runs_g, metrics_g = ctx.sweep(spec, substitutable=False)
        gamma_curve.update(_curves(runs_g, metrics_g, step, lambda run, a=a: (float(a), 1.0)))
    slopes = {
        "width: ‖Δh‖ vs α": _slope(width_curve, 0),
        "γ: ‖Δh‖ vs α": _slope(gamma_curve, 0),
        "width: gap·m vs α": _slope(width_curve, 1),
        "γ: gap·m vs α": _slope(gamma_curve, 1),
    }
    table = []
    agree = True
    for a in alphas:
        w, g = width_curve.get(float(a)), gamma_curve.get(float(a))
        if w is None or g is None:
            agree = False
            continue
        dh_ratio, gap_ratio = w[0] / g[0], w[1] / g[1]
        agree &= abs(dh_ratio - 1) <= AGREE_DH and 1 / AGREE_GAP <= gap_ratio <= AGREE_GAP
        table.append(
            {
                "alpha": a,
                "width_n": base * a * a,
                "dh_width": w[0],
                "dh_gamma": g[0],
                "gap_m_width": w[1],
                "gap_m_gamma": g[1],
                "dh_ratio": dh_ratio,
                "gap_ratio": gap_ratio,
            }
        )
    checks = {
        f"families agree at every α (‖Δh‖ within {AGREE_DH}, gap·m within ×{AGREE_GAP})": bool(
            agree
        ),
        f"‖Δh‖ exponents within {TOL_DH} of 1": all(
            abs(v - 1) <= TOL_DH for k, v in slopes.items() if "Δh" in k
        ),
        f"gap·m exponents in {list(GAP_RANGE)}": all(
            GAP_RANGE[0] <= v <= GAP_RANGE[1] for k, v in slopes.items() if "gap" in k
        ),
        "every slope finite": all(math.isfinite(v) for v in slopes.values()),
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "slopes": slopes,
        "table": table,
        "width_curve": width_curve,
        "gamma_curve": gamma_curve,
        "base": base,
        "step": step,
    }


def _figure(ctx: Context, curves: dict) -> str:
    """‖Δh‖ and gap·m against α for both families, one row per activation."""
    fig, axes = plt.subplots(len(curves), 2, figsize=(9, 3.6 * len(curves)), squeeze=False)
    for row, (activation, (width_curve, gamma_curve)) in zip(axes, curves.items(), strict=True):
        for ax, index, name, slope in (
            (row[0], 0, "‖Δh‖ (layer 2)", 1),
            (row[1], 1, "gap · n/n0", 2),
        ):
            for curve, label, style in (
                (width_curve, "width n = n0·α², r = 1/2", "o-"),
                (gamma_curve, "fixed n0, rescaling γ = α", "s--"),
            ):
                a = np.array(list(curve))
                ax.loglog(a, [v[index] for v in curve.values()], style, label=label)
            a = np.array(list(width_curve))
            first = next(iter(width_curve.values()))[index]
            ax.loglog(a, first * a**slope, ":", color="gray", label=f"∝ α^{slope}")
            ax.set_xlabel("activity α")
            ax.set_ylabel(f"{name}, {activation}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
