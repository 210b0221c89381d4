"""What the richness meter reads: the effective richness r̂ of a run, its interval and verdict.

The result type of both estimators (`richness.analysis.richness_meter.estimate_multiwidth`,
several widths; `richness.analysis.laziness.laziness_index`, one width) and their verdict on
the richness scale ‖Δh‖ ~ γ·n^r (THEORY.md §3), 0 = lazy (NTP, kernel regime) to 1/2 = rich
(μP, feature learning), from the interval [ci_low, ci_high] of r̂ (thresholds are arguments):

  "ill-scaled"   (multi-width only) a scale check disagrees with theory (‖Δf‖ ~ n^0, C4/NTC;
                 hidden h_rms ~ n^0, C1; judged by `richness.analysis.agreement`), or r̂'s
                 interval lies off [0, 1/2] by more than the checks' tolerance: the run is not
                 on the scale (e.g. SP, C9);
  "undetermined" no interval, an interval wider than ``max_ci_width``, one that straddles a
                 threshold, or (multi-width) a scale check that can be neither confirmed nor
                 refuted;
  "lazy"         ci_high ≤ ``lazy_below`` (0.1);
  "rich"         ci_low ≥ ``rich_above`` (0.4);
  "intermediate" ``lazy_below`` < ci_low and ci_high < ``rich_above``.
r̂ is reported raw; `RichnessEstimate.r` clips it to [0, 1/2] for reading off the scale.

Floor 3: numpy and pandas only, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["R_MAX", "RichnessEstimate", "Verdict", "check_thresholds", "scale_verdict"]

Verdict = Literal["lazy", "intermediate", "rich", "ill-scaled", "undetermined"]
R_MAX = 0.5  # μP: the rich end of the scale (THEORY.md §3)


@dataclass(frozen=True)
class RichnessEstimate:
    """The effective richness of one run (or one family of runs across width).

    Attributes:
      r_hat: the raw estimate of r (may fall outside [0, 1/2]).
      ci_low, ci_high: its interval (NaN when none can be given honestly); `interval` says
        what kind.
      verdict: "lazy", "intermediate", "rich", "ill-scaled" or "undetermined" (module docstring).
      method: "multi-width" or "one-width".
      layers: per hidden layer: layer, ell, r_hat, ci_low, ci_high, and for multi-width
        n_widths, n_seeds, local_slopes (slopes between consecutive widths).
      checks: the other signals: for multi-width the width exponents of ‖Δf‖ (C4), h_rms (C1)
        and ‖f0‖ (C3) with the expected value and "ok" (True: agrees, False: disagrees, None:
        undetermined or, for f0, not judged); for one-width the r each signal (relative
        feature movement per layer, linearization gap, NTK movement) implies.
      interval: how [ci_low, ci_high] was obtained ("seed bootstrap", "width residuals",
        "signal spread" or "none").
      label: what was measured (e.g. "r=0.25 · stp").
      context: the run family's fields when known (r, preset, gauge, widths, seeds, step...).
      notes: caveats that apply to this estimate.
    """

    r_hat: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    method: Literal["multi-width", "one-width"]
    layers: pd.DataFrame
    checks: pd.DataFrame
    interval: str = "none"
    label: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def r(self) -> float:
        """r̂ clipped to the scale [0, 1/2] (NaN stays NaN)."""
        return self.r_hat if math.isnan(self.r_hat) else min(max(self.r_hat, 0.0), R_MAX)

    @property
    def position(self) -> float:
        """Where the run sits between lazy (0) and rich (1): the clipped r̂ over 1/2."""
        return self.r / R_MAX

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (frames as lists of records)."""
        return {
            "label": self.label,
            "method": self.method,
            "r_hat": self.r_hat,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "r": self.r,
            "position": self.position,
            "verdict": self.verdict,
            "interval": self.interval,
            "context": self.context,
            "layers": self.layers.to_dict("records"),
            "checks": self.checks.to_dict("records"),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        head = f"effective richness ({self.method}{', ' + self.label if self.label else ''})"
        lines = [
            head,
            f"  r̂ = {_fmt(self.r_hat)} {_interval_text(self.ci_low, self.ci_high)} "
            f"({self.interval}) → {self.verdict}; on the scale r = {_fmt(self.r)}, "
            f"{100 * self.position:.0f}% of the way from lazy (NTP) to rich (μP)"
            if not math.isnan(self.r_hat)
            else f"  r̂ = nan → {self.verdict}",
        ]
        for row in self.layers.to_dict("records"):
            lines.append(
                f"  {row['layer']:<14} r̂ {_fmt(row['r_hat'])} "
                f"{_interval_text(row['ci_low'], row['ci_high'])}"
            )
        for row in self.checks.to_dict("records"):
            expected = row.get("expected")
            tail = "" if _nan(expected) else f" (expected {_fmt(expected)})"
            status = {True: " ok", False: " OFF"}.get(row.get("ok"), "")
            lines.append(
                f"  check {row['signal']:<16} {_fmt(row['value'])} "
                f"{_interval_text(row['ci_low'], row['ci_high'])}{tail}{status}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: float) -> str:
    return "nan" if _nan(value) else f"{value:+.3f}"


def _interval_text(low: float, high: float) -> str:
    return "[no interval]" if _nan(low) else f"[{low:+.3f}, {high:+.3f}]"


def scale_verdict(
    r_hat: float,
    low: float,
    high: float,
    lazy_below: float,
    rich_above: float,
    max_ci_width: float,
    off_scale: float | None,
) -> tuple[Verdict, str]:
    """Returns r̂'s verdict on the scale (module docstring) and, when it is not plain, why.

    Args:
      r_hat, low, high: r̂ and its interval (NaN: none).
      lazy_below, rich_above, max_ci_width: the thresholds.
      off_scale: an interval lying beyond [−off_scale, 1/2 + off_scale] is "ill-scaled"
        (None: never, as one width cannot tell).
    """
    if _nan(low) or _nan(r_hat):
        return "undetermined", "no interval: the verdict needs one"
    if off_scale is not None and (low > R_MAX + off_scale or high < -off_scale):
        return "ill-scaled", f"r̂'s interval lies off the scale [0, {R_MAX}]"
    if high - low > max_ci_width:
        return "undetermined", f"interval wider than {max_ci_width}: more seeds or widths"
    if high <= lazy_below:
        return "lazy", ""
    if low >= rich_above:
        return "rich", ""
    if low > lazy_below and high < rich_above:
        return "intermediate", ""
    edge = lazy_below if low <= lazy_below else rich_above
    return "undetermined", f"the interval straddles the threshold {edge}"


def check_thresholds(
    lazy_below: float,
    rich_above: float,
    ci: float,
    n_boot: int,
    max_ci_width: float,
    scale_tolerance: float,
) -> None:
    """Raises a ValueError naming the first threshold or setting out of its range."""
    if not 0 <= lazy_below < rich_above <= R_MAX:
        raise ValueError(
            f"lazy_below={lazy_below}, rich_above={rich_above} must satisfy "
            f"0 ≤ lazy_below < rich_above ≤ {R_MAX}"
        )
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie in (0, 1), e.g. 0.95")
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be an integer ≥ 1")
    if not max_ci_width > 0:
        raise ValueError(f"max_ci_width={max_ci_width!r} must be > 0")
    if not scale_tolerance >= 0:
        raise ValueError(f"scale_tolerance={scale_tolerance!r} must be ≥ 0")
