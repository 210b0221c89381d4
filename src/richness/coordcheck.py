"""`richness check`: a coordinate check of a user's model factory `f(width) -> nn.Module`.

Trains the model a few steps (SGD, Adam or AdamW; MSE or cross-entropy) at several widths and
seeds, on the user's batch or on synthetic teacher data sized to the model's first and last
layers, at a given learning rate or at the largest one on `LR_GRID` at which the smallest width
trains stably (`stable_lr`; a given rate that is unstable there is reported, `UnstableError`),
measures it with the Meter and fits the width exponents,
like microsoft/mup's coordinate check but with slopes, confidence intervals and the theory's
prediction side by side (THEORY.md §4, C1–C5), each slope judged against it by
`richness.analysis.agreement` at ``TOLERANCE``. With a table (`p`) the model is parameterized
first; without one it is trained as it is, with one plain learning rate, so the check judges
the user's own parameterization (e.g. SP: ‖Δf‖ grows with width, C9). A model whose first
weight layer is an embedding (a language model; Hugging Face models through
`richness.nn.hf.Logits`) is fed uniformly random token ids of its vocabulary, with N(0, 1/O)
targets for its O outputs (unit norm per example, whatever the vocabulary and length).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from richness._widths import across_widths, checked_widths
from richness.analysis import fit_exponents
from richness.analysis.agreement import agreement
from richness.data import Dataset, load_dataset
from richness.measure.meter import Meter
from richness.nn import optimizer, parameterize
from richness.nn.layers import layout_of
from richness.scaling import Parameterization
from richness.train import RunOutcome, train

__all__ = [
    "LR_GRID",
    "SCALE_FREE",
    "TOLERANCE",
    "UnstableError",
    "coord_check",
    "load_factory",
    "stability",
    "stable_lr",
]

# what a well-behaved network does whatever its richness (THEORY.md §2, §4): the expectation
# of a series without a prediction (a model trained as it is)
SCALE_FREE = {"h_rms": 0.0, "df": 0.0, "max_ratio": 0.0}
TOLERANCE = 0.1  # exponent units: the band around the expectation (`agreement`)


def load_factory(path: str) -> Callable[[int], nn.Module]:
    """Imports 'module:function' (the current directory is importable).

    Raises:
      ValueError: the string is not 'module:function' or can't be imported.
    """
    module_name, sep, fn_name = path.partition(":")
    if not sep or not module_name or not fn_name:
        raise ValueError(f"factory={path!r} must be 'module:function', e.g. my_models:make_mlp")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return getattr(importlib.import_module(module_name), fn_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"factory={path!r} can't be imported: {err}") from None


def _io_sizes(model: nn.Module) -> tuple[int, int, bool]:
    """(d_in or vocabulary size, d_out, whether the model reads token ids)."""
    layers = [m for m in model.modules() if layout_of(m) is not None]
    if not layers:
        raise ValueError("the model has no Linear, Conv or Embedding layer to check")
    first, last = layout_of(layers[0]), layout_of(layers[-1])
    tokens = first.fan_in_dim is None
    d_in = layers[0].weight.shape[1 - first.fan_out_dim if tokens else first.fan_in_dim]
    return d_in, layers[-1].weight.shape[last.fan_out_dim], tokens


def _one_hot_classes(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class targets from regression targets (N, positions·C): the argmax class per position."""
    classes = y.unflatten(-1, (-1, n_classes)).argmax(-1)
    return nn.functional.one_hot(classes, n_classes).flatten(1).to(y.dtype)


