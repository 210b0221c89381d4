"""Finite-width deep linear networks held against their infinite-width limit (C21, C22).

A finite run is a `RunConfig` (the linear MLP of `richness.infinite`, the absolute STP table,
full-batch SGD on the centered loss, float64) trained by the library's loop,
`richness.train.train`, exactly as `train.run(config)` trains it (tests/claims/test_c21_c22.py
checks that both record the same losses). `train.run` keeps scalar metrics only; the distance
to the limit needs the whole test-output trajectory, so the Meter slot of the loop holds a
`_Trajectory` that records f_t(x*) − f_0(x*) and ‖Δh_ℓ‖/‖h_ℓ(0)‖ at every measured step.
Results are cached in out/limit_runs/<run id>.pt, so a second `reproduce` reads them back.

The limit of the same config is `limit_of(config)`: `rn.infinite.deep_linear` on the run's
own data.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from richness.build import build_optimizer, build_scheduler, flattens, load_data, setup
from richness.config import RunConfig
from richness.infinite import DeepLinearLimit, deep_linear
from richness.measure.meter import capture_layers
from richness.sweep.store import config_hash
from richness.train import RunOutcome, train

__all__ = [
    "FiniteRun",
    "limit_config",
    "limit_of",
    "relative_distance",
    "seed_slope",
    "train_finite",
]


def limit_config(
    *,
    width: int,
    seed: int,
    r: float,
    data: dict[str, Any],
    depth: int,
    lr: float,
    steps: int,
    gamma: float = 1.0,
    preset: str | None = None,
) -> RunConfig:
    """The run config of a linear MLP that `deep_linear` is the n → ∞ limit of.

    Every step is measured (the whole trajectory is compared). `preset` trains that preset
    instead of the STP table at r (a negative control: `Context.substitute`); `limit_of` still
    gives the limit of r.
    """
    table = {"r": r, "gauge": "stp"} if preset is None else {"preset": preset, "r": None}
    return RunConfig.parse(
        {
            "model": {"kind": "mlp", "depth": depth, "activation": "linear", "bias": False},
            "data": data,
            "width": width,
            "seed": seed,
            **table,
            "gamma": gamma,
            "base_width": None,
            "center": True,
            "train": {"kind": "sgd", "lr": lr, "steps": steps},
            "measure": {"steps": list(range(steps + 1)), "metrics": ["default"]},
            "dtype": "float64",
        }
    )


@dataclass
class FiniteRun:
    """A finite-width run's trajectory.

    Attributes:
      f_test: (T+1, M, O) f_t(x*) − f_0(x*) on the test inputs.
      feature_movement: (T+1, L−1) ‖H_ℓ(t) − H_ℓ(0)‖_F / ‖H_ℓ(0)‖_F on the training inputs.
      loss: (T+1,) the loop's training loss.
      seconds: training time (building and initializing the model included).
    """

    f_test: torch.Tensor
    feature_movement: torch.Tensor
    loss: torch.Tensor
    seconds: float


class _Trajectory:
    """The Meter slot of `train`: records test outputs and feature movement at each measure."""

    def __init__(self, model: torch.nn.Module, x_train: torch.Tensor, x_test: torch.Tensor):
        self.model, self.x_train, self.x_test = model, x_train, x_test
        named = dict(model.named_modules())
        self.hidden = {f"layers.{i}": named[f"layers.{i}"] for i in range(len(model.layers) - 1)}
        self.h0 = self._features()
        with torch.no_grad():
            self.f0 = model(x_test)
        self.outputs: list[torch.Tensor] = []
        self.movement: list[list[float]] = []

    def _features(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            h, _, _ = capture_layers(self.hidden, lambda: self.model(self.x_train))
        return {k: v.detach().clone() for k, v in h.items()}  # (N, n) each

    def measure_members(self) -> dict[str, torch.Tensor]:
        """{"feature_movement/<layer>": (1,)} and the test outputs kept in `outputs`."""
        h = self._features()
        with torch.no_grad():
            self.outputs.append(self.model(self.x_test) - self.f0)
        ratios = [(h[k] - self.h0[k]).norm() / self.h0[k].norm() for k in self.hidden]
        self.movement.append([float(v) for v in ratios])
        return {
            f"feature_movement/{k}": v.reshape(1) for k, v in zip(self.hidden, ratios, strict=True)
        }


def train_finite(config: RunConfig, cache: Path | None = None) -> FiniteRun:
    """Trains one width-n network of `config` through `richness.train.train`.

    Args:
      config: from `limit_config` (every step measured).
      cache: a directory: the result is read from / written to cache/<run id>.pt.

    Raises:
      RuntimeError: the run diverged (the message names the step).
    """
    path = None if cache is None else Path(cache) / f"{config_hash(config.as_json())}.pt"
    if path is not None and path.exists():
        return FiniteRun(**torch.load(path, weights_only=True))
    start = time.perf_counter()
    model, data = setup(config)
    opt = build_optimizer(config, model)
    flat = flattens(config)
    x_train = data.x_train.flatten(1) if flat else data.x_train
    x_test = data.x_test.flatten(1) if flat else data.x_test
    recorder = _Trajectory(model, x_train, x_test)
    outcome: RunOutcome = train(
        model,
        data,
        opt,
        steps=config.train.steps,
        meter=recorder,  # type: ignore[arg-type]  # a Meter's measure_members() is all train reads
        measure_steps=config.measure.steps,
        batch_size=config.train.batch_size,
        center=config.center,
        loss_bound=config.train.loss_bound,
        seed=config.seed,
        flatten=flat,
        precision=config.precision,
        loss=config.loss,
        scheduler=build_scheduler(config, opt),
    )
    if outcome.status != "done":
        raise RuntimeError(f"run {config.label} {outcome.status} at step {outcome.diverged_step}")
    losses = [value for _, _, quantity, value in outcome.rows if quantity == "loss"]
    result = FiniteRun(
        f_test=torch.stack(recorder.outputs),
        feature_movement=torch.tensor(recorder.movement, dtype=torch.float64),
        loss=torch.tensor(losses, dtype=torch.float64),
        seconds=time.perf_counter() - start,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.__dict__, path)
    return result


def limit_of(config: RunConfig, r: float | None = None) -> DeepLinearLimit:
    """`rn.infinite.deep_linear` of the config's network on the config's data (at r: the
    config's own r when None)."""
    data = load_data(config)
    return deep_linear(
        data.x_train.flatten(1),
        data.y_train,
        data.x_test.flatten(1),
        depth=config.model.depth,
        r=float(config.r if r is None else r),
        gamma=config.gamma,
        lr=config.train.lr,
        steps=config.train.steps,
    )


def relative_distance(f_net: torch.Tensor, f_lim: torch.Tensor) -> float:
    """‖f_net − f_lim‖ / ‖f_lim‖ over the whole trajectory (all steps, test points, outputs)."""
    return float((f_net - f_lim).norm() / f_lim.norm())


def seed_slope(
    widths: list[int], values: np.ndarray, n_boot: int = 2000
) -> tuple[float, float, float]:
    """Slope of log(seed mean) on log(width), with a seed-bootstrap 95% interval.

    Args:
      widths: the W widths.
      values: (W, S) positive values per width and seed (seeds resampled together at every
        width: common random numbers).

    Returns:
      (slope, low, high); NaNs when a value is not finite and positive.
    """
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan, math.nan, math.nan
    x = np.log(np.asarray(widths, dtype=float))

    def fit(v: np.ndarray) -> float:
        return float(np.polyfit(x, np.log(v.mean(1)), 1)[0])

    rng = np.random.default_rng(0)
    picks = rng.integers(0, values.shape[1], size=(n_boot, values.shape[1]))
    boot = [fit(values[:, p]) for p in picks]
    low, high = np.quantile(boot, [0.025, 0.975])
    return fit(values), float(low), float(high)
