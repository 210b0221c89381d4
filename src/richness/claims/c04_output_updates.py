"""C4 (THEORY.md §4): ‖Δf‖ is Θ(1) (NTC).

Measures: C4, the width exponent of "df" on the scale experiment (linear net, deep ReLU MLP,
CNN; r on a grid in [0, 1/2]; several seeds), judged against `Parameterization.predict`
by the rule in
`richness.claims.rules`.
"""

from richness.claims._base import ClaimResult, Context
from richness.claims._slope_claim import slope_claim

CLAIM = "C4"
TITLE = "‖Δf‖ is Θ(1) (NTC)"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (rule: richness.claims.rules)."""
    return slope_claim(ctx, CLAIM, TITLE)
