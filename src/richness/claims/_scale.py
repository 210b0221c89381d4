"""The shared width × richness experiment behind C1–C8, on three architectures.

One sweep per architecture; every claim C1–C8 reads its quantity off the same runs (the store
dedups by config hash, so the claims share them). Designed for precision (research/notes.md,
issue text of THEORY.md §4's note): centered training so the random f0 does not drive the
updates; many outputs and probe inputs; the same data, probe set and batch order at every width
(common random numbers); seeds as independent replicates for the bootstrap; local slopes between
consecutive widths reported next to the global fit.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from richness.analysis import fit_exponents
from richness.analysis._frames import meter_key, predicted_exponent, run_table
from richness.analysis.agreement import agreement, asymptotic_widths
from richness.claims._base import Context
from richness.scaling import predicted_series, richness

__all__ = ["ARCHS", "R_GRID", "arch_names", "fitted_slopes", "scale_runs", "slopes"]

R_GRID = (0.0, 0.125, 0.25, 0.375, 0.5)
BASE_WIDTH = 64
# η0 for Adam per scale (docs/adam.md): at the base width every coordinate moves by about η0
# per step (Adam's first step is sign-like), so η0·steps says how far a run trains; it is kept
# at 0.02–0.03 in both scales. At 1e-2 the 20-step runs leave the regime the exponents describe
# at widths ≤ 1024 (C2, C5, C8 fail at step 20, not at step 1); at 1e-3 the 3-step runs are
# still in the first-step transient (linear net, C8 at r = 0: −1.15 at widths 64–256)
ADAM_LR = {"quick": 0.01, "full": 0.001}

ARCHS: dict[str, dict[str, Any]] = {
    # the tutorial's 3-layer linear model on a linear teacher (16 inputs, 8 outputs)
    "linear": {
        "model": {"kind": "linear"},
        "data": {
            "kind": "synthetic",
            "teacher": "linear",
            "d_in": 16,
            "d_out": 8,
            "n_train": 64,
            "n_test": 64,
            "n_probe": 128,
            "seed": 0,
        },
        "lr": 0.05,
        "adam_lr": ADAM_LR,
        "widths": {"quick": [64, 128, 256], "full": [128, 256, 512, 1024, 2048, 4096, 8192]},
    },
    # a deep ReLU MLP 64 → n → n → n → 10 on digits
    "mlp": {
        "model": {"kind": "mlp", "depth": 4, "activation": "relu"},
        "data": {"kind": "digits", "n_train": 256, "n_test": 256, "n_probe": 128, "seed": 0},
        "lr": 0.05,
        "adam_lr": ADAM_LR,
        "widths": {"quick": [64, 128, 256], "full": [128, 256, 512, 1024, 2048, 4096]},
    },
    # Myrtle-style CNN (3 conv layers of n channels, ReLU, pools, readout) on digits images
    "cnn": {
        "model": {"kind": "cnn", "depth": 3, "activation": "relu"},
        "data": {
            "kind": "digits",
            "as_images": True,
            "n_train": 128,
            "n_test": 128,
            "n_probe": 64,
            "seed": 0,
        },
        "lr": 0.05,
        "adam_lr": ADAM_LR,
        "widths": {"quick": [32, 64, 128], "full": [32, 64, 128, 256]},
        # the CNN's kernel fluctuates more between seeds than the MLP's at equal width: it gets
        # more seeds (its extra tolerance is an allowance of the rules, richness.claims.rules)
        "seeds": {"quick": [0, 1, 2, 3], "full": list(range(8))},
    },
}
STEPS = {"quick": 3, "full": 20}
MEASURE = {"quick": [0, 1, 3], "full": [0, 1, 5, 20]}
SEEDS = {"quick": [0, 1], "full": [0, 1, 2, 3]}


def scale_spec(arch: str, ctx: Context, **overrides: Any) -> dict[str, Any]:
    """The sweep spec of the scale experiment for one architecture at the context's scale."""
    a = ARCHS[arch]
    adam = ctx.optimizer == "adam"
    widths = [w for w in a["widths"][ctx.scale] if ctx.max_width is None or w <= ctx.max_width]
    if len(widths) < 2:
        raise ValueError(
            f"max_width={ctx.max_width} leaves {arch!r} fewer than 2 of its widths "
            f"{a['widths'][ctx.scale]}: nothing to fit"
        )
    spec = {
        "name": f"scale-{arch}-adam" if adam else f"scale-{arch}",
        "model": a["model"],
        "data": a["data"],
        "widths": widths,
        "richness": list(R_GRID) if ctx.scale == "full" else [0.0, 0.25, 0.5],
        "gauges": ["stp"],
        "base_width": min(BASE_WIDTH, *widths),
        "seeds": a.get("seeds", SEEDS)[ctx.scale],
        "optimizer": {"kind": "adam", "lr": a["adam_lr"][ctx.scale]}
        if adam
        else {"kind": "sgd", "lr": a["lr"]},
        "steps": STEPS[ctx.scale],
        "measure": {
            "steps": MEASURE[ctx.scale],
            "metrics": ["default", "weights", "grad_h", "lin_gap"],
        },
        "center": True,
    }
    spec.update(overrides)
    return spec


