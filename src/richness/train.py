"""One training run from a resolved config: the loop every sweep, claim and benchmark uses.

A run config is a plain JSON-able dict (the sweep spec expands to these; its hash is the run's
identity in the store). Keys:
  model:  {"kind": "mlp"|"linear"|"cnn"|"factory", depth, activation, bias, factory: "mod:fn"}
  data:   {"kind": "digits"|"synthetic"|"cifar10", n_train, n_test, n_probe, seed, ...}
  width, seed, r | preset, gauge, gamma, base_width (None: absolute tables), optimizer
  ("sgd"|"adam", the table's family), depth (weight layers, for predictions)
  center: train f − f0 (see below)
  train:  {"kind": "sgd"|"adam"|"adamw", lr, momentum, weight_decay, steps, batch_size (None:
           full batch), loss_bound}
  measure: {"steps": [...], "metrics": [...]}
  dtype ("float32"|"float64"), device ("cpu"|"cuda"), threads (intra-op threads or None)
  precision: "bf16" trains with bfloat16 matmuls (see `autocast`); absent: full precision

Centering (research/notes.md): with `center` the loss sees f(x) − f(x; θ0), the initial output
cached per training point, so the random f0 ~ n^{−r} does not drive the updates; Meter's f0
and df are the same with or without it (C3 is measured on the uncentered output).
Loss: ½·mean over the batch of ‖f − y‖² (sum over outputs).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from richness.data import Dataset, load_dataset
from richness.measure.meter import Meter
from richness.nn import models, optimizer, parameterize
from richness.scaling import Parameterization, preset, richness

__all__ = [
    "RunOutcome",
    "autocast",
    "build_model",
    "build_optimizer",
    "build_parameterized",
    "class_accuracy",
    "flattens",
    "load_data",
    "parameterization_of",
    "run",
    "setup",
    "train",
]


@dataclass
class RunOutcome:
    """What a run produced: its status, metric rows (step, layer, quantity, value) and timing."""

    status: str  # "done" | "diverged" | "failed"
    rows: list[tuple[int, str, str, float]] = field(default_factory=list)
    seconds: float = 0.0
    diverged_step: int | None = None
    error: str | None = None


def parameterization_of(config: dict[str, Any]) -> Parameterization:
    """The table a run config names: a preset, or richness r in a gauge."""
    family = config.get("optimizer", "sgd")
    base_width = config.get("base_width")
    gamma = config.get("gamma", 1.0)
    if config.get("preset"):
        return preset(config["preset"], config.get("gauge"), gamma, family, base_width)
    return richness(config["r"], config.get("gauge") or "stp", gamma, family, base_width)


def build_model(spec: dict[str, Any], width: int, data: Dataset) -> nn.Module:
    """The model a spec names at `width`, sized to the data's inputs and outputs."""
    kind = spec.get("kind", "mlp")
    kw = {k: v for k, v in spec.items() if k not in ("kind", "factory", "d_in", "d_out")}
    if kind == "mlp":
        return models.MLP(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out, **kw)
    if kind == "linear":
        return models.LinearNet(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out)
    if kind == "cnn":
        return models.CNN(data.input_shape[0], width=width, n_classes=data.d_out, **kw)
    if kind == "resmlp":
        return models.ResMLP(d_in=math.prod(data.input_shape), width=width, d_out=data.d_out, **kw)
    if kind == "transformer":  # token data: x (N, T) ids, n_classes = V (load_dataset "chars")
        if data.n_classes is None or data.x_train.is_floating_point():
            raise ValueError(
                f"model.kind='transformer' needs token data (chars), got {data.name!r}"
            )
        kw.pop("activation", None)  # the spec's default; the transformer's MLPs use GELU
        n_heads = kw.pop("n_heads", None if "d_head" in kw else 4)
        seq_len = data.input_shape[0]
        return models.Transformer(data.n_classes, width, n_heads=n_heads, seq_len=seq_len, **kw)
    if kind == "factory":
        module_name, _, fn_name = spec["factory"].partition(":")
        return getattr(importlib.import_module(module_name), fn_name)(width)
    raise ValueError(
        f"model.kind={kind!r} is not one of 'mlp', 'linear', 'cnn', 'resmlp', 'transformer', "
        "'factory'"
    )


