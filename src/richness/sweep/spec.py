"""Sweep specs: YAML validated by pydantic, expanded to one resolved config per run.

A spec is widths × (richness values × gauges + presets) × seeds. Each run's config is a
plain dict (see `richness.train`); its hash (`config_hash`) is the run's identity, so a spec
that is run again finds its finished runs in the store and skips them.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from richness.scaling import GAUGES, PRESETS

if TYPE_CHECKING:
    from richness.config import RunConfig

__all__ = ["SpecError", "SweepSpec", "expand", "load_spec"]


class SpecError(ValueError):
    """A sweep spec is invalid; the message names each bad field, its value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Typed(_Strict):
    """Strict types: YAML's `true` is no number and `"1"` no int (an int still passes as a
    float: `lr: 1`); floats are finite, since a run's config is JSON, which has no inf or nan."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


MAX_DEPTH = 1000
"""The deepest model a spec may ask for: every run's config lists its layers, and the loop
visits each at every step (`model.depth: 1000000000000` would hang, not fail)."""


_LATER_FIELDS = ("patch_size", "kernel_size")
"""ModelSpec fields dumped only when set (`ModelSpec._dump`)."""


class ModelSpec(_Typed):
    """The architecture; `width` comes from the sweep."""

    kind: Literal["mlp", "linear", "cnn", "convmixer", "resmlp", "transformer", "hf", "factory"] = (
        "mlp"
    )
    depth: int = Field(
        3,
        ge=1,
        le=MAX_DEPTH,
        description="weight layers (mlp, ≥ 2), conv layers (cnn), blocks (convmixer, resmlp, "
        "transformer)",
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
    architecture: str | None = Field(
        None, description="hf: a transformers model_type (llama, mistral, qwen2, gpt2, ...)"
    )
    patch_size: int | None = Field(
        None, ge=1, description="convmixer: patch-embedding size and stride p (default 4)"
    )
    kernel_size: int | None = Field(
        None, ge=1, description="convmixer: depthwise kernel k, odd (default 5)"
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
        if self.kind == "hf" and not self.architecture:
            raise ValueError("model.architecture (a transformers model_type) is needed for 'hf'")
        only = {
            "branch_multiplier": ("resmlp",),
            "n_heads": ("transformer", "hf"),
            "d_head": ("transformer", "hf"),
            "tie_embeddings": ("transformer",),
            "zero_query": ("transformer",),
            "zero_readout": ("transformer",),
            "architecture": ("hf",),
            "patch_size": ("convmixer",),
            "kernel_size": ("convmixer",),
        }
        for name, kinds in only.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(f"model.{name} applies to kind {kinds} only, not {self.kind!r}")
        if self.n_heads is not None and self.d_head is not None:
            raise ValueError("give model.n_heads or model.d_head, not both")
        if self.kind in ("transformer", "hf") and "activation" in self.model_fields_set:
            raise ValueError(f"model.activation does not apply to kind {self.kind!r}")
        if self.kernel_size is not None and self.kernel_size % 2 != 1:
            raise ValueError(f"model.kernel_size={self.kernel_size} must be odd")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # fields added after runs were stored are left out while unset, so the config (and its
        # hash, the run id) of every model that does not use them stays as it was
        fields = handler(self)
        for name in _LATER_FIELDS:
            if fields.get(name) is None:
                fields.pop(name, None)
        return fields

    def min_parameters(self, width: int) -> int | None:
        """A lower bound on the parameter count at `width` (None for a factory: unknown).

        Counts the width × width weights (n² each; a 3×3 conv 9n², a transformer block 12n²)
        and two n-sized ones (input and output at fan 1): the data's sizes only add to it.
        """
        n, depth = width, self.depth
        squares = {
            "mlp": depth - 2,  # d_in → n → … → n → d_out
            "linear": 1,  # fixed depth 3
            "cnn": 9 * (depth - 1),  # 3×3 convs n → n after the first
            "convmixer": depth,  # a 1×1 pointwise n → n per block (depthwise: k²·n)
            "resmlp": 2 * depth,  # fc1, fc2 per block
            "transformer": 12 * depth,  # q, k, v, o: 4n²; mlp n → 4n → n: 8n²
            "hf": 12 * depth,  # the same blocks (a gated MLP's three 8n/3 matrices: 8n²)
        }.get(self.kind)
        return None if squares is None else squares * n * n + 2 * n


# --------------------------------------------------------------------------------------------
# data: one spec class per kind of `richness.data.load_dataset`, chosen by `kind`
# --------------------------------------------------------------------------------------------

_DATA_KINDS = ("digits", "synthetic", "cifar10", "chars", "text")


def _path_text(value: Any) -> Any:
    """A path given as a `pathlib.Path` is stored as its string (configs are JSON)."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


