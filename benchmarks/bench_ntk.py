"""Benchmark: the empirical NTK, richness's methods against a naive loop and neural-tangents.

Each case (a model, a method) runs in a fresh subprocess so that its peak resident memory (max RSS,
from ``resource.getrusage``) is its own. All cases use the same float32 weights and inputs
(written once as .npz), time one full kernel K(x, x) of shape (N, N, O, O) after one warm-up call
(excluded; for neural-tangents it includes the ``jit`` compilation), and save K, so the table
also checks that every method computes the same kernel.

Models (NTK parameterization: W ~ N(0, 1), forward W_std/√fan_in · W h + b_std · b):
  mlp-512, mlp-2048  depth 3 (Dense-ReLU-Dense-ReLU-Dense), d_in 64, 10 outputs, 256 inputs
  cnn                Conv3x3(32)-ReLU-Conv3x3(32)-ReLU-GlobalAvgPool-Dense(10), 3x16x16, 256 inputs
Methods:
  naive                for each input, for each output: torch.autograd.grad, then J Jᵀ
  richness-<method>    richness.measure.empirical_ntk(model, x, method=...) for each NtkMethod
  nt-<implementation>  neural_tangents.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                       implementation=...) under jax.jit, block_until_ready

neural-tangents runs in its own environment, PEERS/nt/bin/python (``benchmarks/_peers.py``:
``--peers DIR``, $RICHNESS_PEERS or ../peers; ``bash ../shared/peers/setup.sh ../peers`` builds
it); pass ``--nt-python ''`` to skip those rows.

Usage:
    python benchmarks/bench_ntk.py --json docs/bench_ntk.json [--max-load 1.5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _peers import SETUP, peer_python

N_INPUTS = 256
N_OUT = 10
B_STD = 1.0
MODELS: dict[str, dict] = {
    "mlp-512": {"kind": "mlp", "d_in": 64, "width": 512, "depth": 3},
    "mlp-2048": {"kind": "mlp", "d_in": 64, "width": 2048, "depth": 3},
    "cnn": {"kind": "cnn", "channels": 3, "size": 16, "width": 32},
}
TORCH_METHODS = ["naive", "richness-jacobian", "richness-ntk_vp", "richness-gram"]
NT_METHODS = {"nt-jacobian": 1, "nt-ntk_vp": 2, "nt-structured": 3}


# ----------------------------------------------------------------------------- weights and inputs


def layer_shapes(spec: dict) -> list[tuple[str, tuple[int, ...], int]]:
    """Returns (kind, torch weight shape, fan_in) per layer; kind in {"dense", "conv"}."""
    if spec["kind"] == "mlp":
        dims = [spec["d_in"]] + [spec["width"]] * (spec["depth"] - 1) + [N_OUT]
        return [("dense", (o, i), i) for i, o in itertools.pairwise(dims)]
    c, w = spec["channels"], spec["width"]
    return [
        ("conv", (w, c, 3, 3), c * 9),
        ("conv", (w, w, 3, 3), w * 9),
        ("dense", (N_OUT, w), w),
    ]


def input_shape(spec: dict) -> tuple[int, ...]:
    """Returns the torch input shape (N, ...): (N, d) or (N, C, H, W)."""
    if spec["kind"] == "mlp":
        return (N_INPUTS, spec["d_in"])
    return (N_INPUTS, spec["channels"], spec["size"], spec["size"])


def forward_flops(spec: dict) -> int:
    """Returns the multiply-add flops (2 per weight use) of one example's forward pass."""
    positions = spec.get("size", 1) ** 2  # 'same' convolutions keep the image size
    return sum(
        2 * int(np.prod(shape)) * (positions if kind == "conv" else 1)
        for kind, shape, _ in layer_shapes(spec)
    )


def n_params(spec: dict) -> int:
    return sum(int(np.prod(shape)) + shape[0] for _, shape, _ in layer_shapes(spec))