def _vector_data(
    shape: tuple[int, ...], d_out: int, n_train: int, n_probe: int, loss: str
) -> Dataset:
    """The synthetic teacher's data (seed 0), inputs reshaped to `shape`; for cross-entropy the
    teacher's argmax class as a one-hot target (C = d_out classes)."""
    data = load_dataset(
        "synthetic",
        n_train=n_train,
        n_test=0,
        n_probe=n_probe,
        d_in=math.prod(shape),
        d_out=d_out,
        seed=0,
    )
    classes = loss == "cross_entropy"
    return Dataset(
        x_train=data.x_train.reshape(-1, *shape),
        y_train=_one_hot_classes(data.y_train, d_out) if classes else data.y_train,
        x_test=data.x_test.reshape(-1, *shape),
        y_test=_one_hot_classes(data.y_test, d_out) if classes else data.y_test,
        x_probe=data.x_probe.reshape(-1, *shape),
        name=data.name,
        n_classes=d_out if classes else None,
    )


def _token_data(
    model: nn.Module, vocab: int, shape: tuple[int, ...], n_train: int, n_probe: int, loss: str
) -> Dataset:
    """Random token ids (N, *shape) (seed 0) and targets for the model's O outputs: N(0, 1/O)
    for MSE, for cross-entropy random next tokens, one-hot per position (O = positions·V)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (n_train + n_probe, *shape), generator=g)
    with torch.no_grad():
        d_out = model(x[:1]).flatten(1).shape[1]
    y = torch.randn(n_train + n_probe, d_out, generator=g) / d_out**0.5  # ‖y_i‖ ≈ 1
    classes = loss == "cross_entropy"
    if classes and d_out % vocab:
        raise ValueError(f"outputs {d_out} per example are not positions × vocabulary {vocab}")
    y = _one_hot_classes(y, vocab) if classes else y
    return Dataset(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[:0],
        y_test=y[:0],
        x_probe=x[n_train:],
        name="random-tokens",
        n_classes=vocab if classes else None,
    )


def _user_data(
    batch: Callable[[], tuple[torch.Tensor, ...] | torch.Tensor],
    model: nn.Module,
    loss: str,
    n_probe: int,
) -> Dataset:
    """The user's batch (`--data module:function`: x, or (x, y)): the first N − n_probe inputs
    train, the last n_probe are the probes; without y, targets as for the synthetic data."""
    got = batch()
    x, y = (
        (got, None) if isinstance(got, torch.Tensor) else (got[0], got[1] if len(got) > 1 else None)
    )
    if len(x) <= n_probe:
        raise ValueError(f"--data gave {len(x)} inputs: need more than n_probe={n_probe}")
    with torch.no_grad():
        d_out = model(x[:1]).flatten(1).shape[1]
    n_classes = None
    if y is None:
        g = torch.Generator().manual_seed(0)
        y = torch.randn(len(x), d_out, generator=g) / d_out**0.5
    elif y.dim() == 1 or (y.dim() == 2 and not y.is_floating_point()):  # class indices
        n_classes = d_out // (1 if y.dim() == 1 else y.shape[1])
        y = nn.functional.one_hot(y.long(), n_classes).flatten(1).float()
    if y.shape != (len(x), d_out):
        raise ValueError(
            f"--data targets of shape {tuple(y.shape)} don't match the model's outputs "
            f"({len(x)}, {d_out}): give class indices (N,) / (N, positions) or rows (N, {d_out})"
        )
    if loss == "cross_entropy" and n_classes is None:
        n_classes = d_out  # one-hot rows given, or classes drawn from the targets below
        y = _one_hot_classes(y, n_classes)
    n = len(x) - n_probe
    y = y.to(x.dtype if x.is_floating_point() else torch.get_default_dtype())
    return Dataset(
        x_train=x[:n],
        y_train=y[:n],
        x_test=x[:0],
        y_test=y[:0],
        x_probe=x[n:],
        name="user-data",
        n_classes=n_classes,
    )


LR_GRID = tuple(4.0**-k for k in range(-1, 9))
"""The learning rates the check tries, largest first: 4, 1, 1/4, …, 4^-8 ≈ 1.5e-5."""
GROWTH_LIMIT = 10.0
"""Activations count as exploding when a layer's RMS grows more than this factor in the steps."""


