"""C17 (THEORY.md §3 "Outside the scale"; issue 14): off the scale, the criteria break, measured.

r < 0 makes the initial outputs explode: ‖f0‖ ~ n^{−r} grows (the readout's g·σ ~ n^{−1/2−r}
summing n incoherent Θ(1) coordinates of h: `predict()["f0"]` = −r). r > 1/2 makes the
updates outgrow the signals: after one step the RMS coordinate of Δh_ℓ grows as n^{r−1/2}
(`predict()["dh_rms/ℓ"]`) while that of h_ℓ stays n^0, so Δh_ℓ/h_ℓ → ∞ (C1 fails after a step).

Measures: ‖f0‖ at init (step 0) and, per hidden layer, "dh_rms" after one SGD step and "h_rms" at
init, against width, on the scale experiment's linear net and deep ReLU MLP (same data, η0,
centered loss). The tables r = −1/4 and r = 3/4 are built by `rn.richness(r,
allow_off_scale=True)` and trained by the claim-local path `richness.claims._table_runs` (sweep
specs keep refusing r outside [0, 1/2]; every such run's config says `off_scale: true`).
Negative control: r = 0 and r = 1/2 through the same path and the same rule must show neither
explosion.

The rule (`RULE`, fixed before the data were seen):
  explodes(f0)     slope ≥ GROWTH and the whole 95% seed-bootstrap interval > 0;
  outgrows(ℓ)      dh_rms slope ≥ GROWTH and its interval lies entirely above the interval of
                   h_rms's slope at init (the update's exponent exceeds the signal's);
  pass             r = −1/4: f0 explodes and agrees with −r (`agreement`, ±TOL);
                   r = 3/4: every hidden layer outgrows and its dh_rms agrees with r − 1/2 (±TOL);
                   r = 0 and 1/2 (controls): f0 does not explode and no layer outgrows.
"""

from __future__ import annotations

from typing import Any

from richness.analysis import fit_exponents
from richness.analysis.agreement import agreement
from richness.claims._base import ClaimResult, Context
from richness.claims._scale import ARCHS
from richness.claims._table_runs import table_runs
from richness.scaling import richness

CLAIM = "C17"
TITLE = "off the scale: r < 0 explodes ‖f0‖ ~ n^{−r}; r > ½ makes Δh outgrow h"
R_BELOW, R_ABOVE = -0.25, 0.75
CONTROLS = (0.0, 0.5)
GROWTH = 0.1
TOL = 0.1
WIDTHS = {"quick": [64, 128, 256, 512], "full": [128, 256, 512, 1024, 2048]}
SEEDS = {"quick": list(range(8)), "full": list(range(16))}
ARCH_NAMES = ("linear", "mlp")
RULE: dict[str, Any] = {  # written before any of its runs (issue 14: rules before the data)
    "version": 1,
    "kind": "checks",
    "quantity": "f0 at init (uncentered, mean over probes); per hidden layer dh_rms after one "
    "step and h_rms at init",
    "experiment": "the scale experiment's linear net and depth-4 ReLU MLP (data, lr 0.05, "
    "centered MSE, one SGD step), STP tables r = -1/4 and r = 3/4 (rn.richness(r, "
    "allow_off_scale=True)) and the controls r = 0, 1/2, trained by "
    "richness.claims._table_runs (off-scale runs marked off_scale: true)",
    "widths": WIDTHS,
    "seeds": {k: len(v) for k, v in SEEDS.items()},
    "fit_widths": "all",
    "steps": {"full": [0, 1], "quick": [0, 1]},
    "fit": "least squares of log value on log width over every width (fit_exponents), "
    "expanded-percentile seed bootstrap (400 resamples)",
    "tolerance": {"agreement": TOL, "growth": GROWTH},
    "allowances": {},
    "agreement": "richness.analysis.agreement: slope and whole interval within ±tolerance",
    "negative_control": {
        "trained": "r = 0 and r = 1/2 (on the scale), same path, widths and rule",
        "must": "f0 does not explode and no hidden layer outgrows its signal",
    },
    "pass": "r=-1/4: f0 explodes (slope >= growth, interval > 0) and agrees with -r; r=3/4: "
    "every hidden layer's dh_rms outgrows h_rms (slope >= growth, interval above h_rms's) and "
    "agrees with r-1/2; r=0, 1/2: no explosion, no outgrowing",
    "first_rule": None,
    "history": [
        {
            "version": 1,
            "commit": "the commit adding C17",
            "date": "2026-12-01",
            "rule": "as above",
            "reason": "first rule",
            "after_data": False,
            "verdict": "quick: fail (MLP: f0 at r=-1/4 and dh_rms of layer 3 at r=3/4 "
            "undetermined, 8 seeds); full: pass",
        }
    ],
}


