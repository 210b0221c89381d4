"""C3 (THEORY.md §4): the initial output is small, ‖f0‖ ~ n^{−r} (∝ 1/‖Δh‖).

Measures: C3 on the uncentered output at initialization, for the three architectures of the
scale experiment. ‖f0‖ is one random draw per seed (with global average pooling the CNN's
outputs are nearly the same for every input), so it needs many more seeds than the training
claims; it also needs no training, so this claim draws many initializations directly (same
models, data and tables as the scale experiment) instead of running the sweep.
Verdict: every fitted exponent within 0.1 (+ the architecture's extra) of −r.
"""

from __future__ import annotations

import json

import pandas as pd
import torch

from richness.analysis.fits import fit_exponents
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import width_figure
from richness.claims._scale import arch_names, judge, scale_spec
from richness.sweep.store import config_hash
from richness.train import setup

CLAIM = "C3"
TITLE = "‖f0‖ ~ n^{−r}: small initial outputs are needed to learn features"
TOLERANCE = 0.1
SEEDS = {"quick": 16, "full": 48}


@torch.no_grad()
def _draw(spec: dict, arch: str, seeds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Initial-output norms for every (width, r, seed), as store-shaped frames."""
    runs, metrics = [], []
    layers = None
    for width in spec["widths"]:
        for r in spec["richness"]:
            for seed in range(seeds):
                config = {
                    "model": spec["model"],
                    "data": spec["data"],
                    "width": width,
                    "r": r,
                    "gauge": "stp",
                    "gamma": 1.0,
                    "base_width": spec["base_width"],
                    "optimizer": spec["optimizer"]["kind"],
                    "seed": seed,
                }
                model, data = setup(config)
                x = data.x_probe.flatten(1) if arch in ("mlp", "linear") else data.x_probe
                f0 = model(x).flatten(1).norm(dim=1).mean().item()
                if layers is None:
                    kinds = (torch.nn.Linear, torch.nn.Conv2d)
                    layers = [n for n, m in model.named_modules() if isinstance(m, kinds)]
                run_id = f"{arch}-{width}-{r}-{seed}"
                full = {**config, "layers": layers, "depth": len(layers)}
                runs.append(
                    {
                        "run_id": run_id,
                        "status": "done",
                        "config": json.dumps(full),
                        **{k: full[k] for k in ("width", "r", "gauge", "seed", "depth")},
                    }
                )
                metrics.append(
                    {"run_id": run_id, "step": 0, "layer": "", "quantity": "f0", "value": f0}
                )
    return pd.DataFrame(runs), pd.DataFrame(metrics)


def _cached_draw(ctx: Context, spec: dict, arch: str, seeds: int):
    """`_draw`, kept in ctx.out under the hash of what it depends on (a rerun reads it back)."""
    key = config_hash({"spec": spec, "arch": arch, "seeds": seeds, "version": 1})
    path = ctx.out / f"C3-{arch}-{key}.csv"
    if path.exists():
        table = pd.read_csv(path)
        runs = table.drop(columns=["step", "layer", "quantity", "value"])
        metrics = table[["run_id", "step", "layer", "quantity", "value"]].fillna({"layer": ""})
        return runs, metrics
    runs, metrics = _draw(spec, arch, seeds)
    runs.merge(metrics, on="run_id").to_csv(path, index=False)
    return runs, metrics


def run(ctx: Context) -> ClaimResult:
    """Draws the initializations and returns the verdict."""
    rows, panels = [], []
    for arch in arch_names(ctx):
        spec = scale_spec(arch, ctx)
        if ctx.substitute:
            raise ValueError("C3 measures tables by r; substitute is not supported here")
        runs, metrics = _cached_draw(ctx, spec, arch, SEEDS[ctx.scale])
        fits = fit_exponents(runs, metrics, quantities=["f0"], steps=[0], n_boot=400)
        for fit in fits.itertuples():
            rows.append(
                {
                    "arch": arch,
                    "r": fit.r,
                    "trained": fit.label,
                    "layer": "",
                    "slope": fit.slope,
                    "ci_low": fit.ci_low,
                    "ci_high": fit.ci_high,
                    "predicted": -fit.r,
                    "n_seeds": int(fit.n_seeds),
                    "local_slopes": [round(float(v), 4) for v in fit.local_slopes],
                }
            )
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
    ok, worst = judge(rows, TOLERANCE)
    figure = width_figure(ctx.out / f"{CLAIM}.png", f"{CLAIM}: {TITLE}", panels)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured={f"{r['arch']} r={r['r']:g}": round(r["slope"], 4) for r in rows},
        predicted={f"{r['arch']} r={r['r']:g}": r["predicted"] for r in rows},
        tolerance=TOLERANCE,
        details={
            "seeds": SEEDS[ctx.scale],
            "worst_gap": worst,
            "rule": f"every |slope − (−r)| ≤ {TOLERANCE} (+ architecture extra)",
        },
        figures=[figure],
        table=rows,
    )
