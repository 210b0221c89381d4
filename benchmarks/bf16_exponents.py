"""Check: bf16 training gives the same fitted width exponents as float32 on the demo grid.

Runs the built-in demo spec (ReLU MLP on digits, widths 128–1024, r ∈ {0, ¼, ½}, four seeds,
five full-batch SGD steps; src/richness/sweep/specs/demo.yaml) twice, in float32 and with
`precision: bf16` (bfloat16 matmuls in training, float32 master weights, loss and measurements),
fits every exponent (`richness.analysis.fit_exponents`, seed-bootstrap 95% intervals) and
compares them: a pair agrees when each slope lies inside the other's interval. The stores are
kept, so a rerun resumes.

Usage:
    python benchmarks/bf16_exponents.py --out bench-bf16 --json docs/bf16_exponents.json
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

QUANTITIES = ("h_rms", "dh", "dh_rms", "df", "max_ratio", "dW_op", "align", "lin_gap")


def main(argv: list[str] | None = None) -> int:
    from richness.analysis import fit_exponents
    from richness.sweep import Store, load_spec, run_sweep

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-bf16"), help="stores go here")
    parser.add_argument("--json", type=Path, help="write the comparison here")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = resources.files("richness.sweep") / "specs" / "demo.yaml"
    spec = load_spec(Path(str(path)))
    fits = {}
    for precision in ("full", "bf16"):
        db = args.out / f"demo-{precision}.sqlite"
        run_sweep(
            spec.model_copy(update={"precision": precision}),
            db,
            workers=args.workers,
            progress=False,
        )
        store = Store(db)
        frame = fit_exponents(store.runs(), store.metrics(), quantities=QUANTITIES)
        fits[precision] = frame.set_index(["quantity", "layer", "label", "step"])
    full, bf16 = fits["full"], fits["bf16"]
    rows = []
    for key in full.index.intersection(bf16.index):
        a, b = full.loc[key], bf16.loc[key]
        agree = bool(a.ci_low <= b.slope <= a.ci_high and b.ci_low <= a.slope <= b.ci_high)
        rows.append(
            {
                "quantity": key[0],
                "layer": key[1],
                "label": key[2],
                "step": int(key[3]),
                "fp32": float(a.slope),
                "fp32_ci": [float(a.ci_low), float(a.ci_high)],
                "bf16": float(b.slope),
                "bf16_ci": [float(b.ci_low), float(b.ci_high)],
                "agree": agree,
            }
        )
    rows.sort(key=lambda r: (r["quantity"], r["layer"], r["label"], r["step"]))
    print(
        f"{'quantity':<10} {'layer':<9} {'label':<7} {'step':>4} {'fp32 [95% CI]':>24} "
        f"{'bf16 [95% CI]':>24}  agree"
    )
    for r in rows:
        lo, hi = r["fp32_ci"]
        blo, bhi = r["bf16_ci"]
        print(
            f"{r['quantity']:<10} {r['layer']:<9} {r['label']:<7} {r['step']:>4} "
            f"{r['fp32']:+.3f} [{lo:+.3f}, {hi:+.3f}] {r['bf16']:+.3f} [{blo:+.3f}, {bhi:+.3f}]"
            f"  {'yes' if r['agree'] else 'NO'}"
        )
    agreed = sum(r["agree"] for r in rows)
    print(f"\n{agreed} of {len(rows)} fitted exponents agree within both intervals")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "agreed": agreed, "total": len(rows)}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