def write_data(spec: dict, path: Path, seed: int = 0) -> None:
    """Writes weights w<i>, biases b<i> (N(0, 1), torch layouts) and inputs x, all float32."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (_, shape, _) in enumerate(layer_shapes(spec)):
        arrays[f"w{i}"] = rng.standard_normal(shape).astype(np.float32)
        arrays[f"b{i}"] = rng.standard_normal(shape[0]).astype(np.float32)
    arrays["x"] = rng.standard_normal(input_shape(spec)).astype(np.float32)
    np.savez(path, **arrays)


# ----------------------------------------------------------------------------- workers


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def time_calls(fn, budget_s: float, compiles: bool, max_repeats: int = 3) -> list[float]:
    """Times up to max_repeats calls of fn within budget_s, after one warm-up call.

    Without compilation (``compiles=False``) a first call longer than budget_s/4 is kept as the
    measurement: warm-up effects are negligible at that scale and a second call would double the
    benchmark's run time. With compilation (jax.jit) the first call is always discarded.
    """
    times: list[float] = []
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if not compiles and first > budget_s / 4:
        return [first]
    while len(times) < max_repeats and sum(times) < budget_s:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def torch_worker(case: dict) -> dict:
    """Runs one torch case; returns timings and memory; saves the kernel."""
    import torch
    from torch import nn
    from torch.nn.utils import parametrize

    from richness.measure import empirical_ntk

    torch.manual_seed(0)
    spec, data = MODELS[case["model"]], np.load(case["data"])

    class Multiplier(nn.Module):
        def __init__(self, g: float) -> None:
            super().__init__()
            self.register_buffer("g", torch.tensor(g))

        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return self.g * w

    layers: list[nn.Module] = []
    for i, (kind, shape, fan_in) in enumerate(layer_shapes(spec)):
        if kind == "conv":
            layer: nn.Module = nn.Conv2d(shape[1], shape[0], 3, padding=1)
        else:
            if i > 0 and layer_shapes(spec)[i - 1][0] == "conv":
                layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            layer = nn.Linear(shape[1], shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(data[f"w{i}"]))
            layer.bias.copy_(torch.from_numpy(data[f"b{i}"]))
        parametrize.register_parametrization(layer, "weight", Multiplier(fan_in**-0.5))
        parametrize.register_parametrization(layer, "bias", Multiplier(B_STD))
        layers.append(layer)
        if i < len(layer_shapes(spec)) - 1:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    x = torch.from_numpy(data["x"])

    if case["method"] == "naive":
        params = list(model.parameters())

        def compute() -> torch.Tensor:
            rows = []
            for i in range(x.shape[0]):
                out = model(x[i : i + 1])[0]  # (O,)
                for o in range(out.shape[0]):
                    grads = torch.autograd.grad(out[o], params, retain_graph=o < out.shape[0] - 1)
                    rows.append(torch.cat([g.reshape(-1) for g in grads]))
            jac = torch.stack(rows)  # (N O, P)
            n, n_out = x.shape[0], out.shape[0]
            return (jac @ jac.T).reshape(n, n_out, n, n_out).permute(0, 2, 1, 3)
    else:
        method = case["method"].removeprefix("richness-")

        def compute() -> torch.Tensor:
            return empirical_ntk(model, x, method=method, chunk_size=case.get("chunk_size"))

    base = peak_rss_mb()
    result: dict = {}

    def call() -> None:
        result["k"] = compute()

    times = time_calls(call, case["budget_s"], compiles=False)
    np.save(case["out"], result["k"].numpy())
    return {"times": times, "base_rss_mb": base, "peak_rss_mb": peak_rss_mb()}


def nt_worker(case: dict) -> dict:
    """Runs one neural-tangents case (in the nt environment); saves the kernel."""
    import jax
    import neural_tangents as nt
    from neural_tangents import stax

    spec, data = MODELS[case["model"]], np.load(case["data"])
    shapes = layer_shapes(spec)
    layers, params = [], []
    for i, (kind, shape, _) in enumerate(shapes):
        w, b = data[f"w{i}"], data[f"b{i}"]
        if kind == "conv":
            layers.append(stax.Conv(shape[0], (3, 3), padding="SAME", W_std=1.0, b_std=B_STD))
            params.append((w.transpose(2, 3, 1, 0), b.reshape(1, 1, 1, -1)))  # HWIO, NHWC
        else:
            if i > 0 and shapes[i - 1][0] == "conv":
                layers.append(stax.GlobalAvgPool())
                params.append(())
            layers.append(stax.Dense(shape[0], W_std=1.0, b_std=B_STD))
            params.append((w.T, b.reshape(1, -1)))
        if i < len(shapes) - 1:
            layers.append(stax.Relu())
            params.append(())
    _, apply_fn, _ = stax.serial(*layers)
    x = data["x"] if spec["kind"] == "mlp" else data["x"].transpose(0, 2, 3, 1)  # NHWC
    params = jax.tree_util.tree_map(jax.numpy.asarray, params)
    x = jax.numpy.asarray(x)
    ntk_fn = jax.jit(
        nt.empirical_ntk_fn(
            apply_fn, trace_axes=(), vmap_axes=0, implementation=NT_METHODS[case["method"]]
        )
    )
    base = peak_rss_mb()
    result: dict = {}

    def call() -> None:
        result["k"] = ntk_fn(x, None, params).block_until_ready()

    times = time_calls(call, case["budget_s"], compiles=True)
    np.save(case["out"], np.asarray(result["k"]))
    return {
        "times": times,
        "base_rss_mb": base,
        "peak_rss_mb": peak_rss_mb(),
        "versions": f"jax {jax.__version__}, neural-tangents {nt.__version__}",
    }


# ----------------------------------------------------------------------------- driver


def skip_reason(model: str, method: str, ram_gb: float, gflops: float, timeout: float) -> str:
    """Returns why a case cannot finish here ("" if it can), from its Jacobian's size and flops."""
    spec = MODELS[model]
    p = n_params(spec)
    rows = N_INPUTS * N_OUT
    jac_gb = rows * p * 4 / 1e9
    contraction_s = 2 * rows * rows * p / (gflops * 1e9)
    if method in ("naive", "nt-jacobian") and jac_gb > 0.6 * ram_gb:
        return f"J needs {jac_gb:.0f} GB > 60% of {ram_gb:.0f} GB RAM"
    if method in ("naive", "nt-jacobian", "richness-jacobian") and contraction_s > timeout:
        return f"J Jᵀ alone is {2 * rows * rows * p / 1e12:.0f} TFLOP ≈ {contraction_s:.0f} s"
    if method in ("richness-ntk_vp", "nt-ntk_vp"):
        # one forward-mode pass (≈ 3 forwards) over all inputs per Jacobian row; ×2 for the
        # efficiency measured on mlp-512 (8 s measured for 4.9 s at the peak rate)
        jvp_s = 2 * rows * 3 * N_INPUTS * forward_flops(spec) / (gflops * 1e9)
        if jvp_s > timeout:
            return f"{rows} forward-mode passes ≈ {jvp_s:.0f} s"
    return ""


