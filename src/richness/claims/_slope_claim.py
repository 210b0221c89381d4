"""The common shape of C1–C7: one quantity's width exponent on the scale experiment."""

from __future__ import annotations

from richness.claims._base import ClaimResult, Context
from richness.claims._figures import width_figure
from richness.claims._scale import MEASURE, arch_names, judge, scale_runs, slopes

__all__ = ["slope_claim"]


def slope_claim(
    ctx: Context,
    claim: str,
    title: str,
    quantity: str,
    *,
    layers: str,
    tolerance: float,
    include_init: bool = False,
) -> ClaimResult:
    """Fits `quantity` against width for every architecture, r and measured step after the
    first update (along training: steps 1, 5 and 20 at full scale; the last step only in the
    reduced form); passes when every fitted exponent agrees with its prediction at
    `tolerance` (`richness.analysis.agreement`: the slope and its whole interval within the
    band; stated in the result)."""
    steps = [s for s in MEASURE[ctx.scale] if s > 0 or include_init]
    if ctx.scale == "quick":  # the reduced form: small widths, where the first step is still
        steps = [s for s in steps if s in (0, steps[-1])]  # transient; judge the last step
    step = steps[-1]  # the figure shows the last one
    rows = []
    panels = []
    for arch in arch_names(ctx):
        arch_rows = slopes(arch, ctx, quantity, step, layers=layers, with_local=True)
        rows += arch_rows
        for earlier in steps[:-1]:
            rows += slopes(arch, ctx, quantity, earlier, layers=layers, with_local=True)
        runs, metrics, _ = scale_runs(arch, ctx)
        shown = next((r["layer"] for r in arch_rows if r["ell"] in (2, None)), None)
        shown = shown if shown is not None else (arch_rows[0]["layer"] if arch_rows else "")
        predicted = {row["trained"]: row["predicted"] for row in arch_rows if row["layer"] == shown}
        panels.append(
            {
                "runs": runs,
                "metrics": metrics,
                "quantity": quantity,
                "step": step,
                "layer": shown,
                "title": f"{arch}, layer {shown or '(model)'}",
                "predicted": predicted,
            }
        )
    ok, worst = judge(rows, tolerance)
    figure = width_figure(ctx.out / f"{claim}.png", f"{claim}: {title}", panels)
    return ClaimResult(
        claim=claim,
        title=title,
        verdict="pass" if ok else "fail",
        measured={_key(r): round(r["slope"], 4) for r in rows},
        predicted={_key(r): r["predicted"] for r in rows},
        tolerance=tolerance,
        details={
            "quantity": quantity,
            "steps": steps,
            "worst_gap": worst,
            "rule": f"every slope and its 95% seed-bootstrap interval within ±{tolerance} of "
            "predicted (+ the architecture's extra)",
        },
        figures=[figure],
        table=rows,
    )


def _key(row: dict) -> str:
    return f"{row['arch']} r={row['r']:g} {row['layer'] or 'model'} t={row['step']}"