class UnstableError(ValueError):
    """The given learning rate makes the base-width model unstable; the message says how and
    suggests a smaller one."""


def _optimizer(model: nn.Module, p, kind: str, lr: float) -> torch.optim.Optimizer:
    """`rn.optimizer` with a table, else torch's own optimizer with one lr for every layer."""
    if p is not None:
        return optimizer(model, lr=lr, kind=kind)
    return {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](
        model.parameters(), lr=lr
    )


def stability(
    factory: Callable[[int], nn.Module],
    width: int,
    other: int,
    data: Dataset,
    *,
    p: Parameterization | None,
    kind: str,
    lr: float,
    loss: str,
    steps: int,
    center: bool,
) -> str | None:
    """Why `lr` is unstable at `width` (seed 0), or None when it trains stably there: the loss
    falls over the steps, it does not diverge, and no layer's RMS activation grows more than
    `GROWTH_LIMIT`-fold (order-one activations, THEORY.md §2)."""
    torch.manual_seed(0)
    model = factory(width)
    if p is not None:
        parameterize(model, p, base=factory(other))
    meter = Meter(model, data.x_probe, metrics=["h_rms"])
    opt = _optimizer(model, p, kind, lr)
    # the loss recorded at step k is the forward of step k, before its update: one step more
    # reads the loss after `steps` updates
    end = steps + 1
    outcome = train(
        model,
        data,
        opt,
        steps=end,
        meter=meter,
        measure_steps=[0, end],
        center=center,
        loss=loss,
    )
    if outcome.status == "diverged":
        return f"the loss diverged at step {outcome.diverged_step}"
    by = {(step, layer, q): v for step, layer, q, v in outcome.rows}
    first, last = by[(0, "", "loss")], by[(end, "", "loss")]
    if not last < first:
        return f"the loss rose from {first:.4g} to {last:.4g} in {steps} steps"
    growth = {
        layer: by[(end, layer, "h_rms")] / by[(0, layer, "h_rms")]
        for (step, layer, q) in by
        if q == "h_rms" and step == 0 and by[(0, layer, "h_rms")] > 0
    }
    worst = max(growth, key=growth.get, default=None)
    if worst is not None and growth[worst] > GROWTH_LIMIT:
        return f"the RMS activation of {worst} grew {growth[worst]:.3g}-fold in {steps} steps"
    return None


def stable_lr(factory, width: int, other: int, data: Dataset, *, below: float = math.inf, **kw):
    """The largest `LR_GRID` rate below `below` at which the width-`width` model trains stably
    (`stability`), or None when none does."""
    for lr in LR_GRID:
        if lr < below and stability(factory, width, other, data, lr=lr, **kw) is None:
            return lr
    return None


