"""`richness check`: a coordinate check of a user's model factory `f(width) -> nn.Module`.

Trains the model a few SGD steps at several widths and seeds (synthetic teacher data sized to
the model's first and last layers), measures it with the Meter and fits the width exponents,
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
from richness.nn import optimizer
from richness.nn.layers import layout_of
from richness.scaling import Parameterization
from richness.train import RunOutcome, train

__all__ = ["SCALE_FREE", "TOLERANCE", "coord_check", "load_factory"]

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


def _vector_data(shape: tuple[int, ...], d_out: int, n_train: int, n_probe: int) -> Dataset:
    """The synthetic teacher's data (seed 0), inputs reshaped to `shape`."""
    data = load_dataset(
        "synthetic",
        n_train=n_train,
        n_test=0,
        n_probe=n_probe,
        d_in=math.prod(shape),
        d_out=d_out,
        seed=0,
    )
    return Dataset(
        x_train=data.x_train.reshape(-1, *shape),
        y_train=data.y_train,
        x_test=data.x_test.reshape(-1, *shape),
        y_test=data.y_test,
        x_probe=data.x_probe.reshape(-1, *shape),
        name=data.name,
    )


def _token_data(
    model: nn.Module, vocab: int, shape: tuple[int, ...], n_train: int, n_probe: int
) -> Dataset:
    """Random token ids (N, *shape) and N(0, 1/O) targets for the model's O outputs (seed 0)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (n_train + n_probe, *shape), generator=g)
    with torch.no_grad():
        d_out = model(x[:1]).flatten(1).shape[1]
    y = torch.randn(n_train + n_probe, d_out, generator=g) / d_out**0.5  # ‖y_i‖ ≈ 1
    return Dataset(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[:0],
        y_test=y[:0],
        x_probe=x[n_train:],
        name="random-tokens",
    )


def coord_check(
    factory: Callable[[int], nn.Module],
    widths: Sequence[int],
    *,
    p: Parameterization | None = None,
    steps: int = 3,
    lr: float = 0.05,
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
        or None to train the model as it is with torch.optim.SGD(lr).
      steps: SGD steps per run.
      lr: η0.
      seeds: init seeds (the data is the same for every run).
      input_shape: one input's shape; default (d_in,) from the first Linear layer, or (16,)
        (the sequence length) for a model that reads token ids.
      n_train, n_probe: training and probe points.
      center: train f − f0.

    Returns:
      (runs, metrics, fits) DataFrames: runs and metrics as a store's (`run_frames`); fits
      `fit_exponents`' at the last step, with "expected" (the prediction, else the
      `SCALE_FREE` value, else NaN) and "agreement" (`agreement` of the slope with it at
      `TOLERANCE`; None without an expectation).

    Raises:
      ValueError: fewer than two widths, a non-positive width or lr.
    """
    widths = checked_widths(widths)
    if not lr > 0:
        raise ValueError(f"lr={lr} must be > 0")
    probe_model = factory(widths[0])
    d_in, d_out, tokens = _io_sizes(probe_model)
    shape = tuple(input_shape) if input_shape else (16,) if tokens else (d_in,)
    if tokens:
        data = _token_data(probe_model, d_in, shape, n_train, n_probe)
    else:
        data = _vector_data(shape, d_out, n_train, n_probe)

    def trained(model: nn.Module, meter: Meter, seed: int) -> RunOutcome:
        opt = (
            optimizer(model, lr=lr) if p is not None else torch.optim.SGD(model.parameters(), lr=lr)
        )
        return train(
            model,
            data,
            opt,
            steps=steps,
            meter=meter,
            measure_steps=list(range(steps + 1)),
            center=center,
            seed=seed,
        )

    runs, metrics = across_widths(
        factory, widths, seeds, data.x_probe, trained, p=p, metrics=["default", "weights"]
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
    return runs, metrics, fits
