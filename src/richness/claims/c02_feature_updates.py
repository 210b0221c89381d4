"""C2 (THEORY.md §4): ‖Δh_ℓ‖ ~ n^r in every hidden layer.

Measures: C2, the width exponent of "dh" on the scale experiment (linear net, deep ReLU MLP,
CNN; r on a grid in [0, 1/2]; several seeds), judged against `Parameterization.predict`
by the rule in
`richness.claims.rules`.
"""

from richness.claims._base import ClaimResult, Context
from richness.claims._slope_claim import slope_claim

CLAIM = "C2"
TITLE = "‖Δh_ℓ‖ ~ n^r in every hidden layer"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (rule: richness.claims.rules)."""
    return slope_claim(ctx, CLAIM, TITLE)
