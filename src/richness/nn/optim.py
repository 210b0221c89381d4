"""`optimizer(model, lr)`: a stock torch.optim optimizer whose param groups carry the table's LRs.

Implements: THEORY.md §3, the η column: layer ℓ trains with η0 · lr_factor_ℓ. Each group also
keeps `lr_factor`, `layer` and `role`, so a scheduler that sets `group["lr"] = η0(t) ·
group["lr_factor"]` keeps the table (schedulers that multiply lr, like torch's, keep it too).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from richness.nn.parameterize import _clean_name, multipliers

__all__ = ["optimizer"]

OptimizerKind = Literal["sgd", "adam", "adamw"]
_KINDS = ("sgd", "adam", "adamw")


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
) -> torch.optim.Optimizer:
    """A torch.optim SGD, Adam or AdamW with one param group per parameter.

    Args:
      model: a model passed through `rn.parameterize`.
      lr: η0, the base learning rate; group ℓ gets η0 · lr_factor_ℓ.
      kind: "sgd", "adam" or "adamw"; defaults to the table's optimizer. An Adam table with
        SGD (or the reverse) is refused: their LR exponents differ (THEORY.md §3).
      momentum, nesterov: SGD only.
      weight_decay: passed to every group (coupled for SGD/Adam, decoupled for AdamW).
      betas, eps: Adam/AdamW only.

    Returns:
      The optimizer.

    Raises:
      ValueError: the model is not parameterized; bad lr; unknown kind; a kind that does not
        match the table's optimizer.
    """
    table = getattr(model, "_richness_table", None)
    if table is None:
        raise ValueError("model has no richness parameterization: call rn.parameterize(model, p)")
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a number > 0")
    kind = kind or ("sgd" if table.optimizer == "sgd" else "adam")
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not one of {_KINDS}")
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
        groups.append(
            {
                "params": [param],
                "lr": lr * factor,
                "lr_factor": factor,
                "layer": _clean_name(name),
                "role": None if mult is None else mult.role,
            }
        )
    if kind == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
