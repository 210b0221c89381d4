"""Beyond the Meter: the second-order Taylor term and each layer's share of the loss decrease.

Two instruments the Meter's metrics do not give (C15, C16), written as functions of a model,
its data and a reference θ0, plus a recorder that rides in the Meter slot of the one training
loop (`richness.train.train` calls only `measure_members()`; no edit of the loop or the Meter):

- `second_order_norms`: ‖½ Δθᵀ∇²f(θ0) Δθ‖ measured directly, as a `jvp` of a `jvp`
  (`second_order_term`: d²/dt² f(θ0 + tΔθ) at t = 0, no Hessian formed), next to the total
  linearization gap ‖f − f_lin‖ and the output change ‖Δf‖. For a network whose activation is
  piecewise linear (ReLU) autograd's second derivative is 0 at the kink, so the term excludes
  what sign flips contribute: the total gap minus this term is the third order and the kinks.
- `layer_loss_decrease`: the first-order loss decrease −∇_{W_ℓ}L(θ_{t−1})·(W_ℓ(t) − W_ℓ(t−1))
  that layer ℓ's own update contributes at a step (THEORY.md §2, UUC), for any optimizer.
- `SecondOrderRecorder`: both, at every measured step of `train`.

Implements: THEORY.md §4 C8 (the term's size ‖Δh‖²/n = n^{2r−1}), §2 UUC.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from richness.measure._common import param_dict
from richness.measure.linearize import linearization_gap, second_order_term

__all__ = [
    "SecondOrderRecorder",
    "layer_loss_decrease",
    "layer_of",
    "second_order_norms",
]


def _rms_norm(t: Tensor) -> Tensor:
    """RMS over examples of the per-example output norm: (N, ...) → scalar."""
    return t.flatten(1).pow(2).sum(1).mean().sqrt()


def second_order_norms(
    model: nn.Module,
    params0: Mapping[str, Tensor] | nn.Module,
    x: Tensor,
    params1: Mapping[str, Tensor] | nn.Module | None = None,
) -> dict[str, Tensor]:
    """The second-order Taylor term of f around θ0 at Δθ = θ1 − θ0, and what it is part of.

    Args:
      model: any ``torch.nn.Module``.
      params0: θ0 (names of ``named_parameters()``, or a module of the same architecture).
      x: (N, ...) probe inputs.
      params1: θ1; None: the model's current parameters.

    Returns:
      Scalars (RMS over the N examples of the per-example output norm):
        "second_order": ‖½ Δθᵀ∇²f(θ0)Δθ‖ (the term the tutorial sizes as ‖Δh‖²/n);
        "lin_gap": ‖f(θ1) − f_lin(θ1)‖ (every order ≥ 2, kinks included);
        "df": ‖f(θ1) − f(θ0)‖.

    Measures: C15.
    """
    theta0 = param_dict(model, params0, field="params0")
    theta1 = param_dict(model, params1, field="params1")
    half = 0.5 * second_order_term(model, theta0, theta1, x)  # (N, O)
    gap = linearization_gap(model, theta0, x, params=theta1)  # (N, O)
    with torch.no_grad():
        df = functional_call(model, theta1, (x,)) - functional_call(model, theta0, (x,))
    return {"second_order": _rms_norm(half), "lin_gap": _rms_norm(gap), "df": _rms_norm(df)}


def layer_of(name: str) -> str:
    """The layer (module path) a parameter belongs to: "layers.1.parametrizations.weight.original"
    → "layers.1", "layers.0.bias" → "layers.0"."""
    if ".parametrizations." in name:
        return name.split(".parametrizations.")[0]
    return name.rpartition(".")[0]


def layer_loss_decrease(
    model: nn.Module, previous: Mapping[str, Tensor], grads: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Each layer's first-order loss decrease at a step: −Σ_{p ∈ ℓ} ∇_p L(θ_{t−1})·(p_t − p_{t−1}).

    Call it after the optimizer step: the model holds θ_t, ``previous`` θ_{t−1}, and the
    parameters' ``.grad`` (or ``grads``) the gradient the step used, ∇L(θ_{t−1}). For plain SGD
    it is η_ℓ‖∇_ℓL‖²; it is exact to first order for any optimizer (momentum, Adam): the
    step's actual Δθ is read, not derived. Parametrized weights count as the layer that owns
    them (`layer_of`).

    Args:
      model: the model after the step.
      previous: {name: θ_{t−1}} for every parameter.
      grads: {name: ∇L(θ_{t−1})}; None: each parameter's ``.grad``.

    Returns:
      {layer: scalar decrease} in the model's parameter order; a parameter without a gradient
      contributes 0.

    Raises:
      ValueError: ``previous`` lacks a parameter.

    Measures: C16 (UUC: each layer's update decreases the loss by Θ(1) in n).
    """
    out: dict[str, Tensor] = {}
    for name, p in model.named_parameters():
        if name not in previous:
            raise ValueError(f"previous has no entry for parameter {name!r}")
        g = p.grad if grads is None else grads.get(name)
        layer = layer_of(name)
        value = torch.zeros((), dtype=p.dtype, device=p.device)
        if g is not None:
            value = -(g.detach() * (p.detach() - previous[name])).sum()
        out[layer] = out.get(layer, torch.zeros_like(value)) + value
    return out


class SecondOrderRecorder:
    """A Meter-slot recorder for `richness.train.train`: C15's and C16's quantities per step.

        recorder = SecondOrderRecorder(model, x_probe)
        train(model, data, opt, steps=T, meter=recorder, measure_steps=range(T + 1))
        recorder.decrease[t]["layers.1"], recorder.second_order[T]["second_order"]

    θ0 is copied at construction. At each measured step t it records
    `layer_loss_decrease` against the parameters of the previous measured step (exact when
    every step is measured: measure steps 0 … T) and, at `second_order_steps` (default: every
    measured step), `second_order_norms` on the probe inputs. The loop's zero_grad runs at the
    start of the next step, so the gradients read at step t are the ones step t used.

    Attributes:
      decrease: {t: {layer: float}} for measured t ≥ 1.
      second_order: {t: {"second_order", "lin_gap", "df": float}}.
    """

    def __init__(
        self,
        model: nn.Module,
        x_probe: Tensor,
        second_order_steps: set[int] | None = None,
    ) -> None:
        self.model, self.x_probe = model, x_probe
        self.theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
        self.previous = dict(self.theta0)
        self.wanted = second_order_steps
        self.step = -1
        self.decrease: dict[int, dict[str, float]] = {}
        self.second_order: dict[int, dict[str, float]] = {}

    def measure_members(self) -> dict[str, Tensor]:
        """Records step t's quantities; returns {"<quantity>/<layer>": (1,)} for the loop's rows."""
        self.step += 1
        t = self.step
        values: dict[str, Tensor] = {}
        if t > 0:
            dec = layer_loss_decrease(self.model, self.previous)
            self.decrease[t] = {k: float(v) for k, v in dec.items()}
            values |= {f"loss_decrease/{k}": v.reshape(1) for k, v in dec.items()}
        if t > 0 and (self.wanted is None or t in self.wanted):
            norms = second_order_norms(self.model, self.theta0, self.x_probe)
            self.second_order[t] = {k: float(v) for k, v in norms.items()}
            values |= {k: v.reshape(1) for k, v in norms.items()}
        self.previous = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        return values
