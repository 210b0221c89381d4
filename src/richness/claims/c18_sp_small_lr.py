"""C18 (THEORY.md §3 "Not on the scale"; issue 14): SP with η ∝ 1/n is stable, but its input
layer's relative update vanishes (MAX fails at layer 1).

SP: g = 1, σ = 1/√fan_in everywhere, one global LR, here η = η0·n0/n. `predict()` of that table
(`SP_SMALL_LR`): ‖Δf‖ ~ n^0 (stable, NTC holds); the RMS coordinate of Δh_1 ~ n^{−3/2} while
h_1's stays n^0 (the input layer's features freeze: the input layer gets the hidden layers' LR,
n^{−1}, where the scale gives it n^{2r}); layer 2's own update outweighs the passthrough from
layer 1 by n^{+1} (max_ratio/2, the MAX criterion failing at layer 1's contribution).

Measures: "df", "dh_rms/ℓ=1" (after the steps), "h_rms/ℓ=1" (at init) and "max_ratio/ℓ=2"
against width on the scale experiment's linear net and deep ReLU MLP (same data, η0, centered
loss), trained by the claim-local path `richness.claims._table_runs` (a sweep spec has one
fixed η0 for SP; the runs are marked `off_scale: true`). Negative control: μP (r = 1/2, STP)
through the same path and rule must keep its layer-1 update (no fall) and its MAX ratio.

The rule (`RULE`, written before the data were seen), at steps 1 and the last (quick 3, full 10),
fitted on `asymptotic_widths`, 95% expanded seed-bootstrap intervals, `agreement` at ±TOL:
  stable       df agrees with predict()["df"] (0);
  falls        dh_rms/1 agrees with its prediction (−3/2) and its whole interval lies below the
               interval of h_rms/1 at init;
  max_fails    max_ratio/2 agrees with its prediction (+1), ±TOL_MAX (C5's tolerance);
  pass         SP with η ∝ 1/n: stable, falls and max_fails on both architectures at both
               steps; μP (control): neither falls nor max_fails at any of them.
"""

from __future__ import annotations

from typing import Any

from richness.analysis import fit_exponents
from richness.analysis.agreement import agreement, asymptotic_widths
from richness.claims._base import ClaimResult, Context
from richness.claims._scale import ARCHS
from richness.claims._table_runs import table_runs
from richness.scaling import Parameterization, Power, RoleScaling, richness

CLAIM = "C18"
TITLE = "SP with η ∝ 1/n: stable, but the input layer's relative update vanishes (MAX fails)"
TOL = 0.1
TOL_MAX = 0.15
WIDTHS = {"quick": [64, 128, 256, 512], "full": [128, 256, 512, 1024, 2048]}
SEEDS = {"quick": [0, 1, 2, 3], "full": list(range(8))}
STEPS = {"quick": 3, "full": 10}
ARCH_NAMES = ("linear", "mlp")
RULE: dict[str, Any] = {  # written before any of its runs (issue 14: rules before the data)
    "version": 1,
    "kind": "checks",
    "quantity": "df (model), dh_rms of layer 1 after the steps, h_rms of layer 1 at init, "
    "max_ratio of layer 2",
    "experiment": "the scale experiment's linear net and depth-4 ReLU MLP (data, lr 0.05, "
    "centered MSE), SP with lr 0.05*n0/n (n0 the smallest width) and, as control, muP-lr "
    "(r = 1/2, STP), trained by richness.claims._table_runs (marked off_scale)",
    "widths": {"quick": WIDTHS["quick"], "full": WIDTHS["full"]},
    "seeds": {k: len(v) for k, v in SEEDS.items()},
    "fit_widths": "asymptotic",
    "steps": {k: [1, v] for k, v in STEPS.items()},
    "fit": "least squares of log(quantity) on log(width); expanded-percentile seed bootstrap",
    "tolerance": {"agreement": TOL, "max_ratio": TOL_MAX},
    "allowances": {},
    "agreement": "richness.analysis.agreement: slope and whole interval within ±tolerance",
    "negative_control": {
        "trained": "mup-lr (r = 1/2, STP), same path and widths",
        "must": "neither 'falls' nor 'max_fails' at any step on either architecture",
    },
    "pass": "SP-1/n: stable, falls and max_fails on both architectures at both steps; the "
    "control fails 'falls' and 'max_fails' everywhere",
    "first_rule": None,
    "history": [
        {
            "version": 1,
            "commit": "the commit adding C18",
            "date": "2026-12-01",
            "rule": "as above",
            "reason": "first rule",
            "after_data": False,
            "verdict": "quick: fail (MLP at step 1 and max_ratio at step 3 undetermined, 4 "
            "seeds); full: pass",
        }
    ],
}


