"""C3 (THEORY.md §4): the initial output is small, ‖f0‖ ~ n^{−r} (∝ 1/‖Δh‖).

Measures: C3 on the uncentered output at step 0 of the scale experiment.
"""

from richness.claims._base import ClaimResult, Context
from richness.claims._slope_claim import slope_claim

CLAIM = "C3"
TITLE = "‖f0‖ ~ n^{−r}: small initial outputs are needed to learn features"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (tolerance 0.1)."""
    return slope_claim(ctx, CLAIM, TITLE, "f0", layers="model", tolerance=0.1, step=0)
