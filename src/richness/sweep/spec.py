"""Sweep specs: YAML validated by pydantic, expanded to one resolved config per run.

A spec is widths × (richness values × gauges + presets) × seeds. Each run's config is a
plain dict (see `richness.train`); its hash (`config_hash`) is the run's identity, so a spec
that is run again finds its finished runs in the store and skips them.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from richness.scaling import GAUGES, PRESETS

__all__ = ["SpecError", "SweepSpec", "expand", "load_spec"]


class SpecError(ValueError):
    """A sweep spec is invalid; the message names each bad field, its value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """The architecture; `width` comes from the sweep."""

    kind: Literal["mlp", "linear", "cnn", "resmlp", "transformer", "factory"] = "mlp"
    depth: int = Field(
        3,
        ge=1,
        description="weight layers (mlp, ≥ 2), conv layers (cnn), blocks (resmlp, transformer)",
    )
    activation: Literal["linear", "relu", "tanh", "erf", "gelu"] = "relu"
    bias: bool = False
    branch_multiplier: float | None = Field(
        None, gt=0, description="resmlp: β of h + β·branch (None: 1/√depth)"
    )
    n_heads: int | None = Field(
        None, ge=1, description="transformer: heads, fixed as width grows (default 4)"
    )
    d_head: int | None = Field(
        None, ge=1, description="transformer: head size, fixed as width grows (instead of n_heads)"
    )
    tie_embeddings: bool | None = Field(None, description="transformer: readout by the embedding")
    zero_query: bool | None = Field(
        None, description="transformer: zero-initialized query projections (TP V's μP practice)"
    )
    zero_readout: bool | None = Field(
        None, description="transformer: zero-initialized readout (TP V's μP practice)"
    )
    factory: str | None = Field(None, description="'module:function', f(width) -> nn.Module")
    d_in: int | None = Field(None, ge=1, description="ignored: taken from the data")
    d_out: int | None = Field(None, ge=1, description="ignored: taken from the data")

    @model_validator(mode="after")
    def _factory_named(self) -> ModelSpec:
        if self.kind == "factory" and not (self.factory and ":" in self.factory):
            raise ValueError("model.factory must be 'module:function' when kind is 'factory'")
        if self.kind == "mlp" and self.depth < 2:
            raise ValueError(f"model.depth={self.depth} must be ≥ 2 for kind 'mlp'")
        only = {
            "branch_multiplier": "resmlp",
            "n_heads": "transformer",
            "d_head": "transformer",
            "tie_embeddings": "transformer",
            "zero_query": "transformer",
            "zero_readout": "transformer",
        }
        for name, kind in only.items():
            if getattr(self, name) is not None and self.kind != kind:
                raise ValueError(f"model.{name} applies to kind {kind!r} only, not {self.kind!r}")
        if self.n_heads is not None and self.d_head is not None:
            raise ValueError("give model.n_heads or model.d_head, not both")
        if self.kind == "transformer" and "activation" in self.model_fields_set:
            raise ValueError("model.activation does not apply to kind 'transformer' (GELU MLPs)")
        return self

    def layer_names(self) -> list[str]:
        """The hooked layers in order; position + 1 is the index ℓ of Parameterization.predict."""
        if self.kind in ("mlp", "linear"):
            depth = 3 if self.kind == "linear" else self.depth
            return [f"layers.{i}" for i in range(depth)]
        if self.kind == "cnn":
            return [f"convs.{i}" for i in range(self.depth)] + ["readout"]
        if self.kind == "resmlp":
            fcs = [f"blocks.{i}.{fc}" for i in range(self.depth) for fc in ("fc1", "fc2")]
            return ["stem", *fcs, "readout"]
        if self.kind == "transformer":
            per_block = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc", "mlp.proj")
            blocks = [f"blocks.{i}.{layer}" for i in range(self.depth) for layer in per_block]
            readout = [] if self.tie_embeddings else ["readout"]
            return ["tok_emb", "pos_emb", *blocks, *readout]
        return _factory_layers(self.factory or "")


