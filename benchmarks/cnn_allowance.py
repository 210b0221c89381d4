"""Does the scale experiment's CNN still need its +0.05 allowance when it is run to width 512?

Issue 14: the CNN's extra tolerance was added after its data were seen (4484a2f), with its widest
width (512) dropped. This runs the scale experiment's CNN (`richness.claims._scale`, full
protocol: r grid, 20 steps, centered SGD, lr 0.05, base width 32) at widths 32–512 with seeds
0–3 (the first four of the claims' eight; widths ≤ 256 are read back from the reproduction's
store when OUT is docs/reproduction), fits C1, C2, C4–C7's quantities on the largest four widths
(64–512, `asymptotic_widths`) and judges every row by the agreement rule at the claims' own
tolerance without the allowance, and with it.

    python benchmarks/cnn_allowance.py [OUT] [JSON]

Writes JSON (default docs/cnn_allowance.json) and prints a table: per claim, how many rows
agree, are undetermined and disagree, with and without the allowance.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from richness.analysis.agreement import agreement
from richness.claims._base import Context
from richness.claims._scale import fitted_slopes, scale_runs
from richness.claims.rules import rule_of

WIDTHS = [32, 64, 128, 256, 512]
SEEDS = [0, 1, 2, 3]
CLAIMS = ("C1", "C2", "C4", "C5", "C6", "C7")
ALLOWANCE = 0.05


def main(out: Path, path: Path) -> None:
    ctx = Context(out, scale="full", workers=2)
    runs, metrics, spec = scale_runs("cnn", ctx, widths=WIDTHS, seeds=SEEDS)
    result = {"widths": WIDTHS, "seeds": SEEDS, "fitted_on": WIDTHS[1:], "claims": {}}
    print(f"{'claim':6} {'tolerance':>9}  without allowance (a/u/d)  with +{ALLOWANCE} (a/u/d)")
    for claim in CLAIMS:
        rule = rule_of(claim)
        rows = []
        for step in rule["steps"]["full"]:
            rows += fitted_slopes(
                runs, metrics, spec, "cnn", rule["quantity"], step, layers=rule["layers"]
            )
        counts = {}
        for label, tol in (("without", rule["tolerance"]), ("with", rule["tolerance"] + ALLOWANCE)):
            verdicts = [
                agreement(r["slope"], r["ci_low"], r["ci_high"], r["predicted"], tol) for r in rows
            ]
            counts[label] = dict(Counter(verdicts))
            for r, v in zip(rows, verdicts, strict=True):
                r[f"agreement_{label}"] = v
        result["claims"][claim] = {
            "tolerance": rule["tolerance"],
            "counts": counts,
            "rows": [
                {
                    k: r.get(k)
                    for k in (
                        "r",
                        "layer",
                        "step",
                        "slope",
                        "ci_low",
                        "ci_high",
                        "predicted",
                        "agreement_without",
                        "agreement_with",
                    )
                }
                for r in rows
            ],
        }

        def abc(c: dict) -> str:
            return f"{c.get('agrees', 0)}/{c.get('undetermined', 0)}/{c.get('disagrees', 0)}"

        print(
            f"{claim:6} {rule['tolerance']:>9}  {abc(counts['without']):>24}  "
            f"{abc(counts['with']):>18}"
        )
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/reproduction"),
        Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/cnn_allowance.json"),
    )