_Path = Annotated[StrictStr, BeforeValidator(_path_text), Field(min_length=1)]
_Seq = Annotated[StrictInt, Field(ge=1, le=4096, description="T, tokens per input window")]
_Standardize = StrictBool | Literal["feature", "channel"]


class _DataCommon(_Strict):
    """The sizes and seed every kind takes; each kind adds the keyword arguments of its loader.

    Types are strict (`n_train: true` and `n_train: "64"` are refused) and unknown keys are
    refused, so a typo fails the spec instead of every run. Defaults equal the loader's.
    """

    kind: str  # each kind's Literal, with its default
    n_train: StrictInt = Field(256, ge=1, description="training points (windows for text)")
    n_test: StrictInt | None = Field(
        256, ge=0, description="test points; null: every point left (digits, cifar10, text)"
    )
    n_probe: StrictInt = Field(128, ge=1, description="probe points, disjoint from training")
    seed: StrictInt = Field(
        0, ge=0, le=2**63 - 1, description="fixes the split: the same data for every run"
    )

    # Kinds that existed before per-kind specs dump, besides `kind` and the sizes, only the
    # fields written in the spec (as the old open DataSpec did), so their runs keep the hashes
    # of older stores; a new kind dumps every field.
    _dump_written_only: ClassVar[bool] = True
    _reads_files: ClassVar[bool] = False  # checked by richness.data.check_dataset (torch loads)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        fields = handler(self)
        if not self._dump_written_only:
            return fields
        always = {"kind", *_DataCommon.model_fields}
        return {k: v for k, v in fields.items() if k in always or k in self.model_fields_set}

    @model_validator(mode="after")
    def _files_hold_the_data(self, info: ValidationInfo) -> Self:
        skip = isinstance(info.context, dict) and info.context.get("check_files") is False
        if self._reads_files and not skip:  # the loader's checks, before any run is stored
            from richness.data import check_dataset

            try:
                check_dataset(**self.model_dump())
            except OSError as err:  # pydantic turns ValueError alone into a validation error
                raise ValueError(str(err)) from None
        return self


class DigitsData(_DataCommon):
    """scikit-learn's 1797 handwritten digits, 8x8, 10 classes (ships with scikit-learn)."""

    kind: Literal["digits"] = "digits"
    as_images: StrictBool = Field(False, description="(N, 1, 8, 8) inputs for CNNs")
    standardize: _Standardize = Field(True, description="statistics of the training split")
    center_targets: StrictBool = Field(False, description="one-hot minus 1/10")


class SyntheticData(_DataCommon):
    """Teacher-student regression, x ~ N(0, I): a linear or two-layer teacher."""

    kind: Literal["synthetic"] = "synthetic"
    n_test: StrictInt = Field(256, ge=0, description="fresh test points (no pool to take from)")
    d_in: StrictInt = Field(64, ge=1, description="input dimension")
    d_out: StrictInt = Field(1, ge=1, description="output dimension O")
    teacher: Literal["linear", "nonlinear"] = "linear"
    activation: Literal["tanh", "relu"] = Field("tanh", description="the nonlinear teacher's φ")
    teacher_width: StrictInt = Field(128, ge=1, description="the nonlinear teacher's width")
    noise: float = Field(
        0.0, ge=0, strict=True, allow_inf_nan=False, description="label noise std, y_train only"
    )
    teacher_seed: StrictInt | None = Field(
        None, ge=0, le=2**63 - 1, description="teacher weights' seed (null: seed)"
    )


class Cifar10Data(_DataCommon):
    """CIFAR-10 from a local directory, official binary or python files (checked when validated)."""

    kind: Literal["cifar10"] = "cifar10"
    data_dir: _Path = Field(
        ..., description="the batches' directory, or its parent holding cifar-10-batches-*"
    )
    as_images: StrictBool = Field(True, description="False: (N, 3072) inputs")
    standardize: _Standardize = Field(True, description="per channel, training subset")
    center_targets: StrictBool = Field(False, description="one-hot minus 1/10")
    _reads_files: ClassVar[bool] = True


class CharsData(_DataCommon):
    """Next-character prediction on a generated English-like corpus (V = 28, no download)."""

    kind: Literal["chars"] = "chars"
    n_test: StrictInt = Field(256, ge=0, description="test windows (generated, no pool)")
    seq_len: _Seq = 32


