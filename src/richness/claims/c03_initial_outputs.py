"""C3 (THEORY.md §4): the initial output is small, ‖f0‖ ~ n^{−r} (∝ 1/‖Δh‖).

Measures: C3 on the uncentered output at initialization, for the three architectures of the
scale experiment. ‖f0‖ is one random draw per seed (with global average pooling the CNN's
outputs are nearly the same for every input), so it needs many more seeds than the training
claims; it also needs no training, so this claim draws many initializations directly (same
models, data and tables as the scale experiment) instead of running the sweep.
Verdict (rule in `richness.claims.rules`): every fitted exponent agrees with −r (the table's
predicted ‖f0‖ exponent) at tolerance 0.1 (+ the CNN's allowance 0.05): the slope and its
seed-bootstrap interval within the band (`richness.analysis.agreement`). Negative control: SP
drawn in place of every r (its readout keeps ‖f0‖ of order 1) judged against −r must fail with
a disagreeing row.
"""

from __future__ import annotations

import json

import torch

from richness.analysis import fit_exponents, run_frames
from richness.build import identity, setup
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import width_figure
from richness.claims._scale import arch_names, judge, scale_spec
from richness.claims._slope_claim import control_summary
from richness.claims.rules import rule_of
from richness.config import RunConfig
from richness.measure.meter import measured_layers
from richness.sweep.store import config_hash

CLAIM = "C3"
TITLE = "‖f0‖ ~ n^{−r}: small initial outputs are needed to learn features"
SEEDS = {"quick": 16, "full": 48}


@torch.no_grad()
def _draw(spec: dict, arch: str, seeds: int, preset: str | None = None) -> list[dict]:
    """Initial-output norms for every (width, r, seed): `run_frames` records of step 0; with
    `preset`, that preset is drawn once per (width, seed) instead of the tables at r."""
    records = []
    points = [(None, preset)] if preset else [(r, None) for r in spec["richness"]]
    for width in spec["widths"]:
        for r, name in points:
            for seed in range(seeds):
                point = {"preset": name} if name else {"r": r, "gauge": "stp"}
                config = RunConfig.parse(
                    {
                        "model": spec["model"],
                        "data": spec["data"],
                        "width": width,
                        **point,
                        "gamma": 1.0,
                        "base_width": spec["base_width"],
                        "seed": seed,
                        "train": {**spec["optimizer"], "steps": 1},  # not trained: f0 only
                        "measure": {"steps": [0]},
                    }
                )
                model, data = setup(config)
                x = data.x_probe.flatten(1) if arch in ("mlp", "linear") else data.x_probe
                f0 = model(x).flatten(1).norm(dim=1).mean().item()
                table = config.parameterization()
                records.append(
                    {
                        "run_id": f"{arch}-{width}-{r}-{seed}",
                        "config": config.as_json(),
                        "identity": identity(model, measured_layers(model), table),
                        "rows": [(0, "", "f0", f0)],
                    }
                )
    return records


def _cached_draw(ctx: Context, spec: dict, arch: str, seeds: int, preset: str | None = None):
    """`_draw` as (runs, metrics), kept in ctx.out under the hash of what it depends on (a
    rerun reads it back)."""
    what = {"spec": spec, "arch": arch, "seeds": seeds, "version": 2}
    key = config_hash({**what, "preset": preset} if preset else what)
    path = ctx.out / f"C3-{arch}-{key}.json"
    if path.exists():
        return run_frames(json.loads(path.read_text()))
    records = _draw(spec, arch, seeds, preset)
    path.write_text(json.dumps(records))
    return run_frames(records)


def run(ctx: Context) -> ClaimResult:
    """Draws the initializations and returns the verdict."""
    rule = rule_of(CLAIM)
    rows, panels, control_rows = [], [], []
    for arch in arch_names(ctx):
        spec = scale_spec(arch, ctx)
        if ctx.substitute:
            raise ValueError("C3 measures tables by r; substitute is not supported here")
        runs, metrics = _cached_draw(ctx, spec, arch, SEEDS[ctx.scale])
        fits = fit_exponents(runs, metrics, quantities=["f0"], steps=[0], n_boot=400)
        rows += [_row(arch, fit, fit.r, fit.predicted) for fit in fits.itertuples()]
        control = rule["negative_control"]["trained"]
        c_runs, c_metrics = _cached_draw(ctx, spec, arch, SEEDS[ctx.scale], control)
        c_fits = fit_exponents(c_runs, c_metrics, quantities=["f0"], steps=[0], n_boot=400)
        for fit in c_fits.itertuples():  # the control judged against −r at every intended r
            control_rows += [_row(arch, fit, r, -r) for r in spec["richness"]]
        panels.append(
            {
                "runs": runs,
                "metrics": metrics,
                "quantity": "f0",
                "step": 0,
                "layer": "",
                "title": arch,
                "predicted": {f"r={r:g}": -r for r in spec["richness"]},
            }
        )
    ok, worst = judge(rows, rule)
    control = control_summary(control_rows, rule)
    ok &= control["fails_as_required"]
    figure = width_figure(ctx.out / f"{CLAIM}.png", f"{CLAIM}: {TITLE}", panels)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured={f"{r['arch']} r={r['r']:g}": round(r["slope"], 4) for r in rows},
        predicted={f"{r['arch']} r={r['r']:g}": r["predicted"] for r in rows},
        tolerance=rule["tolerance"],
        details={
            "seeds": SEEDS[ctx.scale],
            "worst_gap": worst,
            "rule": f"every slope and its seed-bootstrap interval within ±{rule['tolerance']} of "
            "−r (+ the CNN's allowance 0.05); fitted on every width",
            "negative_control": control,
        },
        figures=[figure],
        table=rows,
        rule=rule,
    )


def _row(arch: str, fit, r: float, predicted: float) -> dict:
    return {
        "arch": arch,
        "r": r,
        "trained": fit.label,
        "quantity": "f0",
        "layer": "",
        "slope": fit.slope,
        "ci_low": fit.ci_low,
        "ci_high": fit.ci_high,
        "predicted": predicted,
        "n_seeds": int(fit.n_seeds),
        "local_slopes": [round(float(v), 4) for v in fit.local_slopes],
    }
