"""A run's parts from its config: data, model (parameterized, seeded), optimizer, schedule, and
the record of what the run is (`identity`). The training loop (`richness.train`) builds every
run through these, alone or as a member of an ensemble.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from richness.config import RunConfig
from richness.data import Dataset, check_vocabulary, load_dataset
from richness.measure.meter import measured_layers
from richness.nn import models, optimizer, parameterize
from richness.nn.hf_models import causal_lm
from richness.nn.multiplier import Multiplier
from richness.scaling import Parameterization, predicted_series

__all__ = [
    "build_model",
    "build_optimizer",
    "build_parameterized",
    "build_scheduler",
    "flattens",
    "identity",
    "identity_of",
    "load_data",
    "schedule_factor",
    "setup",
]


def build_model(spec, width: int, data: Dataset) -> nn.Module:
    """The model a `ModelSpec` names at `width`, sized to the data's inputs and outputs."""
    kind = spec.kind
    kw = spec.model_dump(exclude_none=True, exclude={"kind", "factory", "d_in", "d_out"})
    if kind == "mlp":
        return models.MLP(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out, **kw)
    if kind == "linear":
        return models.LinearNet(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out)
    if kind == "cnn":
        return models.CNN(data.input_shape[0], width=width, n_classes=data.d_out, **kw)
    if kind == "convmixer":
        return models.ConvMixer(data.input_shape[0], width=width, n_classes=data.d_out, **kw)
    if kind == "resmlp":
        return models.ResMLP(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out, **kw)
    if kind == "transformer":  # token data: x (N, T) ids, n_classes = V
        if data.n_classes is None or data.x_train.is_floating_point():
            raise ValueError(f"model.kind='transformer' needs token data, got {data.name!r}")
        kw.pop("activation", None)  # the spec's default; the transformer's MLPs use GELU
        n_heads = kw.pop("n_heads", None if "d_head" in kw else 4)
        seq_len = data.input_shape[0]
        return models.Transformer(data.n_classes, width, n_heads=n_heads, seq_len=seq_len, **kw)
    if kind == "hf":  # a transformers causal LM on token data
        if data.n_classes is None or data.x_train.is_floating_point():
            raise ValueError(f"model.kind='hf' needs token data, got {data.name!r}")
        heads = {"n_heads": spec.n_heads} if spec.d_head is None else {"d_head": spec.d_head}
        return causal_lm(
            spec.architecture,
            width=width,
            vocab_size=data.n_classes,
            seq_len=data.input_shape[0],
            depth=spec.depth,
            **({"n_heads": 4} if spec.n_heads is None and spec.d_head is None else heads),
        )
    module_name, _, fn_name = spec.factory.partition(":")  # kind "factory"
    return getattr(importlib.import_module(module_name), fn_name)(width)


def flattens(config: RunConfig) -> bool:
    """Whether the run's model takes flat vectors (MLP, linear net, residual MLP), not images."""
    return config.model.kind in ("mlp", "linear", "resmlp")


def load_data(config: RunConfig) -> Dataset:
    """The run's data set, in its dtype and on its device (the same for every seed)."""
    fields = config.data.model_dump()
    kind = fields.pop("kind")
    dataset = load_dataset(kind, dtype=getattr(torch, config.dtype), **fields)
    return dataset.to(device=config.device)


def build_parameterized(
    config: RunConfig, data: Dataset, table: Parameterization | None = None
) -> nn.Module:
    """The run's model at its width, parameterized by its table (or `table`: one a config
    cannot name, such as r off the scale for the claims that study it), initialized from its
    seed.

    Roles are read against the same model at half the width (`parameterize(base=...)`).

    Raises:
      ValueError: token data with ids beyond the model's first embedding (`check_vocabulary`).
    """
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.width, data)
    if not data.x_train.is_floating_point():  # token ids: each must have an embedding row
        tokens = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
        if tokens is not None:
            check_vocabulary(data, tokens.num_embeddings)
    model = model.to(device=config.device, dtype=getattr(torch, config.dtype))
    base = build_model(config.model, max(1, config.width // 2) if config.width > 1 else 2, data)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    parameterize(model, table or config.parameterization(), base=base, generator=generator)
    return model


def build_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The run's optimizer (`rn.optimizer` with the config's train settings)."""
    t = config.train
    return optimizer(model, lr=t.lr, kind=t.kind, momentum=t.momentum, weight_decay=t.weight_decay)


def schedule_factor(schedule, steps: int):
    """η_k / η0 for the k-th optimizer step (k = 0 … steps − 1) of a `ScheduleSpec`: linear
    warmup (k + 1)/W over W = warmup_steps, then constant, or a linear or cosine decay from 1
    to final_ratio at the last step."""
    warmup, final = schedule.warmup_steps, schedule.final_ratio

    def factor(k: int) -> float:
        if k < warmup:
            return (k + 1) / warmup
        progress = min(1.0, (k - warmup) / max(1, steps - warmup - 1))
        if schedule.kind == "linear":
            return 1 - (1 - final) * progress
        if schedule.kind == "cosine":
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


def build_scheduler(
    config: RunConfig, opt: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The run's learning-rate schedule as torch's LambdaLR (each group's lr = its own initial
    lr · factor, so the table's per-layer factors stay); None without one."""
    schedule = config.train.schedule
    if schedule is None:
        return None
    return torch.optim.lr_scheduler.LambdaLR(opt, schedule_factor(schedule, config.train.steps))


def setup(
    config: RunConfig | dict[str, Any], table: Parameterization | None = None
) -> tuple[nn.Module, Dataset]:
    """The parameterized model (by the config's table, or `table`) and the data of a run
    config, initialized from its seed."""
    config = RunConfig.parse(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_data(config)
    return build_parameterized(config, data, table), data


def identity(model: nn.Module, layers: Sequence[str], table: Parameterization) -> dict[str, Any]:
    """What a run is, recorded with it: its measured layers in order, each one's role and
    representation index ℓ = position + 1, and the width exponents theory predicts for each of
    its Meter keys (`scaling.predicted_series`; "predicted_init" overrides at step 0).

    The one source of a run's layer index: analysis, report, check and claims read this.
    """
    modules = dict(model.named_modules())
    entries = []
    for ell, name in enumerate(layers, start=1):
        chain = getattr(getattr(modules[name], "parametrizations", None), "weight", None)
        role = chain[0].role if chain is not None and isinstance(chain[0], Multiplier) else None
        entries.append({"name": name, "role": role, "ell": ell})
    roles = [entry["role"] for entry in entries]
    by_position = ["input"] + ["hidden"] * (len(entries) - 2) + ["output"]
    # the measured roles when they differ from position (a ConvMixer's depthwise convs)
    own = roles if None not in roles and len(roles) >= 2 and roles != by_position else None
    predicted, predicted_init = predicted_series(table, list(layers), roles=own)
    return {
        "depth": len(layers),
        "layers": entries,
        "predicted": predicted,
        "predicted_init": predicted_init,
    }


def identity_of(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """The `identity` of a run from its config alone, for runs stored before identities were
    recorded (`Store` migrates such files on open). The model is built at min(width, 64): the
    layers, roles and predicted exponents do not depend on the width.
    """
    config = RunConfig.parse(config)
    small = config.model_copy(update={"width": min(config.width, 64), "dtype": "float32"})
    data = load_data(small)
    model = build_parameterized(small, data)
    return identity(model, measured_layers(model), config.parameterization())
