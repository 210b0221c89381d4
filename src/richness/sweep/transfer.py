"""μTransfer sweeps: a sweep spec with a log2-spaced grid of base learning rates η0.

A transfer spec is a sweep spec (`richness.sweep.spec`) whose optimizer has no `lr`: it sweeps
η0 = 2^x over `log2_lr` (low, high, step) instead, at every width, parameterization and seed,
and records only the losses of the last `average_last` steps (no Meter metrics). Every other
field is a sweep spec's, with its meaning and validation (the loss, the precision, the model of
any kind, the data of any kind, the optimizer's schedule): it expands to one `SweepSpec` per
grid point, run by the ordinary runner into one store, so a transfer sweep
resumes like any sweep: a second invocation skips every finished run. Runs are keyed by their
own config, not by the grid, so widening or refining `log2_lr` later reuses every finished
grid point. The analysis (optimal η0 per width, its drift, the verdict) is
`richness.analysis.transfer`.

    name: transfer-mlp
    model: {kind: mlp, depth: 3}
    data: {kind: digits, n_train: 1024, n_test: 512, n_probe: 16}
    widths: [64, 128, 256, 512, 1024]
    presets: [mup, sp]
    base_width: 64
    seeds: [0, 1, 2]
    optimizer: {kind: sgd}
    log2_lr: {low: -8, high: 1, step: 0.5}
    steps: 300
    batch_size: 128
    average_last: 20

A schedule multiplies η0 over the steps (`optimizer: {kind: adamw, schedule: {kind: cosine,
warmup_steps: 20, final_ratio: 0.1}}`); the grid is over the peak η0.

Measures: THEORY.md §5, μTransfer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from richness.sweep.spec import (
    DataSpec,
    ModelSpec,
    ScheduleSpec,
    SpecError,
    SweepSpec,
    _Typed,
    expand,
    read_yaml,
)

__all__ = [
    "LrGrid",
    "TransferSpec",
    "expand_transfer",
    "load_transfer_spec",
    "parse_transfer_spec",
    "run_transfer",
    "sweep_specs",
]


class LrGrid(_Typed):
    """The base learning rates η0 = 2^x, x = low, low + step, ..., high (log2 units)."""

    low: float = Field(..., description="log2 of the smallest η0")
    high: float = Field(..., description="log2 of the largest η0 (≥ low + 2·step)")
    step: float = Field(0.5, gt=0, description="grid spacing in log2 units (0.5: √2 apart)")

    @model_validator(mode="after")
    def _three_points(self) -> LrGrid:
        if self.high < self.low + 2 * self.step - 1e-9:
            raise ValueError(
                f"high={self.high} must be ≥ low + 2·step = {self.low + 2 * self.step} "
                "(a parabola through the optimum needs ≥ 3 grid points)"
            )
        return self

    def values(self) -> list[float]:
        """The grid x (log2 η0), low first."""
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + k * self.step, 9) for k in range(count)]


class TransferOptimizerSpec(_Typed):
    """A sweep's optimizer (`richness.sweep.spec.OptimizerSpec`) without `lr`: the transfer
    sweep sets η0 from `log2_lr`; a schedule scales every grid point's η0 alike."""

    kind: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    schedule: ScheduleSpec | None = Field(None, description="None: η0 at every step")


