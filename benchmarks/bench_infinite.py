"""Benchmark: the infinite-width limit of a deep linear network against training one wide network.

Setup (C21's data, claims/c21_rich_limit.py SETUP): a linear teacher, 64 training and 64 test
points, d_in 16, 4 outputs, γ = 1, η0 = 0.5, full-batch SGD on the centered loss, float64.
  limit   `rn.infinite.deep_linear` for each (depth, r, steps) row, best of `--repeat` calls;
  network the width-8192 linear MLP of the same setup (depth 3, r = 1/2, 100 steps), trained
          by the library's loop (`richness.train.train` through claims/_limit.py, the test
          trajectory recorded at every step as C21 does), once, model building included.
Both run in this process with `--threads` intra-op threads (default 1: on a shared machine
OpenMP threads spin against other work). Also reported: the network's distance to the limit.

Usage:
    python benchmarks/bench_infinite.py --json docs/bench_infinite.json [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from richness.build import load_data
from richness.claims._limit import limit_config, relative_distance, train_finite
from richness.claims.c21_rich_limit import SETUP
from richness.infinite import deep_linear

LIMIT_ROWS = [  # (depth, r, steps)
    (3, 0.5, 100),
    (3, 0.25, 100),
    (2, 0.5, 100),
    (4, 0.5, 100),
    (3, 0.5, 10),
    (3, 0.5, 200),
]
NETWORK = {"width": 8192, "depth": 3, "r": 0.5, "steps": 100}


def _config(width: int, depth: int, r: float, steps: int):
    return limit_config(
        width=width, seed=0, r=r, data=SETUP["data"], depth=depth, lr=SETUP["lr"], steps=steps
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeat", type=int, default=3, help="limit calls per row (best kept)")
    parser.add_argument("--width", type=int, default=NETWORK["width"], help="network width")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_data(_config(64, 3, 0.5, 1))
    x, y, xs = data.x_train, data.y_train, data.x_test
    rows = []
    limits = {}
    for depth, r, steps in LIMIT_ROWS:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            lim = deep_linear(x, y, xs, depth=depth, r=r, gamma=SETUP["gamma"], lr=SETUP["lr"],
                              steps=steps)  # fmt: skip
            best = min(best, time.perf_counter() - start)
        limits[(depth, r, steps)] = lim
        rows.append(
            {
                "what": "limit",
                "depth": depth,
                "r": r,
                "steps": steps,
                "width": "inf",
                "seconds": round(best, 4),
                "gaussians_per_layer": list(lim.basis_size),
            }
        )
        print(f"limit   depth={depth} r={r:<5} steps={steps:<4} {best:8.3f} s  b={lim.basis_size}")
    net_cfg = _config(args.width, NETWORK["depth"], NETWORK["r"], NETWORK["steps"])
    start = time.perf_counter()
    net = train_finite(net_cfg)
    seconds = time.perf_counter() - start
    reference = limits[(NETWORK["depth"], NETWORK["r"], NETWORK["steps"])]
    distance = relative_distance(net.f_test, reference.f_test)
    rows.append(
        {
            "what": "network",
            "depth": NETWORK["depth"],
            "r": NETWORK["r"],
            "steps": NETWORK["steps"],
            "width": args.width,
            "seconds": round(seconds, 2),
            "distance_to_limit": round(distance, 5),
        }
    )
    print(
        f"network depth={NETWORK['depth']} r={NETWORK['r']:<5} steps={NETWORK['steps']:<4} "
        f"{seconds:8.1f} s  n={args.width}, distance to the limit {distance:.4f}"
    )
    limit_s = rows[0]["seconds"]
    ratio = seconds / limit_s
    print(f"\nthe limit is {ratio:,.0f}x faster than one width-{args.width} network")
    result = {
        "setup": {**SETUP, "steps": "per row", "n_test": len(xs), "d_in": x.shape[1]},
        "threads": args.threads,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()),
            "note": "shared: other engineers' jobs ran on the same two cores",
        },
        "rows": rows,
        "network_over_limit": round(ratio, 1),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