def coord_check(
    factory: Callable[[int], nn.Module],
    widths: Sequence[int],
    *,
    p: Parameterization | None = None,
    steps: int = 3,
    lr: float | None = None,
    optimizer_kind: str = "sgd",
    loss: str = "mse",
    data: Callable[[], torch.Tensor | tuple[torch.Tensor, ...]] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    input_shape: Sequence[int] | None = None,
    n_train: int = 128,
    n_probe: int = 64,
    center: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Runs the check and fits the exponents.

    Args:
      factory: f(width) -> nn.Module.
      widths: at least two distinct widths.
      p: a table to parameterize with (roles read against the model at the smallest width),
        or None to train the model as it is with one learning rate.
      steps: optimizer steps per run.
      lr: η0; None: the largest `LR_GRID` rate at which the smallest width trains stably
        (`stable_lr`), recorded in ``fits.attrs["lr"]``.
      optimizer_kind: "sgd", "adam" or "adamw" (with a table: Adam's tables for both Adams).
      loss: "mse" or "cross_entropy" (classes: the teacher's argmax, random next tokens).
      data: a function returning a batch of your inputs x, or (x, y) (y: class indices or
        target rows); the last `n_probe` inputs are the probes. None: synthetic data.
      seeds: init seeds (the data is the same for every run).
      input_shape: one input's shape; default (d_in,) from the first Linear layer, or (16,)
        (the sequence length) for a model that reads token ids.
      n_train, n_probe: training and probe points.
      center: train f − f0.

    Returns:
      (runs, metrics, fits) DataFrames: runs and metrics as a store's (`run_frames`); fits
      `fit_exponents`' at the last step, with "expected" (the prediction, else the
      `SCALE_FREE` value, else NaN) and "agreement" (`agreement` of the slope with it at
      `TOLERANCE`; None without an expectation); ``fits.attrs``: "lr" and whether the check
      chose it ("lr_chosen").

    Raises:
      UnstableError: the given lr makes the smallest width unstable (`stability`; the message
        names the lr and suggests the largest stable one below it).
      ValueError: fewer than two widths, a non-positive width or lr, an unknown optimizer, no
        stable lr on the grid.
    """
    widths = checked_widths(widths)
    if lr is not None and not 0 < lr < math.inf:
        raise ValueError(f"lr={lr} must be a finite number > 0")
    if optimizer_kind not in ("sgd", "adam", "adamw"):
        raise ValueError(f"optimizer={optimizer_kind!r} is not one of 'sgd', 'adam', 'adamw'")
    probe_model = factory(widths[0])
    d_in, d_out, tokens = _io_sizes(probe_model)
    shape = tuple(input_shape) if input_shape else (16,) if tokens else (d_in,)
    if data is not None:
        dataset = _user_data(data, probe_model, loss, n_probe)
    elif tokens:
        dataset = _token_data(probe_model, d_in, shape, n_train, n_probe, loss)
    else:
        dataset = _vector_data(shape, d_out, n_train, n_probe, loss)
    base = {
        "p": p, "kind": optimizer_kind, "loss": loss, "steps": steps, "center": center,
    }  # fmt: skip
    chosen = lr is None
    if chosen:
        lr = stable_lr(factory, widths[0], widths[1], dataset, **base)
        if lr is None:
            raise ValueError(
                f"no learning rate in {LR_GRID[0]:g} … {LR_GRID[-1]:.2g} trains width "
                f"{widths[0]} stably ({optimizer_kind}, {loss}): check the model and the data"
            )
    else:
        why = stability(factory, widths[0], widths[1], dataset, lr=lr, **base)
        if why is not None:
            smaller = stable_lr(factory, widths[0], widths[1], dataset, below=lr, **base)
            hint = f"; try --lr {smaller:g}" if smaller else "; no smaller rate on the grid helps"
            raise UnstableError(
                f"unstable: at lr={lr:g} the base-width model (width {widths[0]}) is unstable: "
                f"{why}{hint} (or omit --lr to let the check choose)"
            )

    def trained(model: nn.Module, meter: Meter, seed: int) -> RunOutcome:
        return train(
            model,
            dataset,
            _optimizer(model, p, optimizer_kind, lr),
            steps=steps,
            meter=meter,
            measure_steps=list(range(steps + 1)),
            center=center,
            seed=seed,
            loss=loss,
        )

    runs, metrics = across_widths(
        factory, widths, seeds, dataset.x_probe, trained, p=p, metrics=["default", "weights"]
    )
    fits = fit_exponents(
        runs, metrics, quantities=[*SCALE_FREE, "dh", "f0"], steps=[steps], n_boot=500
    )
    expected = [
        pred if not math.isnan(pred) else SCALE_FREE.get(q, math.nan)
        for q, pred in zip(fits["quantity"], fits["predicted"], strict=True)
    ]
    fits["expected"] = expected
    fits["agreement"] = [
        None if math.isnan(goal) else agreement(f.slope, f.ci_low, f.ci_high, goal, TOLERANCE)
        for f, goal in zip(fits.itertuples(), expected, strict=True)
    ]
    fits.attrs.update(lr=lr, lr_chosen=chosen)
    return runs, metrics, fits
