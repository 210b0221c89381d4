"""C1 (THEORY.md §4): RMS coordinate of every hidden h_ℓ stays Θ(1).

Measures: C1, the width exponent of "h_rms" on the scale experiment (linear net, deep ReLU MLP,
CNN; r on a grid in [0, 1/2]; several seeds), judged against `Parameterization.predict`
by the rule in
`richness.claims.rules`.
"""

from richness.claims._base import ClaimResult, Context
from richness.claims._slope_claim import slope_claim

CLAIM = "C1"
TITLE = "RMS coordinate of every hidden h_ℓ stays Θ(1)"


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the experiment and returns the verdict (rule: richness.claims.rules)."""
    return slope_claim(ctx, CLAIM, TITLE)
