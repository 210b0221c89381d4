"""C10 (THEORY.md §3, §4): the STP, μP and rescaling gauges are one dynamics.

Measures: C10. The same networks (deep ReLU MLP on digits, and the CNN) at r ∈ {0, 1/4, 1/2}
are trained in float64 under the three gauges from the same effective initial weights (the
same random draws z: W = σ·z, so g·W = g·σ·z is the same in every gauge); every measured
quantity of the Meter (h, Δh, f0, Δf, ΔW, alignment, linearization gap) and the train and
test losses are compared at every step. The runs lie off the base width (n0 is half the
smallest width) and at γ ∈ {0.5, 2}: at the base width and γ = 1 the three base-relative
gauges coincide and a row there compares a model with itself. Verdict (rule in
`richness.claims.rules`): the largest relative difference across gauges is ≤ 1e-10. Raw
parameter gradients are excluded: they differ between gauges by design.
"""

from __future__ import annotations

import pandas as pd

from richness.claims._base import ClaimResult, Context
from richness.claims.rules import rule_of

CLAIM = "C10"
TITLE = "the three gauges give identical trajectories (float64), off the base width, γ ≠ 1"

_ARCHS = {
    "mlp": (
        {"kind": "mlp", "depth": 4, "activation": "relu"},
        {"kind": "digits", "n_train": 128, "n_test": 64, "n_probe": 64},
    ),
    "cnn": (
        {"kind": "cnn", "depth": 3, "activation": "relu"},
        {"kind": "digits", "as_images": True, "n_train": 64, "n_test": 32, "n_probe": 32},
    ),
}


def _spread(runs: pd.DataFrame, metrics: pd.DataFrame, rtol: float, atol: float) -> pd.DataFrame:
    """Per (width, r, seed, step, layer, quantity): max relative difference across gauges
    (`atol` for quantities that are exactly 0, Δh at step 0)."""
    keys = runs.set_index("run_id")[["width", "r", "seed", "gauge"]]
    m = metrics[metrics.quantity != "grad"].join(keys, on="run_id")
    group = m.groupby(["width", "r", "seed", "step", "layer", "quantity"]).value
    stats = group.agg(["min", "max", "count", "size"])
    scale = stats[["min", "max"]].abs().max(axis=1)
    stats["rel"] = ((stats["max"] - stats["min"]) / (scale + atol / rtol)).fillna(0.0)
    # every gauge measured every quantity, and a quantity undefined (NaN, e.g. a ratio at
    # step 0) in one gauge is undefined in all
    stats["consistent"] = (stats["size"] == 3) & stats["count"].isin([0, 3])
    return stats.reset_index()


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (rtol 1e-10)."""
    rule = rule_of(CLAIM)
    rtol, atol = rule["tolerance"]["rtol"], rule["tolerance"]["atol"]
    steps = rule["steps"][ctx.scale]
    table, worst = [], 0.0
    for arch, gamma in [(a, g) for a in _ARCHS for g in rule["gammas"][ctx.scale]]:
        model, data = _ARCHS[arch]
        widths = [128, 512] if ctx.scale == "full" else [32, 64]
        if arch == "cnn":
            widths = [w // 4 for w in widths]
        spec = {
            "name": f"c10-{arch}",
            "model": model,
            "data": data,
            "widths": widths,
            "richness": [0.0, 0.25, 0.5],
            "gauges": ["stp", "mup", "rescaling"],
            "base_width": min(widths) // 2,  # off the base width: no trivial rows
            "gamma": gamma,
            "seeds": [0],
            "optimizer": {"kind": "sgd", "lr": 0.05},
            "steps": steps,
            "dtype": "float64",
            "measure": {
                "steps": list(range(steps + 1)),
                "metrics": ["default", "weights", "lin_gap"],
            },
        }
        runs, metrics = ctx.sweep(spec, substitutable=False)
        spread = _spread(runs, metrics, rtol, atol)
        complete = bool(len(spread)) and bool(spread["consistent"].all())
        for (width, r), group in spread.groupby(["width", "r"]):
            row = group.loc[group.rel.idxmax()]
            table.append(
                {
                    "arch": arch,
                    "gamma": gamma,
                    "base_width": spec["base_width"],
                    "width": int(width),
                    "r": float(r),
                    "max_rel_diff": float(row.rel),
                    "where": f"{row.quantity} {row.layer or 'model'} step {int(row.step)}",
                    "n_compared": len(group),
                    "complete": complete,
                }
            )
            worst = max(worst, float(row.rel))
    off_base = all(row["width"] != row["base_width"] and row["gamma"] != 1 for row in table)
    ok = bool(table) and off_base and worst <= rtol and all(row["complete"] for row in table)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured=worst,
        predicted=0.0,
        tolerance=rtol,
        details={
            "rule": f"max relative difference across gauges ≤ {rtol:g}, off the base width, "
            f"γ ∈ {rule['gammas'][ctx.scale]}",
            "steps": steps,
        },
        table=table,
        rule=rule,
    )
