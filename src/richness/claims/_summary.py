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

__all__ = ["CONDITIONS", "richness_scale_figure", "rule_lines", "write_markdown"]


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

# what every verdict rests on, said before any verdict (issue 14)
CONDITIONS = [
    "**What these verdicts rest on.** The slope claims C1–C8 (and C14) use one experiment: a "
    "3-layer linear net on a linear teacher (16 → 8), a depth-4 ReLU MLP on digits (8×8 "
    "scikit-learn digits, 256 training images) and a depth-3 ReLU CNN on the same digits as "
    "images; full-batch SGD at lr 0.05, MSE, **centered training** (the network is trained on "
    "f − f0, so the random initial output does not drive the updates; the tutorial's networks "
    "are not centered), 20 steps, the STP tables at r ∈ {0, 1/8, 1/4, 3/8, 1/2} with base "
    "width 64. Every other claim states its own experiment in its rule below.",
    "**Widths.** Verdict slopes of C1–C8 are fitted on the upper half of each width grid (the "
    "largest ⌈k/2⌉+1 of k: linear net 512–8192, MLP 512–4096, CNN 64–256); `slope_all` (every "
    "width) and local slopes are reported beside them and not judged. The CNN stops at width "
    "256.",
    "**Allowances.** The CNN gets +0.05 tolerance on every slope claim (added after its data "
    "were seen, 4484a2f); C8 bounds ReLU networks by the kink term r/2 − 3/4 instead of "
    "2r − 1 (d4f81c6); C8's quick form checks two of its four rules; C9's NTP/μP tolerance is "
    "0.15 (was 0.1). Where a rule was changed after its data were seen, the verdict of the "
    "same runs under its first rule is given beside it (column 'first rule').",
    "**Negative controls.** C1: an unnormalized hidden init (σ of order 1) must fail it (SP "
    "and r = 3/4 are reported; they do not fail it); C3, C7: SP in place of the scale's "
    "tables must fail; C11 is judged on a tanh and a ReLU network and passes only if both "
    "pass; C14: SP's updates must disagree; C16: a frozen layer must fail; C17: r = 0 and 1/2 "
    "must show neither explosion; C13: a lazy table in the rich family's place fails (tests).",
    "**Intervals.** ci_low…ci_high is an expanded-percentile seed bootstrap over the claim's "
    "seeds (C1–C8: 4, CNN 8; quick forms 2–4): not a calibrated 95% interval. With two seeds "
    "it is the range of the two seeds' own slopes.",
    "**Rules.** Every claim's rule is data (`richness.claims.rules`, printed by `richness "
    "reproduce --rules`) with its version and history; each claim below shows both, and each "
    "`claims.json` entry carries the rule it was judged by (a test fails when it is not the "
    "current one). What the write-up said of the 2026-11-23 runs, re-judged: "
    "[reproduction_history.md](reproduction_history.md).",
    "**Runs.** A second `reproduce` reads finished runs back from `OUT/runs.sqlite` and the "
    "run caches next to it (`second_order_runs/`, `limit_runs/`, `c19_runs/`, `C*-*.json`); "
    "a cached run does not record the commit that produced it.",
]


def _data_line(results: list[ClaimResult]) -> str:
    """Which data C13 ran on in this write-up (CIFAR-10 only with --data-dir)."""
    c13 = next((r for r in results if r.claim == "C13"), None)
    if c13 is None:
        return ""
    data = c13.details.get("data", "digits")
    return (
        f"**Data.** C13 ran on {data} here"
        + (" (`--data-dir`)." if data != "digits" else "; CIFAR-10 needs `--data-dir`.")
        + " Every other claim uses digits or synthetic data."
    )


def rule_lines(
    claim: str,
    rule: dict[str, Any],
    first_rule_verdict: str | None,
    verdict: str | None = None,
) -> list[str]:
    """Markdown lines stating a claim's rule (version, measured quantity, widths, steps,
    tolerance, allowances, negative control, scope) and its history, oldest first; the
    current version's row also gives `verdict`, the verdict of the runs written up here."""
    if not rule:
        return []
    lines = ["", f"Rule v{rule['version']} (`richness reproduce --rules {claim}`):", ""]
    for key in ("quantity", "widths", "steps", "tolerance", "allowances", "scope"):
        if rule.get(key) not in (None, {}, ""):
            lines.append(f"- {key}: {_plain(rule[key])}")
    if rule.get("checks"):
        lines.append("- checks: " + "; ".join(rule["checks"]))
    if rule.get("negative_control"):
        lines.append(f"- negative control: {_plain(rule['negative_control'])}")
    if first_rule_verdict is not None:
        lines.append(f"- verdict of these runs under the first rule: **{first_rule_verdict}**")
    lines += ["", "| version | commit | date | rule | reason | after the data | verdict |"]
    lines.append("|---|---|---|---|---|---|---|")
    for h in rule.get("history", []):
        said = h.get("verdict", "")
        if verdict is not None and h["version"] == rule["version"]:
            said = f"**{verdict}** (this write-up; when the rule was set: {said})"
        lines.append(
            f"| v{h['version']} | {h['commit']} | {h['date']} | {h['rule']} | {h['reason']} | "
            f"{'yes' if h.get('after_data') else 'no'} | {said} |"
        )
    return lines