def matmul_gflops() -> float:
    """Measures this machine's float32 matmul rate (numpy), for the skip estimates."""
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    a @ a
    start = time.perf_counter()
    a @ a
    return 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def wait_for_load(max_load: float | None, max_wait: float) -> float:
    """Waits (up to max_wait s) until the 1-minute load average is below max_load; returns it.

    On a shared machine other processes slow every case down by different amounts; waiting for
    a quiet moment, and recording the load each case started at, keeps the table honest.
    """
    deadline = time.perf_counter() + max_wait
    while max_load is not None and os.getloadavg()[0] >= max_load:
        if time.perf_counter() > deadline:
            break
        time.sleep(5.0)
    return os.getloadavg()[0]


def run_case(python: str, case: dict, timeout: float, omp_passive: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    if omp_passive:
        # torch's OpenMP threads spin between parallel regions; when other processes share the
        # cores, that spinning makes short ops up to 6x slower (measured on this machine, load 5).
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [python, __file__, "--worker", json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["?"]
        errors = [line for line in lines if "Error" in line]
        message = (errors or lines)[-1]
        if "RESOURCE_EXHAUSTED" in message or "MemoryError" in message:
            message = "out of memory: " + message.split(":")[-1].strip()
        return {"error": f"exit {proc.returncode}: {message[:100]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--peers", help="the peers' environments (default: see _peers.py)")
    parser.add_argument("--nt-python", help="neural-tangents' interpreter (PEERS/nt); '' skips")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--budget", type=float, default=20.0, help="timed seconds per case")
    parser.add_argument(
        "--max-load", type=float, help="before each case wait until the load average is below"
    )
    parser.add_argument("--max-wait", type=float, default=120.0, help="seconds, for --max-load")
    parser.add_argument(
        "--omp-active",
        action="store_true",
        help="leave OMP_WAIT_POLICY alone (default: PASSIVE in every worker, see run_case)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        case = json.loads(args.worker)
        out = nt_worker(case) if case["method"].startswith("nt-") else torch_worker(case)
        print(json.dumps(out))
        return 0

    nt_python = args.nt_python
    if nt_python is None:
        nt_python = str(peer_python("nt", args.peers))
    nt_note = ""
    if nt_python and not Path(nt_python).exists():
        nt_note = f"{nt_python} not found: run {SETUP}"
        nt_python = ""
    methods = TORCH_METHODS + (list(NT_METHODS) if nt_python else [])
    if args.methods:
        methods = [m for m in methods if m in args.methods.split(",")]
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    wait_for_load(args.max_load, args.max_wait)
    gflops = matmul_gflops()
    rows: list[dict] = []
    load_before = os.getloadavg()
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            data = Path(tmp) / f"{model}.npz"
            write_data(MODELS[model], data)
            kernels: dict[str, np.ndarray] = {}
            for method in methods:
                row = {"model": model, "method": method, "params": n_params(MODELS[model])}
                reason = skip_reason(model, method, ram_gb, gflops, args.timeout)
                if reason:
                    row["skipped"] = reason
                    rows.append(row)
                    print(f"{model:9s} {method:20s} skipped: {reason}", flush=True)
                    continue
                out = Path(tmp) / f"{model}-{method}.npy"
                case = {"model": model, "method": method, "data": str(data), "out": str(out)}
                case["budget_s"] = args.budget
                if method == "richness-ntk_vp":
                    case["chunk_size"] = 16  # x2 examples pushed at once (bounds memory)
                python = nt_python if method.startswith("nt-") else sys.executable
                row["load"] = wait_for_load(args.max_load, args.max_wait)
                result = run_case(python, case, args.timeout, omp_passive=not args.omp_active)
                row.update(result)
                if "times" in result:
                    row["seconds"] = float(np.median(result["times"]))
                    row["delta_rss_mb"] = result["peak_rss_mb"] - result["base_rss_mb"]
                    kernels[method] = np.load(out)
                    out.unlink()
                rows.append(row)
                shown = f"{row['seconds']:.3f} s" if "seconds" in row else row.get("error")
                print(f"{model:9s} {method:20s} {shown}", flush=True)
            reference = kernels.get("richness-jacobian", kernels.get("richness-gram"))
            for row in rows:
                if row["model"] == model and row["method"] in kernels and reference is not None:
                    k = kernels[row["method"]]
                    row["max_rel_diff"] = float(
                        np.abs(k - reference).max() / np.abs(reference).max()
                    )
    total = time.perf_counter() - start_all
    load_after = os.getloadavg()

    for model in args.models.split(","):
        nt_times = [
            r["seconds"]
            for r in rows
            if r["model"] == model and r["method"].startswith("nt-") and "seconds" in r
        ]
        best = min(nt_times) if nt_times else None
        for r in rows:
            if r["model"] == model and "seconds" in r and best is not None:
                r["vs_nt_best"] = r["seconds"] / best
    print_table(rows)
    print(
        f"matmul rate {gflops:.0f} GFLOP/s (float32), {os.cpu_count()} CPUs, total {total:.0f} s, "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    if nt_note:
        print(f"neural-tangents skipped: {nt_note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "n_inputs": N_INPUTS,
            "n_outputs": N_OUT,
            "dtype": "float32",
            "models": MODELS,
            "cpus": os.cpu_count(),
            "matmul_gflops": gflops,
            "nt_note": nt_note,
            "rows": rows,
            "total_seconds": total,
            "load_average": {"before": load_before, "after": load_after},
            "omp_wait_policy": "default" if args.omp_active else "PASSIVE",
            "torch_threads": "torch default (one per core)",
        }
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


def print_table(rows: list[dict]) -> None:
    header = ["model", "params", "method", "seconds", "× nt best", "peak RSS MB", "Δ RSS MB"]
    header += ["max rel diff", "load", "note"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r["model"],
                f"{r['params']:,}",
                r["method"],
                f"{r['seconds']:.3f}" if "seconds" in r else "—",
                f"{r['vs_nt_best']:.2f}" if "vs_nt_best" in r else "—",
                f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "—",
                f"{r['delta_rss_mb']:.0f}" if "delta_rss_mb" in r else "—",
                f"{r['max_rel_diff']:.1e}" if "max_rel_diff" in r else "—",
                f"{r['load']:.1f}" if "load" in r else "—",
                r.get("skipped", r.get("error", "")),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    sys.exit(main())
