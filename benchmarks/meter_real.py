"""The richness meter on users' runs: uncentered cross-entropy on real data (issue 13 item 6).

One command: sweeps each case below with the library's own loop (r ∈ {0, ¼, ½}, STP gauge,
base width = the smallest width, SGD, uncentered unless stated), reads r̂ per r with
`estimate_store` (the width exponent of ‖Δh‖ pooled over hidden layers, seed bootstrap), and
prints a table and writes JSON:

  mlp-ce          ReLU MLP (depth 3) on digits, cross-entropy, uncentered: docs/meter.md's
                  reference recipe (base width 64, widths 128–1024, 4 seeds, 5 full-batch SGD
                  steps at η0 = 0.05) with the user's loss and no centering
  mlp-mse         the same with MSE on one-hot targets, uncentered (the biased case)
  mlp-mse-center  MSE on one-hot targets, centered (the reference of docs/meter.md)
  transformer-ce  the built-in Transformer (2 blocks, 4 heads) on WikiText-2 characters,
                  next-token cross-entropy per position, uncentered

    .venv/bin/python benchmarks/meter_real.py --json docs/meter_real.json

The WikiText-2 case needs ../shared/data/wikitext-2 (or --wikitext DIR) and is skipped, with a
line saying so, without it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from richness.analysis import load_frames
from richness.analysis.richness_meter import estimate_store, residual_normalized
from richness.sweep import parse_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]
WIKITEXT = ROOT / ".." / "shared" / "data" / "wikitext-2"
R = [0.0, 0.25, 0.5]
SEEDS = [0, 1, 2, 3]
STEPS = 5


def cases(wikitext: Path) -> dict[str, dict]:
    mlp = {
        "model": {"kind": "mlp", "depth": 3},
        "data": {"kind": "digits", "n_train": 256, "n_test": 0, "n_probe": 64},
        "widths": [128, 256, 512, 1024],
        "base_width": 64,
        "richness": R,
        "seeds": SEEDS,
        "optimizer": {"kind": "sgd", "lr": 0.05},
        "steps": STEPS,
        "measure": {"steps": [0, STEPS], "metrics": ["default"]},
    }
    out = {
        "mlp-ce": {**mlp, "loss": "cross_entropy", "center": False},
        "mlp-mse": {**mlp, "loss": "mse", "center": False},
        "mlp-mse-center": {**mlp, "loss": "mse", "center": True},
    }
    if wikitext.is_dir():
        out["transformer-ce"] = {
            "model": {"kind": "transformer", "depth": 2, "n_heads": 4},
            "data": {
                "kind": "text",
                "path": str(wikitext / "wiki.valid.txt"),
                "test_path": str(wikitext / "wiki.test.txt"),
                "seq_len": 32,
                "n_train": 64,
                "n_test": 0,
                "n_probe": 16,
            },
            "widths": [64, 128, 256, 512],
            "base_width": 32,
            "richness": R,
            "seeds": SEEDS,
            "optimizer": {"kind": "sgd", "lr": 0.1},
            "steps": STEPS,
            "loss": "cross_entropy",
            "center": False,
            "measure": {"steps": [0, STEPS], "metrics": ["default"]},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--wikitext", type=Path, default=WIKITEXT)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if not args.wikitext.is_dir():
        print(f"transformer-ce skipped: no WikiText-2 copy at {args.wikitext}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fields in cases(args.wikitext).items():
            start = time.perf_counter()
            db = Path(tmp) / f"{name}.sqlite"
            run_sweep(
                parse_spec({"name": name, **fields}), db, workers=args.workers, progress=False
            )
            corrected = residual_normalized(*load_frames(db))
            for est, fixed in zip(estimate_store(db), estimate_store(corrected), strict=True):
                rows.append(
                    {
                        "case": name,
                        "r_hat_normalized": fixed.r_hat,
                        "ci_normalized": [fixed.ci_low, fixed.ci_high],
                        "r": est.context["r"],
                        "r_hat": est.r_hat,
                        "ci_low": est.ci_low,
                        "ci_high": est.ci_high,
                        "verdict": est.verdict,
                        "widths": fields["widths"],
                        "seeds": len(SEEDS),
                        "steps": STEPS,
                    }
                )
            print(f"{name}: {time.perf_counter() - start:.0f} s")
    print("| case | r | r̂ | 95% interval | r̂ − r | verdict | r̂, residual-normalized | − r |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        low, high = row["ci_normalized"]
        print(
            f"| {row['case']} | {row['r']:g} | {row['r_hat']:+.3f} | "
            f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] | {row['r_hat'] - row['r']:+.3f} | "
            f"{row['verdict']} | {row['r_hat_normalized']:+.3f} [{low:+.3f}, {high:+.3f}] | "
            f"{row['r_hat_normalized'] - row['r']:+.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
