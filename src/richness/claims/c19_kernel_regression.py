"""C19 (THEORY.md §3, r = 0; the blog: "converges to the kernel regression predictor"): lazy
networks trained to convergence are infinite-width NTK kernel regression.

Measures: C19. C12 compares early dynamics (30 steps); this claim trains to near convergence.
Setup as C12 (claims/c12_kernel_limit.py, where the LR and the NTK normalization are matched to
the library's tables): a ReLU MLP 64 → n → n → 10 (depth 3, no biases) in the absolute NTK
parameterization (`preset("ntp")`, base_width None: neural-tangents' ``Dense(parameterization=
"ntk")``, w_std = 1, b_std = 0, so `rn.infinite_ntk(depth=3)` is its kernel), full-batch
gradient descent on L = ½·mean_i ‖f(x_i) − f0(x_i) − y_i‖² (centered), digits (64 training,
128 test points, one-hot targets), float64, through `richness.train.train`. The LR is small,
η = C_LR/λ_max(K/N) with C_LR = 0.5, and T = 2000 steps: the infinitely wide network's own
residual then decays by (1 − C_LR/κ)^T on its slowest mode (κ = λ_max/λ_min ≈ 107: e^{−9}).

Target: the kernel-regression predictor f_∞(X*) = Θ(X*, X) Θ(X, X)⁻¹ y
(`rn.kernel_regression` on `rn.infinite_ntk`). Distance per run: ‖f_net(X*) − f_∞(X*)‖/‖f_∞‖
on the test set. The trained network is kernel regression with its own empirical NTK (up to
the NTK's movement during training), whose fluctuations are O(n^{−1/2}): predicted slope −1/2.

Verdict (RULE, written before the claim was first run), all of:
  1. the setup converges: the infinite network after T steps is within 1e-3 of f_∞
     (relative), and every finite run's training loss fell to ≤ 1e-3 of its initial loss;
  2. the slope of log(seed-mean distance) on log n (all widths, seed-bootstrap 95%
     interval) agrees with −1/2 at tolerance 0.2 (`richness.analysis.agreement`);
  3. the seed-mean distance at the widest width is at most the bound (quick 0.35 at n = 512,
     full 0.2 at n = 2048).
Negative control: `Context.substitute="mup"` (μP at the same LR: at init its function-space
kernel is NTP's) must fail: its features move, so it does not converge to f_∞.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from richness.analysis.agreement import agreement
from richness.build import build_optimizer, setup
from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims._limit import seed_slope
from richness.claims.c12_kernel_limit import kernel_dynamics
from richness.config import RunConfig
from richness.measure import empirical_ntk, infinite_ntk, kernel_regression
from richness.sweep.store import config_hash
from richness.train import train

__all__ = ["CLAIM", "RULE", "SETUP", "TITLE", "run"]

CLAIM = "C19"
TITLE = "r = 0 trained to convergence: test predictions → infinite-width NTK kernel regression"
SETUP: dict[str, Any] = {
    "model": {"kind": "mlp", "depth": 3, "activation": "relu", "bias": False},
    "data": {"kind": "digits", "n_train": 64, "n_test": 128, "n_probe": 8, "seed": 0},
    "preset": "ntp",
    "c_lr": 0.5,
    "steps": 2000,
    "widths": {"quick": [128, 256, 512], "full": [128, 256, 512, 1024, 2048]},
    "seeds": {"quick": [0, 1, 2], "full": [0, 1, 2, 3]},
}
RULE: dict[str, Any] = {
    "distance": "‖f_net(X*) − f_∞(X*)‖/‖f_∞(X*)‖, f_∞ = Θ* Θ⁻¹ y (infinite NTK), seed mean",
    "kernel_converged_within": 1e-3,
    "train_loss_ratio_at_most": 1e-3,
    "fit": "slope of log(seed-mean distance) on log n, all widths, seed-bootstrap 95% interval",
    "predicted": -0.5,
    "tolerance": 0.2,
    "bound_at_widest": {"quick": 0.35, "full": 0.2},
    "negative_control": "substitute='mup' must fail",
}


class _Predictions:
    """The Meter slot of `train`: f(X*) − f0(X*) at the measured steps (first call: f0)."""

    def __init__(self, model: torch.nn.Module, x_test: torch.Tensor) -> None:
        self.model, self.x_test = model, x_test
        with torch.no_grad():
            self.f0 = model(x_test)
        self.last = torch.zeros_like(self.f0)

    def measure_members(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.last = self.model(self.x_test) - self.f0  # (M, O)
        return {}


def _config(ctx: Context, width: int, seed: int, lr: float) -> RunConfig:
    return RunConfig.parse(
        {
            "model": SETUP["model"],
            "data": SETUP["data"],
            "width": width,
            "seed": seed,
            "preset": ctx.substitute or SETUP["preset"],
            "base_width": None,
            "center": True,
            "train": {"kind": "sgd", "lr": lr, "steps": SETUP["steps"]},
            "measure": {"steps": [0, SETUP["steps"]], "metrics": ["default"]},
            "dtype": "float64",
        }
    )


def _train_one(
    config: RunConfig, cache: Path | None = None
) -> tuple[torch.Tensor | None, float, torch.Tensor]:
    """(test predictions f_T − f0 or None when diverged, final/initial training loss, and the
    kernel regression with the network's own empirical NTK at init: a diagnostic).

    With `cache`, read from / written to cache/<run id>.pt (a second `reproduce` reads back).
    """
    path = None if cache is None else Path(cache) / f"{config_hash(config.as_json())}.pt"
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["pred"], float(saved["ratio"]), saved["f_emp"]
    result = _train_uncached(config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pred, ratio, f_emp = result
        torch.save(
            {"pred": pred, "ratio": torch.tensor(ratio, dtype=torch.float64), "f_emp": f_emp}, path
        )
    return result


def _train_uncached(config: RunConfig) -> tuple[torch.Tensor | None, float, torch.Tensor]:
    model, data = setup(config)
    x, xs = data.x_train.flatten(1), data.x_test.flatten(1)
    k_tt = empirical_ntk(model, x, method="gram", trace=True)  # (N, N)
    k_st = empirical_ntk(model, xs, x, method="gram", trace=True)  # (M, N)
    f_emp = kernel_regression(k_tt, k_st, data.y_train)  # (M, O)
    opt = build_optimizer(config, model)
    recorder = _Predictions(model, data.x_test.flatten(1))
    outcome = train(
        model,
        data,
        opt,
        steps=config.train.steps,
        meter=recorder,  # type: ignore[arg-type]  # train reads measure_members() only
        measure_steps=config.measure.steps,
        center=True,
        seed=config.seed,
        flatten=True,
    )
    losses = [v for _, _, q, v in outcome.rows if q == "loss"]
    if outcome.status != "done" or len(losses) < 2:
        return None, math.inf, f_emp
    return recorder.last, losses[-1] / losses[0], f_emp


def run(ctx: Context) -> ClaimResult:
    """Runs the experiment (quick: about a minute on one core) and returns the verdict (RULE)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small float64 matrices on shared cores
    try:
        return _run(ctx)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: Context) -> ClaimResult:
    start = time.perf_counter()
    widths, seeds = SETUP["widths"][ctx.scale], SETUP["seeds"][ctx.scale]
    data_config = _config(ctx, widths[0], seeds[0], 1.0)
    _, data = setup(data_config)
    x, xs, y = data.x_train.flatten(1), data.x_test.flatten(1), data.y_train
    k_train = infinite_ntk(x, depth=SETUP["model"]["depth"])  # (N, N)
    k_test = infinite_ntk(xs, x, depth=SETUP["model"]["depth"])  # (M, N)
    lr = SETUP["c_lr"] / float(torch.linalg.eigvalsh(k_train / len(k_train))[-1])
    f_inf = kernel_regression(k_train, k_test, y)  # (M, O)
    f_kernel_t = kernel_dynamics(k_train, k_test, y, lr, SETUP["steps"])
    kernel_gap = float((f_kernel_t - f_inf).norm() / f_inf.norm())

    dist = np.full((len(widths), len(seeds)), np.nan)
    ratios, init_kernel, moved = (np.full_like(dist, np.nan) for _ in range(3))
    rows, examples = [], {}
    for i, w in enumerate(widths):
        for j, s in enumerate(seeds):
            pred, ratio, f_emp = _train_one(_config(ctx, w, s, lr), ctx.out / "c19_runs")
            ratios[i, j] = ratio
            init_kernel[i, j] = float((f_emp - f_inf).norm() / f_inf.norm())
            if pred is not None:
                dist[i, j] = float((pred - f_inf).norm() / f_inf.norm())
                moved[i, j] = float((pred - f_emp).norm() / f_inf.norm())
                if j == 0:
                    examples[w] = pred
            rows.append(
                {
                    "width": w,
                    "seed": s,
                    "distance": dist[i, j],
                    "init_kernel_distance": init_kernel[i, j],
                    "net_to_init_kernel": moved[i, j],
                    "loss_ratio": ratio,
                }
            )
    slope, low, high = seed_slope(widths, dist)
    mean = dist.mean(1)
    bound = RULE["bound_at_widest"][ctx.scale]
    checks = {
        f"kernel after T within {RULE['kernel_converged_within']} of f_∞": kernel_gap
        <= RULE["kernel_converged_within"],
        f"every run's loss_T/loss_0 ≤ {RULE['train_loss_ratio_at_most']}": bool(
            np.all(ratios <= RULE["train_loss_ratio_at_most"])
        ),
        f"slope and interval within {RULE['tolerance']} of {RULE['predicted']}": agreement(
            slope, low, high, RULE["predicted"], RULE["tolerance"]
        )
        == "agrees",
        f"distance at n={widths[-1]} ≤ {bound}": bool(mean[-1] <= bound),
    }
    acc = {
        "kernel": float((f_inf.argmax(1) == data.y_test.argmax(1)).double().mean()),
    }
    figure = _figure(ctx, widths, dist, slope, f_inf, examples)
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if all(checks.values()) else "fail",
        measured={
            "slope": round(slope, 4),
            "ci": [round(low, 4), round(high, 4)],
            f"distance_n{widths[-1]}": round(float(mean[-1]), 4),
        },
        predicted={"slope": RULE["predicted"]},
        tolerance={"slope": RULE["tolerance"], "bound": bound},
        details={
            "checks": checks,
            "rule": RULE,
            "setup": SETUP,
            "trained": ctx.substitute or SETUP["preset"],
            "lr": lr,
            "kernel_gap_at_T": kernel_gap,
            "mean_distance": {w: float(m) for w, m in zip(widths, mean, strict=True)},
            "max_loss_ratio": float(np.nanmax(ratios)),
            # diagnostics, not judged: kernel regression with the network's empirical NTK at
            # init against f_∞ (the init fluctuation), and the network against it (what the
            # NTK's movement during training adds)
            "init_kernel_distance": {
                w: float(m) for w, m in zip(widths, init_kernel.mean(1), strict=True)
            },
            "init_kernel_slope": round(seed_slope(widths, init_kernel)[0], 4),
            "net_to_init_kernel": {w: float(m) for w, m in zip(widths, moved.mean(1), strict=True)},
            "test_accuracy": acc,
            "seconds": round(time.perf_counter() - start, 1),
        },
        figures=[figure],
        table=rows,
    )


def _figure(ctx, widths, dist, slope, f_inf, examples) -> str:
    """Distance against width (n^{−1/2} guide) and net-vs-kernel test predictions."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 3.9))
    w = np.asarray(widths, dtype=float)
    mean = dist.mean(1)
    ax.loglog(w, mean, "o-", ms=3, label=f"‖f_net − f_∞‖/‖f_∞‖ (slope {slope:.2f})")
    ax.loglog(w, mean[0] * (w / w[0]) ** -0.5, "k--", lw=0.8, label="$n^{-1/2}$")
    ax.set_xlabel("width n")
    ax.set_ylabel("relative distance")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ref = f_inf.flatten().numpy()
    for width in (widths[0], widths[-1]):
        if width in examples:
            bx.plot(ref, examples[width].flatten().numpy(), ".", ms=2, label=f"n={width}")
    lim = [float(ref.min()), float(ref.max())]
    bx.plot(lim, lim, "k-", lw=0.6)
    bx.set_xlabel("kernel regression f_∞(x*)")
    bx.set_ylabel("trained network f(x*) − f0(x*)")
    bx.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE}")
