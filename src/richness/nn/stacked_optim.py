"""torch.optim's SGD, Adam and AdamW steps on stacked tensors: M models updated at once.

`richness.train` trains the runs of an ensemble as one stack of parameters (a leading member
axis M); their optimizers are the members' own `rn.optimizer` (per-layer lr = η0·lr_factor,
weight decay, ε: tensors broadcast over M), and this module applies exactly torch's
single-tensor update to each member: SGD with momentum, dampening, Nesterov and weight decay;
Adam with L2 decay; AdamW (decoupled decay). tests/test_stacked_optim.py holds it against
torch.optim in float64 to 1e-12. It is the only copy of an optimizer step in richness.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["StackedUpdate"]


_KINDS = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adam"}


def _hyper(group: dict[str, Any], name: str) -> Any:
    """A group's setting, hashable (betas as a tuple), None when the optimizer has none."""
    value = group.get(name)
    return tuple(value) if isinstance(value, list | tuple) else value


class StackedUpdate:
    """torch's SGD / Adam / AdamW step (single-tensor form) on stacked member tensors.

    Per member and parameter: lr, weight_decay and eps (tensors broadcast over the member
    axis); shared by the ensemble: momentum, dampening, nesterov, betas, decoupled decay.
    """

    def __init__(self, optimizers: list[torch.optim.Optimizer], models: list[nn.Module], names):
        first = optimizers[0]
        self.kind = _KINDS.get(type(first))
        if self.kind is None:
            names = [k.__name__ for k in _KINDS]
            raise ValueError(f"{type(first).__name__} has no stacked update (only {names})")
        shared = ("momentum", "dampening", "nesterov", "betas", "decoupled_weight_decay")
        self.per_param: dict[str, dict[str, torch.Tensor]] = {}
        self._groups: dict[str, list[dict[str, Any]]] = {}  # the members' groups, per tensor
        self.shared: dict[str, Any] = {}
        for name in names:
            groups = []
            for opt, model in zip(optimizers, models, strict=True):
                param = dict(model.named_parameters())[name]
                groups.append(
                    next(g for g in opt.param_groups if any(q is param for q in g["params"]))
                )
            for key in shared:
                values = {_hyper(g, key) for g in groups}
                if len(values) > 1:
                    raise ValueError(f"members disagree on {key} of {name}: {values}")
                self.shared.setdefault(key, values.pop())
            self._groups[name] = groups
            like = dict(models[0].named_parameters())[name]
            shape = (len(groups),) + (1,) * like.dim()
            self.per_param[name] = {
                key: torch.tensor(
                    [float(g.get(key, 0.0)) for g in groups], dtype=like.dtype, device=like.device
                ).reshape(shape)
                for key in ("lr", "weight_decay", "eps")
            }
        self.decoupled = isinstance(first, torch.optim.AdamW) or bool(
            self.shared.get("decoupled_weight_decay")
        )
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
        self.steps = 0

    def rename(self, renames: dict[str, str]) -> None:
        """Follows the skeleton's parameter names."""
        self.per_param = {renames.get(k, k): v for k, v in self.per_param.items()}
        self._groups = {renames.get(k, k): v for k, v in self._groups.items()}
        self.state = {renames.get(k, k): v for k, v in self.state.items()}

    def refresh_lr(self) -> None:
        """Re-reads every member's per-layer lr from its optimizer's groups: after a torch
        scheduler (`torch.optim.lr_scheduler`) stepped the members' optimizers."""
        for name, groups in self._groups.items():
            lr = self.per_param[name]["lr"]
            values = torch.tensor([float(g["lr"]) for g in groups], dtype=lr.dtype)
            lr.copy_(values.reshape(lr.shape))

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for name, p in params.items():
            hp, state, grad = self.per_param[name], self.state[name], grads[name]
            if self.kind == "sgd":
                self._sgd(p, grad, hp, state)
            else:
                self._adam(p, grad, hp, state)

    def _sgd(self, p, grad, hp, state) -> None:
        # a bf16 grad (the bf16 ensemble's weight matrices) is read in float32 by each op below
        momentum = self.shared["momentum"] or 0.0
        if bool((hp["weight_decay"] != 0).any()):
            grad = grad + hp["weight_decay"] * p
        if momentum != 0:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = grad.to(p.dtype, copy=True)
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - (self.shared["dampening"] or 0.0))
            grad = grad + momentum * buf if self.shared["nesterov"] else buf
        p.addcmul_(hp["lr"], grad, value=-1)

    def _adam(self, p, grad, hp, state) -> None:
        beta1, beta2 = self.shared["betas"]
        grad = grad.to(p.dtype)
        if bool((hp["weight_decay"] != 0).any()):
            if self.decoupled:
                p.mul_(1 - hp["lr"] * hp["weight_decay"])
            else:
                grad = grad + hp["weight_decay"] * p
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = hp["lr"] / (1 - beta1**self.steps)
        denom = (v.sqrt() / math.sqrt(1 - beta2**self.steps)).add_(hp["eps"])
        p.sub_(step_size * m / denom)