class TextData(_DataCommon):
    """Next-token prediction on the user's UTF-8 text files (WikiText format).

    Every file is read and tokenized when the spec is validated: a missing, empty, non-UTF-8
    or too short file fails the spec, naming the file and what it holds.
    """

    kind: Literal["text"] = "text"
    path: _Path = Field(..., description="the training text, e.g. wiki.train.tokens")
    test_path: _Path | None = Field(
        None, description="the test text (e.g. wiki.test.tokens); null: held-out windows of path"
    )
    tokenizer: Literal["char", "word"] = Field("char", description="characters or words")
    seq_len: _Seq = 32
    max_vocab: StrictInt | None = Field(
        None, ge=2, description="keep the most frequent tokens; the rest read as <unk>"
    )
    _dump_written_only: ClassVar[bool] = False
    _reads_files: ClassVar[bool] = True


def _data_kind(value: Any) -> str:
    kind = value.get("kind", "digits") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in _DATA_KINDS else "digits"  # an unknown kind fails in _known_kind


def _known_kind(value: Any) -> Any:
    if isinstance(value, dict) and value.get("kind", "digits") not in _DATA_KINDS:
        raise PydanticCustomError(
            "data_kind",
            "data.kind={kind} is not a data set kind; allowed: {allowed}",
            {"kind": repr(value["kind"]), "allowed": ", ".join(map(repr, _DATA_KINDS))},
        )
    return value


AnyDataSpec = Annotated[
    Annotated[DigitsData, Tag("digits")]
    | Annotated[SyntheticData, Tag("synthetic")]
    | Annotated[Cifar10Data, Tag("cifar10")]
    | Annotated[CharsData, Tag("chars")]
    | Annotated[TextData, Tag("text")],
    Discriminator(_data_kind),
    BeforeValidator(_known_kind),
]
_DATA_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyDataSpec)


class DataSpec:
    """The data set (see `richness.data.load_dataset`): one of the per-kind specs above.

    As a field type it validates a mapping by its `kind` (default "digits") into
    `DigitsData`, `SyntheticData`, `Cifar10Data`, `CharsData` or `TextData`; called,
    ``DataSpec(**fields)`` returns that instance (``DataSpec()``: the default digits).
    ``model_dump()`` gives `kind` and the loader's keyword arguments.

    The kinds that read files (cifar10, text) check them when validated, through
    `richness.data.check_dataset`; a reader of stored configs that need not load the data (a
    report on another machine) validates with ``context={"check_files": False}``.
    """

    def __new__(cls, **fields: Any) -> Any:
        return _DATA_ADAPTER.validate_python(fields)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return handler.generate_schema(AnyDataSpec)


class ScheduleSpec(_Typed):
    """η0's multiplier over the steps (torch's LambdaLR, so every layer's factor stays):
    a linear warmup from 0 over `warmup_steps`, then constant, or a linear or cosine decay to
    `final_ratio`·η0 at the last step."""

    kind: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0, description="steps of linear warmup from 0 to η0")
    final_ratio: float = Field(0.0, ge=0, le=1, description="η at the last step over η0")


class OptimizerSpec(_Typed):
    kind: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(
        ...,
        allow_inf_nan=True,  # inf and nan reach `_finite_positive`, whose message has the range
        description="η0, the base learning rate: finite, > 0",
    )
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    schedule: ScheduleSpec | None = Field(None, description="None: η0 at every step")

    @field_validator("lr")
    @classmethod
    def _finite_positive(cls, lr: float) -> float:
        if not 0 < lr < math.inf:
            raise ValueError(f"η0 = {lr} must be a finite number > 0")
        return lr

    def states(self) -> int:
        """Tensors the optimizer keeps per parameter: SGD's momentum buffer, Adam's two moments."""
        if self.kind == "sgd":
            return int(self.momentum > 0)
        return 2