def _verdict_line(results: list[ClaimResult]) -> str:
    """The headline: how many claims pass, and which fail."""
    failed = [r.claim for r in results if r.verdict != "pass"]
    line = f"**{len(results) - len(failed)} of {len(results)} claims pass"
    return line + (f"; {', '.join(failed)} fail.**" if failed else ".**")


def _extra_lines(r: ClaimResult) -> list[str]:
    """Markdown for a claim's off-scale controls (C1) and per-activation verdicts (C11)."""
    lines = []
    for kind, control in r.details.get("off_scale_controls", {}).items():
        lines += [
            "",
            f"Off-scale control ({kind}: {control['table']}), judged against 0 at steps "
            f"{control['steps']} on widths {control['widths_fitted']}: "
            f"{control['disagreeing_rows']} rows disagree; "
            + (
                ("fails C1 as required" if control["fails_as_required"] else "does NOT fail C1")
                if kind == "required"
                else f"{'fails' if control['fails_as_required'] else 'does not fail'} C1 (reported)"
            )
            + ".",
            "",
            "| arch | layer | step | slope | ci_low | ci_high | agreement |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {x['arch']} | {x['layer']} | {x['step']} | {_fmt(x['slope'])} | "
            f"{_fmt(x['ci_low'])} | {_fmt(x['ci_high'])} | {x['agreement']} |"
            for x in control["table"]
        ]
    by_activation = r.details.get("verdict_by_activation")
    if by_activation:
        lines += [
            "",
            "| activation | verdict | "
            + " | ".join(next(iter(r.details["checks_by_activation"].values())))
            + " |",
        ]
        lines.append(
            "|---|---|" + "---|" * len(next(iter(r.details["checks_by_activation"].values())))
        )
        for act, verdict in by_activation.items():
            checks = r.details["checks_by_activation"][act]
            lines.append(
                f"| {act} | **{verdict}** | "
                + " | ".join("yes" if v else "no" for v in checks.values())
                + " |"
            )
    return lines


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def write_markdown(
    results: list[ClaimResult], path: Path, command: str, summary_figure: str | None
) -> Path:
    """Writes the reproduction report: verdict table, then per claim its figure and numbers."""
    path = Path(path)
    base = path.parent

    def rel(p: str) -> str:
        return os.path.relpath(p, base)

    lines = [
        "# Reproduction of THEORY.md §4 and the tutorial's further statements (C1–C22)",
        "",
        _verdict_line(results),
        "",
        f"Produced by `{command}`; every number below comes from that run (`claims.json` next",
        "to the figures holds them all, each entry with the rule it was judged by). Slopes are",
        'least-squares fits of log(quantity) on log(width) over (width, seed) runs: "slope"',
        "(the verdict, with its seed-bootstrap interval ci_low…ci_high) on the largest ⌈k/2⌉+1",
        'of the k widths; "slope_all" on every width; "local_slopes" between consecutive',
        "widths, small to large.",
        "",
        *[line for c in (*CONDITIONS, _data_line(results)) if c for line in (c, "")],
        "| claim | what | verdict | rule | first rule | tolerance |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        tol = (
            r.tolerance
            if not isinstance(r.tolerance, dict)
            else ", ".join(f"{k} {_fmt(v)}" for k, v in r.tolerance.items())
        )
        mark = "**pass**" if r.verdict == "pass" else "**FAIL**"
        version = f"v{r.rule['version']}" if r.rule else ""
        first = r.first_rule_verdict or ""
        lines.append(f"| {r.claim} | {r.title} | {mark} | {version} | {first} | {tol} |")
    if summary_figure:
        lines += ["", "## The richness scale", "", f"![richness scale]({rel(summary_figure)})"]
    for r in results:
        lines += ["", f"## {r.claim}: {r.title}", "", f"Verdict: **{r.verdict}**."]
        if r.details.get("rule"):
            lines.append(f"Rule: {r.details['rule']}.")
        lines += rule_lines(r.claim, r.rule, r.first_rule_verdict, r.verdict)
        control = r.details.get("negative_control")
        if control:
            if control.get("required", True) is False:
                status = "reported, not required"
            else:
                status = "as required" if control["fails_as_required"] else "NOT as required"
            lines += [
                "",
                f"Negative control ({control['trained']} in place of the table, judged against "
                f"r): **{control['verdict']}**, {control['disagreeing_rows']} rows disagree "
                f"({status}).",
            ]
        lines += _extra_lines(r)
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