class TransferSpec(_Typed):
    """A μTransfer sweep; the fields shared with `SweepSpec` mean the same and validate alike
    (each grid point is validated as a `SweepSpec`): every field of a sweep spec but
    `optimizer.lr` (here `log2_lr`) and `measure` (here the last `average_last` steps' losses)."""

    name: str = Field("transfer", min_length=1)
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    widths: list[int] = Field(..., min_length=2, description="hidden widths n, ≥ 2 of them")
    richness: list[float] = Field(default_factory=list, description="r values in [0, 0.5]")
    presets: list[str] = Field(default_factory=list, description="e.g. [mup, sp]")
    gauges: list[str] = Field(default_factory=lambda: ["stp"])
    gamma: float = Field(1.0, gt=0)
    base_width: int | Literal["absolute"] | None = Field(
        None, description="n0; None: the smallest width (where μP and SP coincide)"
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    optimizer: TransferOptimizerSpec = TransferOptimizerSpec()
    log2_lr: LrGrid
    steps: int = Field(300, ge=1, description="optimizer steps per run")
    batch_size: int | None = Field(None, ge=1, description="None: full batch")
    center: bool = True
    loss: Literal["mse", "cross_entropy"] = Field(
        "mse", description="½‖f − y‖², or cross-entropy on classes / next tokens (per position)"
    )
    average_last: int = Field(
        10, ge=1, description="final loss = mean of the losses of the last k steps"
    )
    tolerance: float = Field(
        0.25, gt=0, description="largest |drift| (log2 η0 per doubling) counted as 'stays'"
    )
    dtype: Literal["float32", "float64"] = "float32"
    precision: Literal["full", "bf16"] = Field(
        "full", description="bf16: bfloat16 matmuls in training (train.autocast), float32 rest"
    )
    device: Literal["cpu", "cuda"] = "cpu"
    loss_bound: float = Field(1e3, gt=0, description="a loss above this marks the run diverged")

    @field_validator("widths")
    @classmethod
    def _distinct_widths(cls, widths: list[int]) -> list[int]:
        if len(set(widths)) < 2:
            raise ValueError(f"widths needs ≥ 2 distinct widths to fit a drift, got {widths}")
        return widths

    @model_validator(mode="after")
    def _consistent(self) -> TransferSpec:
        if self.average_last > self.steps:
            raise ValueError(
                f"average_last={self.average_last} must lie in [1, steps={self.steps}]"
            )
        try:  # the shared fields validate exactly as in a sweep spec
            _sweep_spec(self, self.log2_lr.low)
        except ValidationError as err:
            raise ValueError(_messages(err)) from None
        return self


def _sweep_spec(spec: TransferSpec, log2_lr: float) -> SweepSpec:
    """The ordinary sweep of one grid point: η0 = 2^log2_lr, losses of the last steps only."""
    fields = spec.model_dump(exclude={"optimizer", "log2_lr", "average_last", "tolerance"})
    fields["model"] = spec.model.model_dump(exclude_unset=True)  # as written: kind-checked
    fields["optimizer"] = {**spec.optimizer.model_dump(), "lr": 2.0**log2_lr}
    last = list(range(spec.steps - spec.average_last + 1, spec.steps + 1))
    fields["measure"] = {"steps": last, "metrics": []}
    return SweepSpec.model_validate(fields)


def sweep_specs(spec: TransferSpec) -> list[SweepSpec]:
    """One `SweepSpec` per grid point of η0, smallest first (all named `spec.name`)."""
    return [_sweep_spec(spec, x) for x in spec.log2_lr.values()]


def expand_transfer(spec: TransferSpec) -> list[dict[str, Any]]:
    """Every run config of the transfer sweep: grid × widths × parameterizations × seeds."""
    return [config for sweep in sweep_specs(spec) for config in expand(sweep)]


def parse_transfer_spec(data: Any) -> TransferSpec:
    """Validates a transfer spec given as a dict (from YAML).

    Raises:
      SpecError: a bad field; the message names each (e.g. "log2_lr.high: ...").
    """
    if not isinstance(data, dict):
        raise SpecError(f"a transfer spec must be a mapping, got {type(data).__name__}")
    optimizer = data.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in optimizer:
        raise SpecError(
            "optimizer.lr: a transfer spec sweeps η0; give log2_lr: {low, high, step} instead"
        )
    try:
        return TransferSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_messages(err)) from None


def _messages(err: ValidationError) -> str:
    """Each error as "field.path: message" (a whole-spec error names its fields itself)."""
    lines = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def load_transfer_spec(path: str | Path) -> TransferSpec:
    """Reads and validates a YAML transfer spec.

    Raises:
      SpecError: unreadable YAML or an invalid field.
      FileNotFoundError: no such file.
    """
    return parse_transfer_spec(read_yaml(path))


def run_transfer(
    spec: TransferSpec,
    db: str | Path,
    *,
    workers: int | None = None,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """Runs every unfinished run of the transfer sweep into the store at `db`, grid point by point.

    Returns:
      Counts summed over the grid (those of `run_sweep`).
    """
    from richness.sweep.runner import run_sweep  # imports torch

    counts: dict[str, int] = {}
    for sweep in sweep_specs(spec):
        for key, value in run_sweep(
            sweep, db, workers=workers, threads=threads, progress=progress
        ).items():
            counts[key] = counts.get(key, 0) + value
    return counts