def scale_runs(
    arch: str, ctx: Context, **overrides: Any
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Runs (or reads back) the scale experiment: (runs, metrics, spec)."""
    spec = scale_spec(arch, ctx, **overrides)
    runs, metrics = ctx.sweep(spec)
    return runs, metrics, spec


def arch_names(ctx: Context) -> list[str]:
    """The architectures the context runs: `ctx.archs`, or all of `ARCHS`.

    Raises:
      ValueError: an unknown architecture.
    """
    names = list(ARCHS) if ctx.archs is None else list(ctx.archs)
    unknown = [a for a in names if a not in ARCHS]
    if unknown or not names:
        raise ValueError(f"archs={names!r} must be a non-empty list of {list(ARCHS)}")
    return names


def _expected_points(spec: dict[str, Any]) -> list[float]:
    return list(spec.get("richness") or [])


def slopes(
    arch: str,
    ctx: Context,
    quantity: str,
    step: int,
    *,
    layers: str = "hidden",
    with_local: bool = False,
) -> list[dict[str, Any]]:
    """Fitted width exponents of `quantity` at `step`, one row per (r, layer), with predictions.

    "slope" (with its seed-bootstrap interval) is fitted on `asymptotic_widths`; "slope_all"
    on every width; "local_slopes" between consecutive widths. The prediction comes from the
    *intended* richness r of the spec (not from what was trained), so a substituted table
    (Context.substitute) is judged against r: `predicted_series` of the table at r for the
    layers the runs recorded in their identity.

    Args:
      layers: "hidden" (ℓ < depth), "output" (ℓ = depth), "all", or "model" (layer "").
    """
    runs, metrics, spec = scale_runs(arch, ctx)
    return fitted_slopes(
        runs,
        metrics,
        spec,
        arch,
        quantity,
        step,
        layers=layers,
        with_local=with_local,
        optimizer=ctx.optimizer,
        substitute=ctx.substitute,
    )


def fitted_slopes(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    spec: dict[str, Any],
    arch: str,
    quantity: str,
    step: int,
    *,
    layers: str = "hidden",
    with_local: bool = False,
    optimizer: str = "sgd",
    substitute: str | None = None,
) -> list[dict[str, Any]]:
    """`slopes` of any sweep over richness points (spec "richness", STP, a base width): the
    scale experiment's, or another claim's runs of its own networks (C13 on CIFAR-10).

    The layers' roles and predictions are those the runs recorded (`richness.build.identity`),
    so a model with input-like layers inside it (a ConvMixer's depthwise convs) is predicted
    by its own roles. `substitute`: the preset trained in place of every point (its label).
    """
    upper = asymptotic_widths(spec["widths"])
    everything = fit_exponents(runs, metrics, quantities=[quantity], steps=[step], n_boot=0)
    fits = fit_exponents(
        runs[runs.width.isin(upper)], metrics, quantities=[quantity], steps=[step], n_boot=400
    )
    overall = {(f.label, f.layer): f for f in everything.itertuples()}
    rows = []
    depth = int(fits.depth.iloc[0]) if len(fits) else None
    done = run_table(runs)
    done = done.loc[done["status"] == "done"]
    names = done["layers"].iloc[0] if depth else []
    roles = _recorded_roles(done) if depth else None
    for r in _expected_points(spec):
        p = richness(r, base_width=spec["base_width"], optimizer=optimizer)
        predicted, predicted_init = predicted_series(p, names, roles=roles)
        intended = {"predicted": predicted, "predicted_init": predicted_init}
        label = substitute or f"r={r:g}"
        for fit in fits[fits.label == label].itertuples():
            ell = None if fit.ell < 0 else int(fit.ell)
            if layers == "model" and ell is not None:
                continue
            if layers == "hidden" and (ell is None or ell >= depth):
                continue
            if layers == "output" and ell != depth:
                continue
            if layers == "all" and ell is None:
                continue
            whole = overall.get((label, fit.layer))
            row = {
                "arch": arch,
                "r": r,
                "trained": label,
                "quantity": quantity,
                "layer": fit.layer,
                "ell": ell,
                "step": step,
                "slope": fit.slope,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "slope_all": None if whole is None else whole.slope,
                "predicted": predicted_exponent(intended, meter_key(quantity, fit.layer), step),
                "widths": list(fit.widths),
                "n_seeds": int(fit.n_seeds),
            }
            if with_local and whole is not None:
                row["local_slopes"] = [round(float(v), 4) for v in whole.local_slopes]
            rows.append(row)
    return rows


def _recorded_roles(done: pd.DataFrame) -> list[str] | None:
    """The layer roles a finished run recorded in its identity, where they differ from the
    positional input, hidden…, output (None otherwise, or when not recorded)."""
    if "identity" not in done.columns:
        return None
    identity = done["identity"].iloc[0]  # a dict (run_table parses it) or None
    if not isinstance(identity, dict):
        return None
    roles = [entry.get("role") for entry in identity.get("layers", [])]
    if len(roles) < 2 or None in roles:
        return None
    by_position = ["input"] + ["hidden"] * (len(roles) - 2) + ["output"]
    return None if roles == by_position else roles


def judge(rows: list[dict[str, Any]], rule: dict[str, Any]) -> tuple[bool, float]:
    """Every row agrees with its prediction (`agreement`) at the rule's tolerance plus its
    architecture's allowance (`rule["allowances"]["extra_tolerance"]`): the slope and its whole
    seed-bootstrap interval within ±tolerance.

    Returns (ok, worst |slope − predicted|); each row gets "tolerance", "agreement" and "pass".

    Raises:
      ValueError: a row without a prediction (a layer the table cannot name).
    """
    worst = 0.0
    ok = bool(rows)
    extra = rule.get("allowances", {}).get("extra_tolerance", {})
    for row in rows:
        if not math.isfinite(row["predicted"]):
            raise ValueError(
                f"{row['arch']} r={row['r']:g} {row['quantity']}/{row['layer']} has no "
                "prediction: its layer is not one the table's depth names"
            )
        gap = abs(row["slope"] - row["predicted"]) if math.isfinite(row["slope"]) else math.inf
        row["tolerance"] = rule["tolerance"] + extra.get(row["arch"], 0.0)
        row["agreement"] = agreement(
            row["slope"], row["ci_low"], row["ci_high"], row["predicted"], row["tolerance"]
        )
        row["pass"] = row["agreement"] == "agrees"
        ok &= row["pass"]
        worst = max(worst, gap)
    return ok, worst


def first_rule_verdict(rows: list[dict[str, Any]], rule: dict[str, Any]) -> str | None:
    """The verdict of the same rows under the claim's first slope rule (`rule["first_rule"]`):
    the point estimate fitted on every width ("slope_all"), at the last step only, within the
    tolerance without allowances. None when the rule has no first slope rule to apply.
    """
    first = rule.get("first_rule")
    if not first or first.get("fit_widths") != "all" or not rows:
        return None
    last = max(row.get("step", 0) for row in rows)
    ok = True
    for row in rows:
        if row.get("step", 0) != last:
            continue
        slope = row.get("slope_all")
        slope = row["slope"] if slope is None else slope
        tol = rule["tolerance"] + first.get("extra_tolerance", {}).get(row["arch"], 0.0)
        ok &= math.isfinite(slope) and abs(slope - row["predicted"]) <= tol
    return "pass" if ok else "fail"
