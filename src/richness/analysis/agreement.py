"""When a measured exponent agrees with theory: the one rule that report, check, reproduce, the
richness meter and μTransfer judge by, and the widths such a verdict is fitted on.

The rule (`agreement`), for a fitted slope s with interval [lo, hi] against a prediction p at
tolerance τ (all in exponent units):

  "agrees"        p − τ ≤ lo, hi ≤ p + τ and |s − p| ≤ τ: the whole interval lies in the band;
  "disagrees"     hi < p − τ or lo > p + τ, and |s − p| > τ: the whole interval lies outside it;
  "undetermined"  anything else: the interval straddles an edge of the band, or there is no
                  interval (one seed, no bootstrap) or no finite slope.

Why: a tolerance is the precision a verdict claims, and the interval says how precisely the
data pins the exponent. A verdict that let the target merely fall inside the interval would
pass anything measured badly enough (two seeds that disagree by 0.5 "agree" with every
prediction between them); one that read the slope alone would pass a lucky point estimate
whatever its spread. Requiring the whole interval inside the band is the equivalence test
(two one-sided tests, Schuirmann 1987); with the expanded-percentile seed bootstrap of
`fit_exponents` and two seeds the interval is the range of the two seeds' own slopes, so
"agrees" then means "every seed agrees". Symmetrically, a disagreement is claimed only when
the data excludes the whole band. No interval, no verdict: a single seed can neither show
agreement nor refute it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = ["Agreement", "agreement", "asymptotic_widths"]

Agreement = Literal["agrees", "disagrees", "undetermined"]


def agreement(
    slope: float, ci_low: float, ci_high: float, predicted: float, tolerance: float
) -> Agreement:
    """Returns whether a fitted exponent agrees with its prediction (rule in the module docstring).

    Args:
      slope: the fitted exponent s (NaN: no fit).
      ci_low, ci_high: its interval [lo, hi] (NaN: none).
      predicted: the exponent p that theory predicts (or a target such as 0).
      tolerance: τ ≥ 0, the half-width of the band p ± τ the exponent must lie in.

    Returns:
      "agrees", "disagrees" or "undetermined".

    Raises:
      ValueError: ``tolerance`` < 0, ``predicted`` not finite, or ``ci_low`` > ``ci_high``.

    Example:
      >>> agreement(0.26, 0.21, 0.30, 0.25, 0.1)
      'agrees'
      >>> agreement(0.26, 0.05, 0.47, 0.25, 0.1)  # point inside, interval too wide
      'undetermined'
      >>> agreement(1.0, 0.9, 1.1, 0.0, 0.1)
      'disagrees'
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} must be ≥ 0 (exponent units, e.g. 0.1)")
    if not math.isfinite(predicted):
        raise ValueError(f"predicted={predicted!r} must be finite; a series without one is n/a")
    if ci_low > ci_high:
        raise ValueError(f"ci_low={ci_low!r} > ci_high={ci_high!r}: pass the interval in order")
    bounded = math.isfinite(ci_low) and math.isfinite(ci_high)
    if not (math.isfinite(slope) and bounded):
        return "undetermined"
    low, high = predicted - tolerance, predicted + tolerance
    inside = abs(slope - predicted) <= tolerance
    if inside and low <= ci_low and ci_high <= high:
        return "agrees"
    if not inside and (ci_high < low or ci_low > high):
        return "disagrees"
    return "undetermined"


def asymptotic_widths(widths: Sequence[int]) -> list[int]:
    """Returns the widths a verdict is fitted on: the largest ⌈k/2⌉ + 1 of k (all when k ≤ 3).

    Width exponents are asymptotic and the smallest widths carry finite-width transients (the
    local slopes between consecutive widths show them), so the claims' verdicts and the
    μTransfer drift use the upper half of the grid and report the all-width fit beside it.

    Example:
      >>> asymptotic_widths([64, 128, 256, 512, 1024])
      [128, 256, 512, 1024]
    """
    ordered = sorted(widths)
    keep = len(ordered) if len(ordered) <= 3 else math.ceil(len(ordered) / 2) + 1
    return ordered[len(ordered) - keep :]