def _fits(runs, metrics, quantity: str, step: int) -> list[Any]:
    return list(fit_exponents(runs, metrics, quantities=[quantity], steps=[step]).itertuples())


def _row(arch: str, r: float, quantity: str, fit, predicted: float, step: int) -> dict[str, Any]:
    return {
        "arch": arch,
        "r": r,
        "off_scale": not 0.0 <= r <= 0.5,
        "quantity": quantity,
        "layer": fit.layer,
        "ell": int(fit.ell),
        "step": step,
        "slope": float(fit.slope),
        "ci_low": float(fit.ci_low),
        "ci_high": float(fit.ci_high),
        "predicted": predicted,
        "local_slopes": [round(float(v), 4) for v in fit.local_slopes],
    }


def _judge_table(arch: str, r: float, runs, metrics) -> tuple[bool, list[dict[str, Any]]]:
    predicted = richness(r, allow_off_scale=True).predict(4 if arch == "mlp" else 3)
    rows = []
    (f0,) = [f for f in _fits(runs, metrics, "f0", 0) if f.ell < 0]
    row = _row(arch, r, "f0", f0, predicted["f0"], 0)
    row["explodes"] = row["slope"] >= GROWTH and row["ci_low"] > 0
    row["agreement"] = agreement(row["slope"], row["ci_low"], row["ci_high"], row["predicted"], TOL)
    rows.append(row)
    h0 = {f.ell: f for f in _fits(runs, metrics, "h_rms", 0)}
    depth = max(h0)
    for fit in _fits(runs, metrics, "dh_rms", 1):
        if not 0 < fit.ell < depth:
            continue
        row = _row(arch, r, "dh_rms", fit, predicted[f"dh_rms/{int(fit.ell)}"], 1)
        signal = h0[fit.ell]
        row["h_rms_slope"] = float(signal.slope)
        row["h_rms_ci_high"] = float(signal.ci_high)
        row["outgrows"] = row["slope"] >= GROWTH and row["ci_low"] > signal.ci_high
        row["agreement"] = agreement(
            row["slope"], row["ci_low"], row["ci_high"], row["predicted"], TOL
        )
        rows.append(row)
    layers = [x for x in rows if x["quantity"] == "dh_rms"]
    if r < 0:
        ok = rows[0]["explodes"] and rows[0]["agreement"] == "agrees"
    elif r > 0.5:
        ok = bool(layers) and all(x["outgrows"] and x["agreement"] == "agrees" for x in layers)
    else:  # a control: the same rule must find nothing
        ok = not rows[0]["explodes"] and not any(x["outgrows"] for x in layers)
    for x in rows:
        x["table_pass"] = ok
        # judged: f0 where r < 0 or a control, dh_rms where r > 1/2 or a control; the other
        # rows are shown only (at r < 0 predict()'s dh_rms assumes an uncentered loss
        # gradient, n^{a_L}; these runs are centered, docs/claims_new.md)
        x["judged"] = (x["quantity"] == "f0") != (r > 0.5) or 0.0 <= r <= 0.5
    return ok, rows


def run(ctx: Context) -> ClaimResult:
    """Trains the four tables on both architectures and returns the verdict."""
    if ctx.substitute:
        raise ValueError("C17 builds its own off-scale tables; substitute is not supported")
    rs = (R_BELOW, R_ABOVE, *CONTROLS)
    rows: list[dict[str, Any]] = []
    verdicts: dict[str, bool] = {}
    for arch in ARCH_NAMES:
        a = ARCHS[arch]
        widths = WIDTHS[ctx.scale]
        tables = {f"r={r:g}": richness(r, base_width=min(widths), allow_off_scale=True) for r in rs}
        frames = table_runs(
            ctx,
            f"C17-{arch}",
            tables,
            model=a["model"],
            data=a["data"],
            widths=widths,
            seeds=SEEDS[ctx.scale],
            lr=a["lr"],
            steps=1,
            measure_steps=[0, 1],
            metrics=["default"],
        )
        for r in rs:
            runs, metrics = frames[f"r={r:g}"]
            ok, table_rows = _judge_table(arch, r, runs, metrics)
            verdicts[f"{arch} r={r:g}"] = ok
            rows += table_rows
    passed = all(verdicts.values())
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if passed else "fail",
        measured={_key(x): round(x["slope"], 4) for x in rows},
        predicted={_key(x): x["predicted"] for x in rows},
        tolerance={"agreement": TOL, "growth": GROWTH},
        details={"tables": verdicts, "rule": RULE},
        table=rows,
    )


def _key(row: dict[str, Any]) -> str:
    return f"{row['arch']} r={row['r']:g} {row['quantity']}/{row['layer'] or 'model'}"
