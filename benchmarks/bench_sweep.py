"""Benchmark: one width × richness × seed sweep, richness's runner against a plain loop and mup.

The grid (issue 8): an MLP of depth 3 (64 → n → n → 10, no bias, ReLU) on scikit-learn's digits
(1024 training images, standardized, one-hot targets), widths 128, 256, 512, 1024, 2048, four
seeds, 20 SGD steps on random batches of 256, MSE. Runners, side by side in one run:
(plain and mup get one untimed warm-up member per width first; richness's timings include its
workers' own start-up)

  richness-fp32  `richness.sweep.run_sweep` on the grid × five r ∈ {0, ⅛, ¼, ⅜, ½} (STP gauge,
                 base width 128): all cores as 1-thread worker processes, members that share a
                 width trained as vectorized ensembles, the Meter's default metrics (h_rms, dh,
                 dh_rms, f0, df on 64 probe inputs) measured at EVERY step, rows into SQLite.
  richness-bf16  the same with `precision: bf16` (bfloat16 matmuls, float32 weights, loss and
                 measurements).
  plain          the loop a user would write: nn.Sequential, torch.optim.SGD, one member after
                 another in one process with torch's default threads, measuring nothing.
  mup            microsoft/mup's `get_coord_data` (cuda=False, MuReadout, set_base_shapes at
                 base width 128, lossfn="mse", nsteps=20, nseeds=4, one fixed batch of 256):
                 its coordinate check records every module's output each step. It runs in its
                 own environment, PEERS/mup/bin/python (`benchmarks/_peers.py`: `--peers DIR`,
                 $RICHNESS_PEERS or ../peers; `bash ../shared/peers/setup.sh ../peers` builds
                 it); `--mup-python ''` skips it.

Reported per width and in total: seconds per member trained, peak memory, achieved GFLOP/s
(training FLOPs only, 6 · batch · parameters per step; measurements are not counted) and its
fraction of the machine's float32 and bfloat16 matmul peaks (2048³ products, torch's default
threads, measured first). For richness the per-width seconds are worker-seconds of that width's
ensembles divided by the number of workers (all run at once, balanced by `jobs_of`); the totals
are wall-clock for the whole grid, process start-up and store included. Peak memory is the
largest resident set (max RSS) of one process training that width (for richness: one worker
training that width's largest job), each in a fresh process.

Usage:
    python benchmarks/bench_sweep.py --json docs/bench_sweep.json [--max-load 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _peers import SETUP, peer_python

WIDTHS = (128, 256, 512, 1024, 2048)
SEEDS = 4
STEPS = 20
BATCH = 256
RICHNESS = (0.0, 0.125, 0.25, 0.375, 0.5)
BASE_WIDTH = 128
D_IN, D_OUT = 64, 10
LR = 0.05
N_TRAIN, N_PROBE = 1024, 64
RUNNERS = ("richness-fp32", "richness-bf16", "plain", "mup")


def training_flops(width: int) -> float:
    """6 · batch · parameters per step (forward 2, backward 4), times the steps: one member."""
    params = D_IN * width + width * width + width * D_OUT
    return 6.0 * BATCH * params * STEPS


# ----------------------------------------------------------------------------------- the peaks


def matmul_peaks() -> dict[str, float]:
    """GFLOP/s of a 2048³ float32 and bfloat16 matmul, best of 5 after a warm-up."""
    import torch

    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(2048, 2048, dtype=dtype)
        b = torch.randn(2048, 2048, dtype=dtype)
        a @ b
        best = min(_timed(lambda a=a, b=b: a @ b) for _ in range(5))
        peaks[name] = 2 * 2048**3 / best / 1e9
    return peaks


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------- the data


def digits_arrays() -> dict[str, object]:
    """The training inputs and one-hot targets every runner uses (richness's digits split)."""
    from richness.data import load_dataset

    data = load_dataset("digits", n_train=N_TRAIN, n_test=0, n_probe=N_PROBE, seed=0)
    return {"x": data.x_train.numpy(), "y": data.y_train.numpy()}


# ----------------------------------------------------------------------------- richness runner


def sweep_spec(precision: str, widths=WIDTHS) -> dict:
    return {
        "name": f"bench-{precision}",
        "model": {"kind": "mlp", "depth": 3, "activation": "relu", "bias": False},
        "data": {"kind": "digits", "n_train": N_TRAIN, "n_test": 0, "n_probe": N_PROBE},
        "widths": list(widths),
        "richness": list(RICHNESS),
        "gauges": ["stp"],
        "base_width": BASE_WIDTH,
        "seeds": list(range(SEEDS)),
        "optimizer": {"kind": "sgd", "lr": LR},
        "steps": STEPS,
        "batch_size": BATCH,
        "center": False,
        "measure": {"steps": list(range(STEPS + 1)), "metrics": ["default"]},
        "precision": precision,
    }


def richness_grid(precision: str, workers: int, widths=WIDTHS) -> dict:
    """Runs the grid with run_sweep; per-width worker-seconds and the total wall time."""
    from richness.sweep import parse_spec, run_sweep

    seconds: dict[int, float] = {w: 0.0 for w in widths}
    statuses: dict[str, int] = {}

    def on_outcome(config, outcome):
        seconds[config.width] += outcome.seconds
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

    spec = parse_spec(sweep_spec("full" if precision == "fp32" else precision, widths))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(
            spec, Path(tmp) / "runs.sqlite", workers=workers, progress=False, on_outcome=on_outcome
        )
        total = time.perf_counter() - start
    members = SEEDS * len(RICHNESS)
    per_member = {w: s / members / workers for w, s in seconds.items()}
    return {
        "per_member": per_member,
        "total": total,
        "members": members * len(widths),
        "statuses": statuses,
    }


def richness_memory(precision: str, width: int, workers: int) -> float:
    """Max RSS (MiB) of this process after training the width's largest job."""
    from richness.sweep import expand, parse_spec
    from richness.sweep.runner import jobs_of
    from richness.train import run_many

    spec = parse_spec(sweep_spec("full" if precision == "fp32" else precision))
    configs = expand(spec)
    total_jobs = jobs_of(configs, workers)
    job = max((j for j in total_jobs if j[0].width == width), key=len)
    outcomes = run_many(job)
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------- plain loop


def plain_width(width: int, arrays: dict) -> float:
    """Seconds to train the width's SEEDS members one after another, as a user would."""
    import torch
    from torch import nn

    x = torch.as_tensor(arrays["x"])
    y = torch.as_tensor(arrays["y"])
    start = 0.0
    for seed in range(-1, SEEDS):  # seed -1: a warm-up member, not timed
        if seed == 0:
            start = time.perf_counter()
        torch.manual_seed(max(seed, 0))
        model = nn.Sequential(
            nn.Linear(D_IN, width, bias=False),
            nn.ReLU(),
            nn.Linear(width, width, bias=False),
            nn.ReLU(),
            nn.Linear(width, D_OUT, bias=False),
        )
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        batches = torch.Generator().manual_seed(max(seed, 0))
        for _ in range(STEPS):
            index = torch.randperm(len(x), generator=batches)[:BATCH]
            loss = 0.5 * (model(x[index]) - y[index]).pow(2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    return time.perf_counter() - start


# ------------------------------------------------------------------------------ mup coord check


def mup_width(width: int, arrays: dict, seeds: int = SEEDS) -> float:
    """Seconds of mup's get_coord_data for one width (seeds × 20 steps), cuda=False."""
    import torch
    from mup import MuReadout, set_base_shapes
    from mup.coord_check import get_coord_data
    from torch import nn

    def mlp(n: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(D_IN, n, bias=False),
            nn.ReLU(),
            nn.Linear(n, n, bias=False),
            nn.ReLU(),
            MuReadout(n, D_OUT, bias=False),
        )

    def lazy():
        return set_base_shapes(mlp(width), mlp(BASE_WIDTH), delta=mlp(2 * BASE_WIDTH))

    x = torch.as_tensor(arrays["x"][:BATCH])
    y = torch.as_tensor(arrays["y"][:BATCH]).argmax(1)  # mup's "mse" one-hot encodes labels
    get_coord_data(
        {width: lazy},
        [(x, y)],
        optimizer="sgd",
        lr=LR,
        nsteps=2,
        nseeds=1,
        cuda=False,
        lossfn="mse",
        flatten_input=True,
    )  # warm-up, not timed
    start = time.perf_counter()
    get_coord_data(
        {width: lazy},
        [(x, y)],
        optimizer="sgd",
        lr=LR,
        nsteps=STEPS,
        nseeds=seeds,
        cuda=False,
        lossfn="mse",
        flatten_input=True,
    )
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------- processes


def worker(case: dict) -> dict:
    """One case in this (fresh) process: time and/or peak memory."""
    import numpy as np

    arrays = dict(np.load(case["arrays"]))
    runner, width = case["runner"], case["width"]
    if runner == "plain":
        seconds = plain_width(width, arrays)
    elif runner == "mup":
        seconds = mup_width(width, arrays)
    else:
        precision = runner.split("-")[1]
        return {"peak_mib": richness_memory(precision, width, case["workers"])}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak}


def run_case(python: str, case: dict, timeout: float = 900.0) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    if case["runner"] in ("plain", "mup"):
        # as a user runs them: torch's default threads and OpenMP's default (spinning) waits,
        # which suit one multi-threaded process on an otherwise idle machine
        env.pop("OMP_WAIT_POLICY", None)
    cmd = [python, __file__, "--worker", json.dumps(case)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["?"]
        return {"error": f"exit {proc.returncode}: {lines[-1][:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_for_quiet(max_load: float | None, max_wait: float) -> float:
    deadline = time.perf_counter() + max_wait
    while max_load is not None and os.getloadavg()[0] >= max_load:
        if time.perf_counter() > deadline:
            break
        time.sleep(5.0)
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--peers", help="the peers' environments (default: see _peers.py)")
    parser.add_argument("--mup-python", help="mup's interpreter (default: PEERS/mup); '' skips")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-load", type=float, help="wait until the load average is below")
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds, for --max-load")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="a subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    import numpy as np

    mup_python = args.mup_python
    if mup_python is None:
        mup_python = str(peer_python("mup", args.peers))
    if mup_python and not Path(mup_python).exists():
        print(f"{mup_python} not found ({SETUP}): no mup rows")
        mup_python = ""
    load = wait_for_quiet(args.max_load, args.max_wait)
    peaks = matmul_peaks()
    print(
        f"load {load:.2f}; matmul peaks (2048³, {os.cpu_count()} cores): "
        f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s"
    )
    results: dict[str, dict[int, dict]] = {r: {} for r in RUNNERS}
    totals: dict[str, float] = {}
    members: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        arrays_path = str(Path(tmp) / "digits.npz")
        np.savez(arrays_path, **digits_arrays())
        for runner in RUNNERS:
            if runner == "mup" and not mup_python:
                continue
            python = mup_python if runner == "mup" else sys.executable
            if runner.startswith("richness"):
                grid = richness_grid(runner.split("-")[1], args.workers, widths)
                if set(grid["statuses"]) != {"done"}:
                    print(f"{runner}: runs did not all finish: {grid['statuses']}")
                totals[runner], members[runner] = grid["total"], grid["members"]
                for width in widths:
                    results[runner][width] = {"seconds_per_member": grid["per_member"][width]}
            else:
                totals[runner], members[runner] = 0.0, SEEDS * len(widths)
            for width in widths:
                case = {
                    "runner": runner,
                    "width": width,
                    "arrays": arrays_path,
                    "workers": args.workers,
                }
                out = run_case(python, case)
                if "error" in out:
                    print(f"{runner} n={width}: {out['error']}")
                    continue
                row = results[runner].setdefault(width, {})
                row["peak_mib"] = out["peak_mib"]
                if "seconds" in out:
                    row["seconds_per_member"] = out["seconds"] / SEEDS
                    totals[runner] += out["seconds"]
    rows = []
    for runner, by_width in results.items():
        for width, row in by_width.items():
            if "seconds_per_member" not in row:
                continue
            gflops = training_flops(width) / row["seconds_per_member"] / 1e9
            rows.append(
                {
                    "runner": runner,
                    "width": width,
                    "gflops": gflops,
                    "fraction_fp32_peak": gflops / peaks["fp32"],
                    "fraction_bf16_peak": gflops / peaks["bf16"],
                    **row,
                }
            )
    print_table(rows, totals, members, widths)
    print_goals(rows, totals, members, widths)
    if args.json:
        payload = {
            "peaks": peaks,
            "rows": rows,
            "total_seconds": totals,
            "members": members,
            "load": load,
            "grid": {
                "widths": widths,
                "seeds": SEEDS,
                "steps": STEPS,
                "batch": BATCH,
                "richness": RICHNESS,
                "workers": args.workers,
            },
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def print_table(rows: list[dict], totals: dict, members: dict, widths) -> None:
    print(
        f"\n{'runner':<14} {'width':>6} {'s/member':>9} {'GFLOP/s':>8} {'%fp32':>6} "
        f"{'%bf16':>6} {'peak MiB':>9}"
    )
    for row in rows:
        print(
            f"{row['runner']:<14} {row['width']:>6} {row['seconds_per_member']:>9.4f} "
            f"{row['gflops']:>8.1f} {100 * row['fraction_fp32_peak']:>5.0f}% "
            f"{100 * row['fraction_bf16_peak']:>5.0f}% {row.get('peak_mib', float('nan')):>9.0f}"
        )
    for runner, total in totals.items():
        if not total:
            continue
        flops = sum(training_flops(w) for w in widths) * members[runner] / len(widths)
        print(
            f"{runner:<14} {'total':>6} {total / members[runner]:>9.4f} "
            f"{flops / total / 1e9:>8.1f}   ({members[runner]} members, {total:.1f} s)"
        )


def print_goals(rows: list[dict], totals: dict, members: dict, widths) -> None:
    """Issue 8's goals as ratios of throughput (members per second) in this one run."""
    by = {(r["runner"], r["width"]): r["seconds_per_member"] for r in rows}
    print("\ngoals (throughput ratios, same run):")
    for width in widths:
        if ("plain", width) in by and ("richness-fp32", width) in by:
            ratio = by["plain", width] / by["richness-fp32", width]
            goal = 0.9 if width >= 512 else 1.5
            print(f"  fp32 vs plain, n={width}: {ratio:.2f}x (goal ≥ {goal}x)")
    if ("plain", 2048) in by and ("richness-bf16", 2048) in by:
        ratio = by["plain", 2048] / by["richness-bf16", 2048]
        print(f"  bf16 vs plain fp32, n=2048: {ratio:.2f}x (goal ≥ 2.5x)")
    if "mup" in totals and "richness-fp32" in totals:
        per_ours = totals["richness-fp32"] / members["richness-fp32"]
        per_mup = totals["mup"] / members["mup"]
        print(
            f"  grid vs mup coord check, per member: {per_mup / per_ours:.2f}x; whole grids: "
            f"{totals['mup']:.1f} s for {members['mup']} members vs "
            f"{totals['richness-fp32']:.1f} s for {members['richness-fp32']} (goal ≥ 2x)"
        )


if __name__ == "__main__":
    sys.exit(main())
