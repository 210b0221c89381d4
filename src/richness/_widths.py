"""The width × seed loop of `richness check` and `rn.estimate_richness`: a user's model factory
built, trained and measured at every width and seed, as store-shaped tables.

Floor 3 (torch). Training is the caller's (`richness.train.train` for the check, the user's own
loop for the meter); what each run is comes from `richness.build.identity` when a table
parameterized it, else `richness.analysis.plain_identity`; the tables are
`richness.analysis.run_frames`, so `fit_exponents` and the meter read them as a store's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from richness.analysis import plain_identity, run_frames
from richness.build import identity
from richness.measure.meter import Meter
from richness.nn import parameterize
from richness.scaling import Parameterization
from richness.train import RunOutcome

__all__ = ["across_widths", "checked_widths"]

TrainFn = Callable[[nn.Module, Meter, int], RunOutcome]
"""Trains a model in place and returns its outcome (rows of the Meter's measurements);
called with the model, its Meter (snapshot of θ0 taken) and the seed."""


def across_widths(
    factory: Callable[[int], nn.Module],
    widths: Sequence[int],
    seeds: Sequence[int],
    probe_inputs: torch.Tensor,
    train_fn: TrainFn,
    *,
    p: Parameterization | None = None,
    metrics: Sequence[str] = ("default",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns ``(runs, metrics)`` of the factory's model trained at every width and seed.

    For every width (ascending) and seed: ``torch.manual_seed(seed)``, ``model =
    factory(width)``; with a table ``p``, ``rn.parameterize(model, p, base=factory(w0))``
    where w0 is the smallest width (the second smallest for the smallest itself); a `Meter`
    on ``probe_inputs`` with ``metrics``; ``train_fn(model, meter, seed)``.

    Args:
      factory: f(width) -> nn.Module.
      widths: two or more distinct integers ≥ 1.
      seeds: init seeds, one or more.
      probe_inputs: (N, ...) inputs the Meter measures on.
      train_fn: trains the model and returns its `RunOutcome` (`TrainFn`).
      p: the table to parameterize with, or None to take the model as the factory built it.
      metrics: the Meter's metrics.

    Returns:
      `run_frames` output: one run per (width, seed), run ids ``f"n{width}-s{seed}"``, config
      ``width``, ``seed`` and the table's fields (r or preset, gauge, gamma, optimizer,
      base_width), the runs' identities and measured rows.

    Raises:
      ValueError: fewer than two distinct widths, a width < 1, or no seed.
    """
    widths = checked_widths(widths)
    if not seeds:
        raise ValueError("seeds=() is empty: pass at least one seed, e.g. (0, 1, 2, 3)")
    records = []
    for width in widths:
        for seed in seeds:
            torch.manual_seed(seed)
            model = factory(width)
            if p is not None:
                parameterize(model, p, base=factory(widths[1] if width == widths[0] else widths[0]))
            meter = Meter(model, probe_inputs, metrics=list(metrics))
            outcome = train_fn(model, meter, seed)
            records.append(
                {
                    "run_id": f"n{width}-s{seed}",
                    "status": outcome.status,
                    "config": {"width": width, "seed": seed, **_table_fields(p)},
                    "identity": plain_identity(meter.layers)
                    if p is None
                    else identity(model, meter.layers, p),
                    "rows": outcome.rows,
                    "diverged_step": outcome.diverged_step,
                    "error": outcome.error,
                }
            )
    return run_frames(records)


def checked_widths(widths: Sequence[int]) -> list[int]:
    """Returns the distinct widths in ascending order.

    Raises:
      ValueError: fewer than two distinct widths, or one below 1.
    """
    ordered = sorted({int(w) for w in widths})
    if len(ordered) < 2 or ordered[0] < 1:
        raise ValueError(
            f"widths={ordered} must hold at least two distinct integers ≥ 1 (e.g. n/4, n/2, n)"
        )
    return ordered


def _table_fields(p: Parameterization | None) -> dict[str, Any]:
    """The config fields the fits group runs by: a preset by name (r otherwise), gauge, ..."""
    if p is None:
        return {}
    return {
        "preset": p.name if p.r is None else None,
        "r": p.r,
        "gauge": p.gauge,
        "gamma": p.gamma or 1.0,
        "optimizer": p.optimizer,
        "base_width": p.base_width,
    }