class DataSpec(_Strict):
    """The data set (see `richness.data.load_dataset`); extra keys go to its loader."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Literal["digits", "synthetic", "cifar10", "chars"] = "digits"
    n_train: int = Field(256, ge=1)
    n_test: int | None = Field(256, ge=0)
    n_probe: int = Field(128, ge=1)
    seed: int = Field(0, ge=0, description="fixes the split: the same data for every run")


class OptimizerSpec(_Strict):
    kind: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(..., gt=0, description="η0, the base learning rate")
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class MeasureSpec(_Strict):
    steps: list[int] | None = Field(None, description="steps to measure at (0 = init)")
    metrics: list[str] = Field(default_factory=lambda: ["default", "weights"])


class SweepSpec(_Strict):
    """A sweep: every field states its unit and range (STYLE.md, nanoGPT habit 2)."""

    name: str = Field("sweep", min_length=1)
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    widths: list[int] = Field(..., min_length=1, description="hidden widths n, each ≥ 1")
    richness: list[float] = Field(default_factory=list, description="r values in [0, 0.5]")
    presets: list[str] = Field(default_factory=list, description=f"any of {PRESETS}")
    gauges: list[str] = Field(default_factory=lambda: ["stp"], description=f"any of {GAUGES}")
    gamma: float = Field(1.0, gt=0, description="prefactor γ of α = γ·n^r")
    base_width: int | Literal["absolute"] | None = Field(
        None, description="n0 (≥ 1); None: the smallest width; 'absolute': the tutorial's tables"
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    optimizer: OptimizerSpec
    steps: int = Field(5, ge=1, description="optimizer steps per run")
    batch_size: int | None = Field(None, ge=1, description="None: full batch")
    center: bool = Field(True, description="train f − f0 (research/notes.md)")
    measure: MeasureSpec = MeasureSpec()
    dtype: Literal["float32", "float64"] = "float32"
    precision: Literal["full", "bf16"] = Field(
        "full", description="bf16: bfloat16 matmuls in training (train.autocast), float32 rest"
    )
    device: Literal["cpu", "cuda"] = "cpu"
    loss_bound: float = Field(1e6, gt=0, description="a loss above this marks the run diverged")

    @field_validator("widths")
    @classmethod
    def _widths_positive(cls, widths: list[int]) -> list[int]:
        bad = [w for w in widths if w < 1]
        if bad:
            raise ValueError(f"widths must be integers ≥ 1, got {bad}")
        return sorted(set(widths))

    @field_validator("richness")
    @classmethod
    def _r_on_scale(cls, values: list[float]) -> list[float]:
        bad = [r for r in values if not (0.0 <= r <= 0.5)]
        if bad:
            raise ValueError(f"richness values must lie in [0, 0.5] (THEORY.md §3), got {bad}")
        return values

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, values: list[str]) -> list[str]:
        bad = [p for p in values if p not in PRESETS]
        if bad:
            raise ValueError(f"unknown presets {bad}; allowed: {list(PRESETS)}")
        return values

    @field_validator("gauges")
    @classmethod
    def _known_gauges(cls, values: list[str]) -> list[str]:
        bad = [g for g in values if g not in GAUGES]
        if bad or not values:
            raise ValueError(f"gauges must be a non-empty list of {list(GAUGES)}, got {values}")
        return values

    @model_validator(mode="after")
    def _something_to_run(self) -> SweepSpec:
        if not self.richness and not self.presets:
            raise ValueError("give at least one richness value or preset (richness: [0, 0.5])")
        if isinstance(self.base_width, int) and self.base_width < 1:
            raise ValueError(f"base_width must be ≥ 1, 'absolute' or null, got {self.base_width}")
        steps = self.measure.steps
        if steps is not None and any(s < 0 or s > self.steps for s in steps):
            raise ValueError(f"measure.steps must lie in [0, steps={self.steps}], got {steps}")
        if self.precision == "bf16" and self.dtype != "float32":
            raise ValueError(
                f"precision 'bf16' needs dtype 'float32' master weights, got {self.dtype!r}"
            )
        return self

    def resolved_base_width(self) -> int | None:
        if self.base_width == "absolute":
            return None
        return self.base_width if self.base_width is not None else min(self.widths)


def _factory_layers(factory: str) -> list[str]:
    """The Meter's layers (`measured_layers`) of a user factory's model, built at width 8."""
    import importlib

    from richness.measure.meter import measured_layers

    module_name, _, fn_name = factory.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model.factory={factory!r} can't be imported: {err}") from None
    return measured_layers(fn(8))


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"]) or "spec"
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{where}: {e['msg']}{shown}")
    return "; ".join(lines)


def parse_spec(data: Any) -> SweepSpec:
    """Validates a spec given as a dict (from YAML)."""
    if not isinstance(data, dict):
        raise SpecError(f"a sweep spec must be a mapping, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_errors(err)) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and validates a YAML spec (yaml.safe_load).

    Raises:
      SpecError: unreadable YAML or an invalid field (the message names each).
      FileNotFoundError: no such file.
    """
    return parse_spec(read_yaml(path))


def read_yaml(path: str | Path) -> Any:
    """The YAML document at `path` (yaml.safe_load).

    Raises:
      SpecError: unreadable YAML.
      FileNotFoundError: no such file.
    """
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """One resolved run config per (width, point, gauge, seed), in a stable order."""
    points: list[tuple[float | None, str | None, str | None]] = [
        (r, None, gauge) for r in spec.richness for gauge in spec.gauges
    ]
    points += [(None, name, None) for name in spec.presets]
    family = "sgd" if spec.optimizer.kind == "sgd" else "adam"
    layers = spec.model.layer_names()
    steps = spec.measure.steps
    if steps is None:
        steps = sorted({1, spec.steps} | set(range(0, spec.steps + 1, max(1, spec.steps // 5))))
    model = spec.model.model_dump(exclude_none=True)
    configs = []
    for width, (r, name, gauge), seed in itertools.product(spec.widths, points, spec.seeds):
        configs.append(
            {
                "model": model,
                "data": spec.data.model_dump(),
                "width": width,
                "r": r,
                "preset": name,
                "gauge": gauge,
                "gamma": spec.gamma,
                "base_width": spec.resolved_base_width(),
                "optimizer": family,
                "depth": len(layers) if layers else None,
                "layers": layers,
                "seed": seed,
                "center": spec.center,
                "train": {
                    **spec.optimizer.model_dump(),
                    "steps": spec.steps,
                    "batch_size": spec.batch_size,
                    "loss_bound": spec.loss_bound,
                },
                "measure": {"steps": steps, "metrics": spec.measure.metrics},
                "dtype": spec.dtype,
                "device": spec.device,
            }
        )
        if spec.precision != "full":  # absent when full: older stores keep their run hashes
            configs[-1]["precision"] = spec.precision
    return configs


def run_count(spec: SweepSpec) -> int:
    """How many runs the spec expands to."""
    points = len(spec.richness) * len(spec.gauges) + len(spec.presets)
    return math.prod((len(spec.widths), points, len(spec.seeds)))
