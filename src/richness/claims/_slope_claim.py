"""The common shape of C1–C7: one quantity's width exponent on the scale experiment."""

from __future__ import annotations

import dataclasses
from typing import Any

from richness.claims._base import ClaimResult, Context
from richness.claims._figures import width_figure
from richness.claims._scale import arch_names, first_rule_verdict, judge, scale_runs, slopes
from richness.claims.rules import rule_of

__all__ = ["control_summary", "slope_claim"]


def slope_claim(ctx: Context, claim: str, title: str) -> ClaimResult:
    """Fits the rule's quantity against width for every architecture, r and step of the rule
    (`richness.claims.rules`: steps 1, 5 and 20 at full scale, the last step only in the
    reduced form); passes when every fitted exponent agrees with its prediction
    (`richness.analysis.agreement`: the slope and its whole interval within the band) and,
    where the rule names a negative control, the control fails with a disagreeing row."""
    rule = rule_of(claim)
    quantity, layers = rule["quantity"], rule["layers"]
    steps = list(rule["steps"][ctx.scale])
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
    ok, worst = judge(rows, rule)
    details: dict[str, Any] = {
        "quantity": quantity,
        "steps": steps,
        "worst_gap": worst,
        "rule": f"every slope and its seed-bootstrap interval within ±{rule['tolerance']} of "
        "predicted (+ the architecture's allowance, CNN +0.05); fitted on the upper widths",
    }
    control = rule.get("negative_control")
    if control and not ctx.substitute:
        swapped = dataclasses.replace(ctx, substitute=control["trained"])
        control_rows = []
        for arch in arch_names(ctx):
            control_rows += slopes(arch, swapped, quantity, step, layers=layers)
        details["negative_control"] = control_summary(control_rows, rule)
        if control.get("required", True):
            ok &= details["negative_control"]["fails_as_required"]
    figure = width_figure(ctx.out / f"{claim}.png", f"{claim}: {title}", panels)
    return ClaimResult(
        claim=claim,
        title=title,
        verdict="pass" if ok else "fail",
        measured={_key(r): round(r["slope"], 4) for r in rows},
        predicted={_key(r): r["predicted"] for r in rows},
        tolerance=rule["tolerance"],
        details=details,
        figures=[figure],
        table=rows,
        rule=rule,
        first_rule_verdict=first_rule_verdict(rows, rule),
    )


def control_summary(rows: list[dict[str, Any]], rule: dict[str, Any]) -> dict[str, Any]:
    """Judges a negative control's rows by the claim's rule: it must fail with a row that
    disagrees. Returns its verdict, counts and compact rows."""
    ok, _ = judge(rows, rule)
    disagree = sum(row["agreement"] == "disagrees" for row in rows)
    keys = ("arch", "r", "trained", "layer", "step", "slope", "ci_low", "ci_high", "predicted")
    return {
        **rule["negative_control"],
        "verdict": "pass" if ok else "fail",
        "disagreeing_rows": disagree,
        "fails_as_required": (not ok) and disagree > 0,
        "table": [{k: row.get(k) for k in (*keys, "agreement")} for row in rows],
    }


def _key(row: dict) -> str:
    return f"{row['arch']} r={row['r']:g} {row['layer'] or 'model'} t={row['step']}"