def sp_small_lr(base_width: int) -> Parameterization:
    """SP (σ = 1/√fan_in, g = 1) with one LR η0·n0/n for every layer (THEORY.md §3, SP)."""
    sp = RoleScaling(multiplier=Power(), init_std=Power(1.0, -0.5, 0.0), lr=Power(1.0, 0.0, -1.0))
    return Parameterization(
        roles={"input": sp, "hidden": sp, "output": sp},
        base_width=base_width,
        name="sp-lr/n",
    )


def _fit(runs, metrics, quantity: str, step: int, ell: int | None, widths: list[int]):
    upper = runs[runs["width"].isin(asymptotic_widths(widths))]
    fits = fit_exponents(upper, metrics, quantities=[quantity], steps=[step], n_boot=400)
    want = -1 if ell is None else ell
    (fit,) = [f for f in fits.itertuples() if int(f.ell) == want]
    return fit


def _check(arch: str, label: str, table: Parameterization, runs, metrics, widths, steps):
    depth = 4 if arch == "mlp" else 3
    pred = table.predict(depth)
    rows, checks = [], {}
    h0 = _fit(runs, metrics, "h_rms", 0, 1, widths)
    for step in steps:
        for quantity, ell, key, tol in (
            ("df", None, "df", TOL),
            ("dh_rms", 1, "dh_rms/1", TOL),
            ("max_ratio", 2, "max_ratio/2", TOL_MAX),
        ):
            fit = _fit(runs, metrics, quantity, step, ell, widths)
            row = {
                "arch": arch,
                "table": label,
                "quantity": quantity,
                "layer": fit.layer,
                "ell": ell,
                "step": step,
                "slope": float(fit.slope),
                "ci_low": float(fit.ci_low),
                "ci_high": float(fit.ci_high),
                "predicted": pred[key],
                "tolerance": tol,
                "local_slopes": [round(float(v), 4) for v in fit.local_slopes],
            }
            row["agreement"] = agreement(
                row["slope"], row["ci_low"], row["ci_high"], row["predicted"], tol
            )
            rows.append(row)
        df, dh1, mr2 = rows[-3:]
        sp_pred = sp_small_lr(min(widths)).predict(depth)
        checks[step] = {
            "stable": df["agreement"] == "agrees",
            "falls": dh1["ci_high"] < h0.ci_low
            and agreement(dh1["slope"], dh1["ci_low"], dh1["ci_high"], sp_pred["dh_rms/1"], TOL)
            == "agrees",
            "max_fails": agreement(
                mr2["slope"], mr2["ci_low"], mr2["ci_high"], sp_pred["max_ratio/2"], TOL_MAX
            )
            == "agrees",
        }
    rows.append(
        {
            "arch": arch,
            "table": label,
            "quantity": "h_rms",
            "layer": h0.layer,
            "ell": 1,
            "step": 0,
            "slope": float(h0.slope),
            "ci_low": float(h0.ci_low),
            "ci_high": float(h0.ci_high),
            "predicted": pred["h_rms/1"],
        }
    )
    return rows, checks


def run(ctx: Context) -> ClaimResult:
    """Trains SP with η ∝ 1/n and the μP control on both architectures; the verdict."""
    if ctx.substitute:
        raise ValueError("C18 builds its own SP table; substitute is not supported")
    widths = WIDTHS[ctx.scale]
    steps = RULE["steps"][ctx.scale]
    tables = {"sp-lr/n": sp_small_lr(min(widths)), "mup-lr": richness(0.5, base_width=min(widths))}
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for arch in ARCH_NAMES:
        a = ARCHS[arch]
        frames = table_runs(
            ctx,
            f"C18-{arch}",
            tables,
            model=a["model"],
            data=a["data"],
            widths=widths,
            seeds=SEEDS[ctx.scale],
            lr=a["lr"],
            steps=STEPS[ctx.scale],
            measure_steps=[0, 1, STEPS[ctx.scale]],
            metrics=["default", "max_ratio"],
        )
        for label, table in tables.items():
            runs, metrics = frames[label]
            got, verdicts = _check(arch, label, table, runs, metrics, widths, steps)
            rows += got
            checks[f"{arch} {label}"] = verdicts
    sp_ok = all(
        all(c.values())
        for key, steps_ in checks.items()
        if "sp-lr/n" in key
        for c in steps_.values()
    )
    control_fails = all(
        not c["falls"] and not c["max_fails"]
        for key, steps_ in checks.items()
        if "mup-lr" in key
        for c in steps_.values()
    )
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if sp_ok and control_fails else "fail",
        measured={_key(r): round(r["slope"], 4) for r in rows},
        predicted={_key(r): r["predicted"] for r in rows},
        tolerance=RULE["tolerance"],
        details={
            "checks": checks,
            "sp_holds": sp_ok,
            "control_fails_claim": control_fails,
            "rule": RULE,
        },
        table=rows,
    )


def _key(row: dict[str, Any]) -> str:
    layer = row["layer"] or "model"
    return f"{row['arch']} {row['table']} {row['quantity']}/{layer} t={row['step']}"
