"""`estimate_richness`: the effective richness of your own training recipe, measured across width.

Runs the first steps of your recipe (your model factory, your training function, your
optimizer) at a few widths and seeds, measures each run with the Meter and fits the width
exponent of ‖Δh‖ (THEORY.md §3, claim C2) with `richness.analysis.richness_meter`. Training
is yours: nothing here changes the model's parameterization or the learning rates, so the
answer is about the recipe as you run it (SP included, which comes out "ill-scaled").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from richness._widths import across_widths
from richness.analysis.reading import RichnessEstimate
from richness.analysis.richness_meter import estimate_multiwidth
from richness.measure.meter import Meter
from richness.train import RunOutcome

__all__ = ["estimate_richness"]


def estimate_richness(
    factory: Callable[[int], nn.Module],
    train_fn: Callable[[nn.Module], Any],
    probe_inputs: torch.Tensor,
    *,
    widths: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2, 3),
    layers: Sequence[str] | None = None,
    **estimate_kwargs: Any,
) -> RichnessEstimate:
    """Returns the multi-width richness estimate of a recipe, run at each width and seed.

    For every (width, seed) (`richness._widths.across_widths`): ``torch.manual_seed(seed)``,
    ``model = factory(width)``, a `Meter` on ``probe_inputs`` (snapshot of θ0),
    ``train_fn(model)``, ``meter.measure()`` (stored as step 1: after your loop, whatever its
    number of steps). The measurements go to `estimate_multiwidth` (r̂ = width exponent of
    ‖Δh_ℓ‖ pooled over hidden layers, seed-bootstrap interval, ‖Δf‖ and h_rms checks, verdict).

    Measures: THEORY.md §4 C2 (and C1, C3, C4 as checks).

    Keep the recipe the same at every width except what your parameterization scales (the
    same data, step count and base learning rate), and take a few steps only: r is a statement
    about the first steps of wide networks. Widths should span a factor 4 or more (e.g. n/4,
    n/2, n); finite-width terms bias r̂ at widths below about 128 (docs/meter.md). Train the
    centered model f − f0 if you can (research/notes.md): the random initial output drags r̂
    low at small widths otherwise.

    Args:
      factory: f(width) -> nn.Module, on the device and in the dtype of ``probe_inputs``.
      train_fn: trains the model it is given in place, e.g. the first 5 steps of your loop
        (it builds its own optimizer; the seed is already set).
      probe_inputs: (N, ...) inputs the representations are measured on (not trained on).
      widths: two or more widths (three or more for an interval from one seed).
      seeds: init seeds; two or more give the seed bootstrap.
      layers: hidden layers to fit (None: every measured layer but the last, the readout).
      **estimate_kwargs: thresholds, ci, n_boot, seed of `estimate_multiwidth`.

    Returns:
      A `RichnessEstimate` (``print`` it for the table).

    Raises:
      ValueError: fewer than two distinct widths, a width < 1, or no seed.

    Example:
      >>> import torch, richness as rn
      >>> from richness.estimate import estimate_richness
      >>> x, y = torch.randn(64, 8), torch.randn(64, 1)
      >>> p = rn.preset("mup", base_width=32)
      >>> def make(n):  # your model, parameterized (or not: SP comes out "ill-scaled")
      ...     return rn.parameterize(rn.models.MLP(8, n, 1), p, base=rn.models.MLP(8, 32, 1))
      >>> def train(model):  # your loop, first few steps
      ...     opt = rn.optimizer(model, lr=0.1)
      ...     for _ in range(3):
      ...         opt.zero_grad()
      ...         (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
      ...         opt.step()
      >>> est = estimate_richness(make, train, torch.randn(32, 8), widths=[128, 256, 512])
      >>> print(est.verdict)  # doctest: +SKIP
      rich
    """

    def trained(model: nn.Module, meter: Meter, seed: int) -> RunOutcome:
        train_fn(model)
        rows = [(1, *_split(key), float(value)) for key, value in meter.measure().items()]
        return RunOutcome(status="done", rows=rows)

    frames = across_widths(factory, widths, seeds, probe_inputs, trained)
    return estimate_multiwidth(frames, layers=layers, **estimate_kwargs)


def _split(key: str) -> tuple[str, str]:
    """(layer, quantity) of a Meter key "quantity/layer" ("" at model level)."""
    quantity, _, layer = key.partition("/")
    return layer, quantity