class MeasureSpec(_Typed):
    steps: list[int] | None = Field(None, description="steps to measure at (0 = init)")
    metrics: list[str] = Field(
        default_factory=lambda: ["default", "weights"],
        description="metric names or groups (`richness.measure.meter.expand_metrics`)",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        from richness.measure.meter import expand_metrics  # torch: only once a spec names some

        expand_metrics(metrics)
        return metrics


def _physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


CLASS_KINDS = ("digits", "cifar10", "chars", "text")
"""Data kinds whose targets are one-hot rows (classes, or next tokens at every position)."""


def check_loss(loss: str, data_kind: str) -> None:
    """Cross-entropy needs class targets: a data kind of `CLASS_KINDS`.

    Raises:
      ValueError: loss 'cross_entropy' on regression data (synthetic teachers).
    """
    if loss == "cross_entropy" and data_kind not in CLASS_KINDS:
        raise ValueError(
            f"loss 'cross_entropy' needs class or token targets (data.kind in {CLASS_KINDS}), "
            f"got data.kind={data_kind!r}: use loss 'mse'"
        )


class SweepSpec(_Typed):
    """A sweep: every field states its unit and range (STYLE.md, nanoGPT habit 2)."""

    name: str = Field("sweep", min_length=1)
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    widths: list[int] = Field(..., min_length=1, description="hidden widths n, each ≥ 1")
    richness: list[float] = Field(default_factory=list, description="r values in [0, 0.5]")
    presets: list[str] = Field(default_factory=list, description=f"any of {PRESETS}")
    gauges: list[str] = Field(default_factory=lambda: ["stp"], description=f"any of {GAUGES}")
    gamma: float = Field(
        1.0,
        ge=1e-6,
        le=1e6,
        description="prefactor γ of α = γ·n^r, in [1e-6, 1e6]: the tables hold γ^±2 as floats",
    )
    base_width: int | Literal["absolute"] | None = Field(
        None, description="n0 (≥ 1); None: the smallest width; 'absolute': the tutorial's tables"
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="each in [0, 2**63 - 1] (torch.manual_seed's signed 64-bit range)",
    )
    optimizer: OptimizerSpec
    steps: int = Field(5, ge=1, description="optimizer steps per run")
    batch_size: int | None = Field(None, ge=1, description="None: full batch")
    center: bool = Field(True, description="train f − f0 (research/notes.md)")
    loss: Literal["mse", "cross_entropy"] = Field(
        "mse", description="½‖f − y‖², or cross-entropy on classes / next tokens (per position)"
    )
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

    @field_validator("seeds")
    @classmethod
    def _seeds_in_range(cls, seeds: list[int]) -> list[int]:
        bad = [s for s in seeds if not 0 <= s < 2**63]
        if bad:
            raise ValueError(f"seeds must be integers in [0, 2**63 - 1], got {bad}")
        return seeds

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
        check_loss(self.loss, self.data.kind)
        self._fits_in_memory()
        return self

    def _fits_in_memory(self) -> None:
        """Refuses a sweep whose widest model cannot train in this machine's memory.

        A lower bound: parameters (`ModelSpec.min_parameters`) × bytes per float × (weights +
        gradients + optimizer states); activations, data and the Meter only add to it.
        """
        width = max(self.widths)
        params = self.model.min_parameters(width)
        memory = _physical_memory()
        if params is None or memory is None:
            return
        floats = 2 + self.optimizer.states()
        need = params * (8 if self.dtype == "float64" else 4) * floats
        if need > memory:
            raise ValueError(
                f"widths: the largest, {width}, makes a {self.model.kind} of depth "
                f"{self.model.depth} with ≥ {params:.3g} parameters, which need ≥ {need:.3g} "
                f"bytes to train ({self.dtype}, {floats} floats per parameter), more than this "
                f"machine's memory ({memory:.3g} bytes); use smaller widths or depth"
            )

    def resolved_base_width(self) -> int | None:
        if self.base_width == "absolute":
            return None
        return self.base_width if self.base_width is not None else min(self.widths)


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


def expand(spec: SweepSpec) -> list[RunConfig]:
    """One `RunConfig` per (width, point, gauge, seed), in a stable order.

    Measured steps default to 0, 1, the last and about every fifth in between.
    """
    from richness.config import RunConfig  # the run config builds on this module's sections

    points: list[tuple[float | None, str | None, str | None]] = [
        (r, None, gauge) for r in spec.richness for gauge in spec.gauges
    ]
    points += [(None, name, None) for name in spec.presets]
    steps = spec.measure.steps
    if steps is None:
        steps = sorted({1, spec.steps} | set(range(0, spec.steps + 1, max(1, spec.steps // 5))))
    train = {
        **spec.optimizer.model_dump(),
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "loss_bound": spec.loss_bound,
    }
    measure = {"steps": steps, "metrics": spec.measure.metrics}
    return [
        RunConfig(
            model=spec.model,
            data=spec.data,
            width=width,
            seed=seed,
            r=r,
            preset=name,
            gauge=gauge,
            gamma=spec.gamma,
            base_width=spec.resolved_base_width(),
            center=spec.center,
            loss=spec.loss,
            train=train,
            measure=measure,
            dtype=spec.dtype,
            precision=spec.precision,
            device=spec.device,
        )
        for width, (r, name, gauge), seed in itertools.product(spec.widths, points, spec.seeds)
    ]


def run_count(spec: SweepSpec) -> int:
    """How many runs the spec expands to."""
    points = len(spec.richness) * len(spec.gauges) + len(spec.presets)
    return math.prod((len(spec.widths), points, len(spec.seeds)))
