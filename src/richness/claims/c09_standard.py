"""C9 (THEORY.md §3 "Not on the scale", §4): SP at a fixed learning rate is unstable.

Measures: ‖Δf‖ after one step against width for SP, NTP and μP at the same base learning
rate on the deep ReLU MLP. SP's output update grows with width (predicted n^{+1}); NTP's and
μP's stay Θ(1). Verdict: SP's exponent ≥ 0.5 and NTP's and μP's within 0.15 of 0 (the
finite-width drift of the kernel, about −0.1 at widths 64–256, is within it).
"""

from __future__ import annotations

from richness.analysis.fits import fit_exponents
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import width_figure
from richness.claims._scale import scale_spec
from richness.claims.rules import rule_of
from richness.scaling import preset

CLAIM = "C9"
TITLE = "SP at a fixed learning rate: ‖Δf‖ grows with width"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict."""
    rule = rule_of(CLAIM)
    SP_FLOOR, TOL = rule["tolerance"]["sp_at_least"], rule["tolerance"]["ntp_mup"]
    spec = scale_spec(
        "mlp",
        ctx,
        name="c9-sp",
        richness=[],
        presets=["sp", "ntp", "mup"],
        measure={"steps": [0, 1], "metrics": ["default"]},
        steps=1,
    )
    runs, metrics = ctx.sweep(spec, substitutable=False)
    fits = fit_exponents(runs, metrics, quantities=["df"], steps=[1], n_boot=400)
    rows = []
    for fit in fits.itertuples():
        predicted = preset(fit.label, base_width=spec["base_width"]).predict(4)["df"]
        rows.append(
            {
                "preset": fit.label,
                "slope": fit.slope,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "predicted": predicted,
            }
        )
    by = {row["preset"]: row for row in rows}

    def holds(tol: float) -> bool:
        return (
            set(by) == {"sp", "ntp", "mup"}
            and by["sp"]["slope"] >= SP_FLOOR
            and all(abs(by[name]["slope"]) <= tol for name in ("ntp", "mup"))
        )

    ok = holds(TOL)
    figure = width_figure(
        ctx.out / f"{CLAIM}.png",
        f"{CLAIM}: {TITLE}",
        [
            {
                "runs": runs,
                "metrics": metrics,
                "quantity": "df",
                "step": 1,
                "layer": "",
                "title": "MLP on digits, one SGD step",
                "predicted": {k: v["predicted"] for k, v in by.items()},
            }
        ],
    )
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured={name: round(row["slope"], 4) for name, row in by.items()},
        predicted={name: row["predicted"] for name, row in by.items()},
        tolerance={"sp_at_least": SP_FLOOR, "ntp_mup": TOL},
        details={"lr": spec["optimizer"]["lr"], "widths": spec["widths"]},
        figures=[figure],
        table=rows,
        rule=rule,
        first_rule_verdict="pass" if holds(rule["first_rule"]["ntp_mup"]) else "fail",
    )
