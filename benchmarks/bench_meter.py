"""What measuring costs: a training step with and without `Meter.measure()` every step.

Grid: MLP 64 → n → n → 10 (ReLU, no bias, μP), full-batch SGD on 256 points, probe sets of
64 and 128 inputs (the sizes the claims use), widths 256, 1024 and 2048, float32 on the CPU.
For each metric group it reports the time per step with measurement every step and the
overhead relative to the plain step (the issue's goal: default metrics ≤ 10% at width 1024).
The last case per width, "passive", measures the default metrics on the training forward
itself (`Meter(model, x_train, passive=True)`, probes = the 256 training points, measured
between backward and step), so no extra forward runs.

    python benchmarks/bench_meter.py --json docs/bench_meter.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import richness as rn

GROUPS = {
    "default": ["default"],
    "weights": ["default", "weights"],
    "lin_gap": ["default", "lin_gap"],
}


def _step_fn(model, opt, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (model(x) - y).pow(2).sum(1).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(5):  # best of 5 blocks: robust to a busy machine
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def _print(row: dict) -> None:
    print(
        f"{row['width']:>6} {row['n_probe']:>5} {row['metrics']:>8} {row['plain_ms']:>9.2f} "
        f"{row['measured_ms']:>12.2f} {100 * row['overhead']:>8.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write results here")
    parser.add_argument("--widths", default="256,1024,2048")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"threads={args.threads}")
    header = ("width", "probe", "metrics", "plain ms", "measured ms", "overhead")
    print("{:>6} {:>5} {:>8} {:>9} {:>12} {:>9}".format(*header))
    for width in [int(w) for w in args.widths.split(",")]:
        torch.manual_seed(0)
        x, y = torch.randn(256, 64), torch.randn(256, 10)
        repeats = min(200, max(20, int(2e10 / (width * width * 256))))  # ~0.5 s blocks
        for n_probe in (64, 128):
            probe = torch.randn(n_probe, 64)
            model = rn.parameterize(rn.models.MLP(64, width, 10), rn.preset("mup", base_width=64))
            opt = rn.optimizer(model, lr=0.01)
            step = _step_fn(model, opt, x, y)
            plain = _time(step, repeats)
            for group, metrics in GROUPS.items():
                meter = rn.Meter(model, probe, metrics=metrics)

                def measured(step=step, meter=meter):
                    step()
                    meter.measure()

                t = _time(measured, repeats)
                row = {
                    "width": width,
                    "n_probe": n_probe,
                    "metrics": group,
                    "plain_ms": 1e3 * plain,
                    "measured_ms": 1e3 * t,
                    "overhead": t / plain - 1,
                }
                rows.append(row)
                _print(row)
        model = rn.parameterize(rn.models.MLP(64, width, 10), rn.preset("mup", base_width=64))
        opt = rn.optimizer(model, lr=0.01)
        plain = _time(_step_fn(model, opt, x, y), repeats)
        meter = rn.Meter(model, x, passive=True)

        def passive_step(model=model, opt=opt, meter=meter, x=x, y=y):
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * (model(x) - y).pow(2).sum(1).mean()
            loss.backward()
            meter.measure()
            opt.step()

        t = _time(passive_step, repeats)
        meter.close()
        row = {
            "width": width,
            "n_probe": len(x),
            "metrics": "passive",
            "plain_ms": 1e3 * plain,
            "measured_ms": 1e3 * t,
            "overhead": t / plain - 1,
        }
        rows.append(row)
        _print(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
