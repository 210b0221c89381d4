"""`optimizer(model, lr)`: a stock torch.optim optimizer whose param groups carry the table's LRs.

Implements: THEORY.md §3, the η column: layer ℓ trains with η0 · lr_factor_ℓ. Each group also
keeps `lr_factor`, `layer` and `role`, so a scheduler that sets `group["lr"] = η0(t) ·
group["lr_factor"]` keeps the table (schedulers that multiply lr, like torch's, keep it too).

Weight decay and Adam's ε, width-independent by default (docs/adam.md):
  - decoupled (AdamW) and SGD's: the per-step shrink of W_ℓ is lr_ℓ · wd_ℓ; with
    wd_ℓ = wd0 / lr_factor_ℓ it is η0 · wd0 in every layer at every width ("independent"
    decay). The product lr·wd is gauge invariant (SGD: η/θ², wd·θ²), so this holds in every gauge.
  - coupled Adam (L2 added to the gradient, then normalized): the decay term must keep its
    ratio to the gradient, wd_ℓ = wd0 · l2_ℓ with l2 ∝ |∂L/∂W_ℓ| / σ_ℓ (`RoleScaling.l2`).
  - Adam's ε_ℓ = ε0 · eps_ℓ, with eps ∝ the raw gradient's coordinates (`RoleScaling.eps`),
    so ε/|g| is the same at every width: ε neither dominates at large width nor vanishes.
`weight_decay_rule="torch"` and `eps_rule="torch"` give torch's plain behaviour (one wd and
one ε for every group). At the base width of a base-relative table with γ = 1 all factors are
1: the base model trains exactly as with torch's defaults.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from richness.nn.multiplier import parameterization_of
from richness.nn.parameterize import _clean_name, multipliers

__all__ = ["optimizer"]

OptimizerKind = Literal["sgd", "adam", "adamw"]
_KINDS = ("sgd", "adam", "adamw")
DecayRule = Literal["independent", "torch"]
EpsRule = Literal["gradient", "torch"]


def optimizer(
    model: nn.Module,
    lr: float,
    kind: OptimizerKind | None = None,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay_rule: DecayRule = "independent",
    eps_rule: EpsRule = "gradient",
) -> torch.optim.Optimizer:
    """A torch.optim SGD, Adam or AdamW with one param group per parameter.

    Args:
      model: a model passed through `rn.parameterize` (or a module holding one: a DDP or
        compiled wrapper); the table is read from its Multiplier modules.
      lr: η0, the base learning rate; group ℓ gets η0 · lr_factor_ℓ.
      kind: "sgd", "adam" or "adamw"; defaults to the table's optimizer. An Adam table with
        SGD (or the reverse) is refused: their LR exponents differ (THEORY.md §3).
      momentum, nesterov: SGD only.
      weight_decay: wd0 (coupled for SGD/Adam, decoupled for AdamW), per group by
        `weight_decay_rule`.
      betas, eps: Adam/AdamW only; eps is ε0, per group by `eps_rule`.
      weight_decay_rule: "independent" (default): every layer's decay is width-independent
        (SGD, AdamW: wd_ℓ = wd0 / lr_factor_ℓ, so lr_ℓ·wd_ℓ = η0·wd0; Adam: wd_ℓ = wd0·l2_ℓ);
        "torch": wd0 in every group.
      eps_rule: "gradient" (default): ε_ℓ = ε0 · eps_ℓ of the table; "torch": ε0 everywhere.

    Returns:
      The optimizer.

    Raises:
      ValueError: the model is not parameterized (or carries two tables); bad lr or
        weight_decay; unknown kind or rule; a kind that does not match the table's optimizer.

    Example:
      >>> import richness as rn
      >>> model = rn.models.MLP(d_in=8, width=128, d_out=1)
      >>> _ = rn.parameterize(model, rn.richness(0.5, optimizer="adam", base_width=32))
      >>> opt = rn.optimizer(model, lr=1e-3, kind="adamw", weight_decay=0.1)
      >>> {g["layer"]: round(g["lr"] * g["weight_decay"], 12) for g in opt.param_groups}
      {'layers.0.weight': 0.0001, 'layers.1.weight': 0.0001, 'layers.2.weight': 0.0001}
    """
    table = parameterization_of(model)
    if table is None:
        raise ValueError(
            "model has no richness parameterization (no Multiplier module carries a table): "
            "call rn.parameterize(model, p) first"
        )
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a number > 0")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise ValueError(f"weight_decay={weight_decay!r} must be a number ≥ 0")
    kind = kind or ("sgd" if table.optimizer == "sgd" else "adam")
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not one of {_KINDS}")
    if weight_decay_rule not in ("independent", "torch"):
        raise ValueError(
            f"weight_decay_rule={weight_decay_rule!r} is not one of 'independent', 'torch'"
        )
    if eps_rule not in ("gradient", "torch"):
        raise ValueError(f"eps_rule={eps_rule!r} is not one of 'gradient', 'torch'")
    family = "sgd" if kind == "sgd" else "adam"
    if family != table.optimizer:
        raise ValueError(
            f"kind={kind!r} but the table was built for optimizer={table.optimizer!r}; "
            f"build it with rn.richness(..., optimizer={family!r})"
        )
    groups = []
    for name, param, mult in multipliers(model):
        if not param.requires_grad:
            continue
        factor = 1.0 if mult is None else mult.lr_factor.item()
        s = None if mult is None else table.layer(mult.role, mult.width, mult.fan_in)
        group = {
            "params": [param],
            "lr": lr * factor,
            "lr_factor": factor,
            "layer": _clean_name(name),
            "role": None if mult is None else mult.role,
            "weight_decay": weight_decay,
        }
        if weight_decay_rule == "independent" and s is not None:
            group["weight_decay"] = weight_decay * (s.l2 if kind == "adam" else 1.0 / factor)
        if kind != "sgd":
            group["eps"] = eps * (s.eps if eps_rule == "gradient" and s is not None else 1.0)
        groups.append(group)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=betas, eps=eps)