def class_accuracy(prediction: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Fraction of argmax hits against one-hot targets y (N, positions·classes).

    `prediction` is (..., N, positions·classes): leading dims (an ensemble's members) are kept.
    A sequence model is scored at every position.
    """
    per_class = (len(y), -1, n_classes)  # (N, positions, classes)
    guess = prediction.reshape(*prediction.shape[:-2], *per_class).argmax(-1)
    hits = guess == y.reshape(per_class).argmax(-1)
    return hits.to(prediction.dtype).flatten(-2).mean(-1)


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The training forward's precision: "full" (the model's dtype) or "bf16".

    bf16 runs the matmuls and convolutions of the training forward and backward in bfloat16
    (torch.autocast), keeping float32 master weights, optimizer state and loss; measurements
    run outside it, in float32. Not for equivalence checks or linearization gaps below bf16's
    resolution (2^-8 relative).
    """
    if precision == "full":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    raise ValueError(f"precision={precision!r} is not one of 'full', 'bf16'")


def train(
    model: nn.Module,
    data: Dataset,
    opt: torch.optim.Optimizer,
    *,
    steps: int,
    meter: Meter | None = None,
    measure_steps: list[int] | tuple[int, ...] = (),
    batch_size: int | None = None,
    center: bool = True,
    loss_bound: float = 1e6,
    seed: int = 0,
    flatten: bool = False,
    precision: str = "full",
) -> RunOutcome:
    """Trains `model` by `opt` on MSE for `steps` steps, measuring with `meter` at `measure_steps`.

    Returns:
      A RunOutcome with rows for every measured step (meter metrics, "loss", "test_loss",
      "test_acc" for classification data),
      status "diverged" (and the step) when the loss turns non-finite or exceeds `loss_bound`.
    """
    x_train = data.x_train.flatten(1) if flatten else data.x_train
    x_test = data.x_test.flatten(1) if flatten else data.x_test
    y_train, y_test = data.y_train, data.y_test
    with torch.no_grad():
        f0_train = model(x_train) if center else torch.zeros_like(y_train)
        f0_test = model(x_test) if center and len(x_test) else torch.zeros_like(y_test)
    batches = torch.Generator().manual_seed(seed)
    outcome = RunOutcome(status="done")
    wanted = set(measure_steps)

    def record(step: int, train_loss: float) -> None:
        if meter is not None:
            for key, value in meter.measure().items():
                quantity, _, layer = key.partition("/")
                outcome.rows.append((step, layer, quantity, value))
        outcome.rows.append((step, "", "loss", train_loss))
        if len(x_test):
            with torch.no_grad():
                prediction = model(x_test) - f0_test
            test = 0.5 * (prediction - y_test).pow(2).sum(1).mean()
            outcome.rows.append((step, "", "test_loss", float(test)))
            if data.n_classes:
                accuracy = class_accuracy(prediction, y_test, data.n_classes)
                outcome.rows.append((step, "", "test_acc", float(accuracy)))

    mixed = autocast(precision, x_train.device)

    def loss_on(index: torch.Tensor | None) -> torch.Tensor:
        if index is None:
            with mixed:
                f = model(x_train)
            residual = f.to(y_train.dtype) - f0_train - y_train
        else:
            with mixed:
                f = model(x_train[index])
            residual = f.to(y_train.dtype) - f0_train[index] - y_train[index]
        return 0.5 * residual.pow(2).sum(1).mean()

    if 0 in wanted:
        with torch.no_grad():
            record(0, float(loss_on(None)))
    for step in range(1, steps + 1):
        index = None
        if batch_size is not None and batch_size < len(x_train):
            index = torch.randperm(len(x_train), generator=batches)[:batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_on(index)
        loss.backward()
        opt.step()
        value = float(loss.detach())  # a sync point, once per step: needed to detect divergence
        if not math.isfinite(value) or value > loss_bound:
            outcome.status, outcome.diverged_step = "diverged", step
            break
        if step in wanted:
            record(step, value)
    return outcome


def run(config: dict[str, Any]) -> RunOutcome:
    """Runs one resolved config end to end; never raises (errors become status "failed")."""
    start = time.perf_counter()
    try:
        outcome = _run(config)
    except Exception:  # a failing run is recorded, the sweep goes on
        outcome = RunOutcome(status="failed", error=traceback.format_exc())
    outcome.seconds = time.perf_counter() - start
    return outcome


def setup(config: dict[str, Any]) -> tuple[nn.Module, Dataset]:
    """The parameterized model and the data of a run config, initialized from its seed."""
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    data = load_data(config)
    return build_parameterized(config, data), data


def load_data(config: dict[str, Any]) -> Dataset:
    """The run's data set, in its dtype and on its device (the same for every seed)."""
    dtype = getattr(torch, config.get("dtype", "float32"))
    data_spec = dict(config["data"])
    kind = data_spec.pop("kind")
    return load_dataset(kind, dtype=dtype, **data_spec).to(device=config.get("device", "cpu"))


def build_parameterized(config: dict[str, Any], data: Dataset) -> nn.Module:
    """The run's model at its width, parameterized by its table, initialized from its seed.

    Roles are read against the same model at half the width (`parameterize(base=...)`).
    """
    dtype = getattr(torch, config.get("dtype", "float32"))
    device = torch.device(config.get("device", "cpu"))
    model_spec = config["model"]
    width = int(config["width"])
    seed = int(config["seed"])
    torch.manual_seed(seed)
    model = build_model(model_spec, width, data).to(device=device, dtype=dtype)
    other = max(1, width // 2) if width > 1 else 2
    base = build_model(model_spec, other, data)
    generator = torch.Generator(device=device).manual_seed(seed)
    parameterize(model, parameterization_of(config), base=base, generator=generator)
    return model


def build_optimizer(config: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """The run's optimizer (`rn.optimizer` with the config's train settings)."""
    train_spec = config["train"]
    return optimizer(
        model,
        lr=train_spec["lr"],
        kind=train_spec.get("kind"),
        momentum=train_spec.get("momentum", 0.0),
        weight_decay=train_spec.get("weight_decay", 0.0),
    )


def flattens(config: dict[str, Any]) -> bool:
    """Whether the run's model takes flat vectors (MLP, linear net, residual MLP), not images."""
    return config["model"].get("kind", "mlp") in ("mlp", "linear", "resmlp")


def _run(config: dict[str, Any]) -> RunOutcome:
    model, data = setup(config)
    train_spec = config["train"]
    opt = build_optimizer(config, model)
    flatten = flattens(config)
    measure = config.get("measure", {})
    x_probe = data.x_probe.flatten(1) if flatten else data.x_probe
    meter = Meter(model, x_probe, metrics=measure.get("metrics", ["default"]), optimizer=opt)
    return train(
        model,
        data,
        opt,
        steps=int(train_spec["steps"]),
        meter=meter,
        measure_steps=measure.get("steps", [train_spec["steps"]]),
        batch_size=train_spec.get("batch_size"),
        center=config.get("center", True),
        loss_bound=train_spec.get("loss_bound", 1e6),
        seed=int(config["seed"]),
        flatten=flatten,
        precision=config.get("precision", "full"),
    )
