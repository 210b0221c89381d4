"""The richness scale in one figure, and the reproduction write-up (docs/reproduction.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from richness.claims._base import ClaimResult, Context
from richness.claims._scale import ARCHS, MEASURE, arch_names, slopes

__all__ = ["richness_scale_figure", "write_markdown"]


def richness_scale_figure(ctx: Context) -> str:
    """Measured ‖Δh‖ exponent (hidden layers, mean) and linearization-gap exponent against r,
    for the three architectures, with the theory lines r and 2r − 1 (THEORY.md §4 C2, C8)."""
    step = MEASURE[ctx.scale][-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    markers = dict(zip(ARCHS, "osD", strict=False))
    for arch in arch_names(ctx):
        dh = slopes(arch, ctx, "dh", step, layers="hidden")
        gap = slopes(arch, ctx, "lin_gap", step, layers="model")
        for ax, rows in ((axes[0], dh), (axes[1], gap)):
            rs = sorted({row["r"] for row in rows})
            means = [np.mean([row["slope"] for row in rows if row["r"] == r]) for r in rs]
            lows = [np.mean([row["ci_low"] for row in rows if row["r"] == r]) for r in rs]
            highs = [np.mean([row["ci_high"] for row in rows if row["r"] == r]) for r in rs]
            err = np.clip([np.subtract(means, lows), np.subtract(highs, means)], 0, None)
            ax.errorbar(
                rs,
                means,
                yerr=np.nan_to_num(err),
                fmt=markers[arch] + "-",
                capsize=3,
                label=arch,
                ms=5,
            )
    r = np.linspace(0, 0.5, 11)
    axes[0].plot(r, r, "k--", label="theory: r")
    axes[1].plot(r, 2 * r - 1, "k--", label="leading term: 2r − 1")
    axes[1].plot(r, r / 2 - 0.75, "k:", label="ReLU kink term: r/2 − 3/4")
    axes[0].set_ylabel(f"fitted exponent of ‖Δh‖ (hidden layers, step {step})")
    axes[1].set_ylabel(f"fitted exponent of ‖f − f_lin‖/‖Δf‖ (step {step})")
    for ax in axes:
        ax.set_xlabel("richness r")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("The richness scale: measured width exponents against r", fontsize=11)
    fig.tight_layout()
    path = ctx.out / "richness_scale.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return (
            f"{value:+.3f}"
            if (abs(value) < 1e3 and abs(value) >= 1e-3) or value == 0
            else f"{value:.2e}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "" if value is None else str(value)


_SKIP = {"trained", "quantity", "widths", "n_seeds"}


def write_markdown(
    results: list[ClaimResult], path: Path, command: str, summary_figure: str | None
) -> Path:
    """Writes the reproduction report: verdict table, then per claim its figure and numbers."""
    path = Path(path)
    base = path.parent

    def rel(p: str) -> str:
        return os.path.relpath(p, base)

    lines = [
        "# Reproduction of THEORY.md §4 (claims C1–C13)",
        "",
        f"Produced by `{command}`; every number below comes from that run (`claims.json` next",
        "to the figures holds them all). Slopes are least-squares fits of log(quantity) on",
        'log(width) over (width, seed) runs: "slope" (the verdict, with its seed-bootstrap 95%',
        "interval ci_low…ci_high) on the largest ⌈k/2⌉+1 of the k widths, where the exponents",
        'are asymptotic; "slope_all" on every width; "local_slopes" between consecutive',
        "widths, small to large.",
        "",
        "| claim | what | verdict | tolerance |",
        "|---|---|---|---|",
    ]
    for r in results:
        tol = (
            r.tolerance
            if not isinstance(r.tolerance, dict)
            else ", ".join(f"{k} {_fmt(v)}" for k, v in r.tolerance.items())
        )
        mark = "**pass**" if r.verdict == "pass" else "**FAIL**"
        lines.append(f"| {r.claim} | {r.title} | {mark} | {tol} |")
    if summary_figure:
        lines += ["", "## The richness scale", "", f"![richness scale]({rel(summary_figure)})"]
    for r in results:
        lines += ["", f"## {r.claim}: {r.title}", "", f"Verdict: **{r.verdict}**."]
        if r.details.get("rule"):
            lines.append(f"Rule: {r.details['rule']}.")
        if r.details.get("checks"):
            lines += ["", "| check | holds |", "|---|---|"]
            lines += [f"| {k} | {'yes' if v else 'no'} |" for k, v in r.details["checks"].items()]
        for fig in r.figures:
            lines += ["", f"![{r.claim}]({rel(fig)})"]
        if r.table:
            cols = [c for c in r.table[0] if c not in _SKIP]
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for row in r.table:
                lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    path.write_text("\n".join(lines) + "\n")
    return path
