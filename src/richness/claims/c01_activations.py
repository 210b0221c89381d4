"""C1 (THEORY.md §4): RMS coordinate of every hidden h_ℓ stays Θ(1).

Measures: C1, the width exponent of "h_rms" on the scale experiment (linear net, deep ReLU MLP,
CNN; r on a grid in [0, 1/2]; several seeds), judged against `Parameterization.predict`
by the rule in `richness.claims.rules`.

Negative controls (rule v7, `off_scale_controls`): tables no sweep spec can name, trained by
`richness.claims._table_runs` on the scale experiment's linear net and ReLU MLP and judged
against C1's prediction (0 for every hidden layer) by the same agreement rule:
  required  an unnormalized hidden init, σ_hidden = Θ(1) instead of fan_in^{−1/2}: each hidden
            layer multiplies the RMS coordinate by √n, so h_rms ~ n^{(ℓ−1)/2} at step 0 and C1
            must fail with a disagreeing row;
  reported  r = 3/4: the updates outgrow the signals (Δh_rms ~ n^{r−1/2}, C17), so h_rms
            eventually grows; at lr 0.05 they move h by a few percent at the base width, so
            this table is reported, not required to fail.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from richness.analysis import fit_exponents
from richness.analysis.agreement import agreement, asymptotic_widths
from richness.claims._base import ClaimResult, Context
from richness.claims._scale import ARCHS
from richness.claims._slope_claim import slope_claim
from richness.claims._table_runs import table_runs
from richness.claims.rules import rule_of
from richness.scaling import Parameterization, Power, richness

CLAIM = "C1"
TITLE = "RMS coordinate of every hidden h_ℓ stays Θ(1)"
CONTROL_ARCHS = ("linear", "mlp")
_RULE = rule_of(CLAIM)  # richness.claims.rules
_CONTROLS = _RULE["off_scale_controls"]
TOL = _RULE["tolerance"]


def unnormalized_init(base_width: int) -> Parameterization:
    """STP r = 1/2 with the hidden role's init std multiplied by fan_in^{1/2}: σ = Θ(1)."""
    table = richness(0.5, base_width=base_width)
    hidden = table.roles["hidden"]
    roles = {
        **table.roles,
        "hidden": dataclasses.replace(hidden, init_std=hidden.init_std * Power(1.0, 0.5, 0.0)),
    }
    return dataclasses.replace(table, roles=roles, name="unnormalized-init", r=None)


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and its off-scale controls; returns the verdict."""
    result = slope_claim(ctx, CLAIM, TITLE)
    if ctx.substitute:  # a substituted run judges the substitute only
        return result
    controls = off_scale_controls(ctx)
    result.details["off_scale_controls"] = controls
    if not controls["required"]["fails_as_required"]:
        result.verdict = "fail"
    return result


def off_scale_controls(ctx: Context) -> dict[str, Any]:
    """Trains the rule's off-scale tables and judges their hidden h_rms exponents against 0.

    Returns {"required": {...}, "reported": {...}}, each with its rows and whether it fails C1
    (a row that disagrees).
    """
    widths = _CONTROLS["widths"][ctx.scale]
    seeds = list(range(_CONTROLS["seeds"][ctx.scale]))
    upper = asymptotic_widths(widths)
    spec = {
        "required": (unnormalized_init(min(widths)), _CONTROLS["required"]["steps"]),
        "reported": (
            richness(0.75, base_width=min(widths), allow_off_scale=True),
            _CONTROLS["reported"]["steps"],
        ),
    }
    out: dict[str, Any] = {}
    for kind, (table, steps) in spec.items():
        rows = []
        for arch in CONTROL_ARCHS:
            a = ARCHS[arch]
            frames = table_runs(
                ctx,
                f"C1-{kind}-{arch}",
                {table.name: table},
                model=a["model"],
                data=a["data"],
                widths=widths,
                seeds=seeds,
                lr=a["lr"],
                steps=max(1, *steps),
                measure_steps=sorted({0, *steps}),
                metrics=["default"],
            )
            runs, metrics = frames[table.name]
            runs = runs[runs.width.isin(upper)]
            for step in steps:
                fits = fit_exponents(runs, metrics, quantities=["h_rms"], steps=[step], n_boot=400)
                depth = int(fits.ell.max())  # the readout's ℓ: hidden layers are 0 < ℓ < it
                for fit in fits.itertuples():
                    if not 0 < fit.ell < depth:
                        continue
                    rows.append(
                        {
                            "arch": arch,
                            "table": table.name,
                            "layer": fit.layer,
                            "ell": int(fit.ell),
                            "step": step,
                            "slope": round(float(fit.slope), 4),
                            "ci_low": round(float(fit.ci_low), 4),
                            "ci_high": round(float(fit.ci_high), 4),
                            "predicted": 0.0,
                            "agreement": agreement(fit.slope, fit.ci_low, fit.ci_high, 0.0, TOL),
                            "statuses": sorted(set(runs.status)),
                        }
                    )
        disagree = sum(row["agreement"] == "disagrees" for row in rows)
        out[kind] = {
            **_CONTROLS[kind],
            "widths_fitted": upper,
            "disagreeing_rows": disagree,
            "fails_as_required": disagree > 0,
            "table": rows,
        }
    return out
