"""The run config: one training run, typed, frozen and validated when it is built.

A sweep spec (`richness.sweep.spec`) expands to one `RunConfig` per run; the store keys the run
by the hash of its JSON form (`RunConfig.as_json`); the training loop (`richness.train`) and the
analysis read its fields, never a dict's defaults. Each default is written here once, next to
its reason. The model and data sections are the spec's own `ModelSpec` and `DataSpec`, so a
run is validated by the same rules as the spec that produced it.

    config = RunConfig(model={"kind": "mlp"}, data={"kind": "digits"}, width=256, seed=0, r=0.25,
                       train={"lr": 0.05, "steps": 5}, measure={"steps": [0, 5]})
    config.parameterization()     # the table it names: rn.richness(0.25, "stp", ...)

Stores written before the typed config held plain dicts with three derived keys ("optimizer",
"depth", "layers"); `RunConfig.parse` reads them (the derived keys are recomputed, not read).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    computed_field,
    model_validator,
)

from richness.scaling import Parameterization, table
from richness.sweep.spec import DataSpec, ModelSpec, OptimizerSpec, SpecError, check_loss

__all__ = ["LEGACY_KEYS", "MEMBER_FIELDS", "RunConfig", "TrainConfig"]

LEGACY_KEYS = ("optimizer", "depth", "layers")
"""Keys of a stored dict config that are derived, not chosen: recomputed when it is parsed."""

MEMBER_FIELDS = ("seed", "r", "preset", "gauge", "gamma", "base_width")
"""Fields in which the runs of one ensemble may differ (besides train.lr, η0): everything that
changes the numbers inside the tensors but not their shapes or the loop's control flow."""


class TrainConfig(OptimizerSpec):
    """The optimizer (kind, η0, momentum, weight decay) and the loop's length and batches."""

    steps: int = Field(..., ge=1, strict=True, description="optimizer steps")
    batch_size: int | None = Field(
        None, ge=1, strict=True, description="examples per step; None: the full training set"
    )
    loss_bound: float = Field(
        1e6, gt=0, description="a training loss above this (or non-finite) marks the run diverged"
    )


class MeasureConfig(BaseModel):
    """When and what the Meter measures (resolved: the spec's default steps are expanded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: tuple[int, ...] = Field(..., description="steps to measure at, 0 = initialization")
    metrics: tuple[str, ...] = Field(("default",), description="Meter metric names or groups")


class RunConfig(BaseModel):
    """One run: architecture, data, width, seed, table, optimizer, loop and measurements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelSpec = Field(ModelSpec(), description="the architecture; its width is `width`")
    data: DataSpec = Field(..., description="the data set, the same for every run of a sweep")
    width: int = Field(..., ge=1, strict=True, description="hidden width n")
    seed: int = Field(..., ge=0, strict=True, description="initialization and batch order")
    r: float | None = Field(None, description="richness on the scale [0, 1/2]; None: a preset")
    preset: str | None = Field(None, description="sp | ntp | mup | mf instead of r")
    gauge: str | None = Field(None, description="stp | mup | rescaling; None: the preset's own")
    gamma: float = Field(1.0, gt=0, description="prefactor γ of α = γ·n^r")
    base_width: int | None = Field(
        None, ge=1, strict=True, description="n0 of base-relative tables; None: absolute tables"
    )
    center: StrictBool = Field(True, description="train f − f0 (research/notes.md, centering)")
    loss: Literal["mse", "cross_entropy"] = Field(
        "mse", description="the training loss (`richness.train.LOSSES`)"
    )
    train: TrainConfig
    measure: MeasureConfig
    dtype: Literal["float32", "float64"] = Field("float32", description="parameters and data")
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Literal["full", "bf16"] = Field(
        "full", description="bf16: bfloat16 matmuls in the training forward (train.autocast)"
    )
    threads: int | None = Field(
        None, ge=1, strict=True, description="intra-op threads; None: the process's setting"
    )

    @model_validator(mode="after")
    def _one_table(self) -> RunConfig:
        self.parameterization()  # one of r and preset, r on the scale, known names: its checks
        check_loss(self.loss, self.data.kind)
        if self.precision == "bf16" and self.dtype != "float32":
            raise ValueError(f"precision 'bf16' needs dtype 'float32', got {self.dtype!r}")
        bad = [s for s in self.measure.steps if not 0 <= s <= self.train.steps]
        if bad:
            raise ValueError(f"measure.steps {bad} lie outside [0, train.steps={self.train.steps}]")
        return self

    @computed_field  # stored with the config so that tables of runs can group by it
    @property
    def optimizer(self) -> Literal["sgd", "adam"]:
        """The table's optimizer family: Adam's tables serve Adam and AdamW."""
        return "sgd" if self.train.kind == "sgd" else "adam"

    def parameterization(self) -> Parameterization:
        """The table this run names (THEORY.md §3): a preset, or richness r in a gauge."""
        return table(self.r, self.preset, self.gauge, self.gamma, self.optimizer, self.base_width)

    def as_json(self) -> dict[str, Any]:
        """The JSON form the store keys and keeps (`config_hash` of it is the run's id)."""
        return self.model_dump(mode="json")

    def ensemble_key(self) -> str:
        """Runs with equal keys can train as one ensemble: equal in all but `MEMBER_FIELDS`, η0."""
        shared = self.model_dump(mode="json", exclude=set(MEMBER_FIELDS))
        shared["train"].pop("lr")
        return json.dumps(shared, sort_keys=True)

    @property
    def label(self) -> str:
        """A short name for progress lines: width, table and seed."""
        point = self.preset or f"r={self.r:g} {self.gauge or 'stp'}"
        return f"n={self.width} {point} seed={self.seed}"

    @classmethod
    def parse(cls, config: RunConfig | dict[str, Any], *, check_files: bool = True) -> RunConfig:
        """A RunConfig from itself or from its JSON form, including a pre-typed store's dict.

        Args:
          config: the config or its JSON form.
          check_files: check that the data's files exist (False: a reader of stored runs that
            need not load the data, on another machine).

        Raises:
          SpecError: a field is missing or out of range (the message names it).
        """
        if isinstance(config, RunConfig):
            return config
        fields = {k: v for k, v in config.items() if k not in LEGACY_KEYS}
        try:
            return cls.model_validate(fields, context={"check_files": check_files})
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in err.errors()
            )
            raise SpecError(f"run config: {problems}") from None
