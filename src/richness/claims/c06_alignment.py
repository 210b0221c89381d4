"""C6 (THEORY.md §4): weight updates align with their inputs (Θ(1) alignment).

Measures: C6, the width exponent of "align" on the scale experiment (linear net, deep ReLU MLP,
CNN; r on a grid in [0, 1/2]; several seeds), judged against `Parameterization.predict`
by the rule in
`richness.claims.rules`.
"""

from richness.claims._base import ClaimResult, Context
from richness.claims._slope_claim import slope_claim

CLAIM = "C6"
TITLE = "weight updates align with their inputs (Θ(1) alignment)"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (rule: richness.claims.rules)."""
    return slope_claim(ctx, CLAIM, TITLE)
