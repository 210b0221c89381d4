"""The forward multiplier g as a `torch.nn.utils.parametrize` parametrization.

Implements: THEORY.md §1 (the forward pass uses g·W). The user's module is not rewritten:
`module.weight` reads as g·W (the effective weight), and assigning `module.weight = W_eff`
stores W_eff / g (via `right_inverse`). g and the layer's LR factor are buffers, so they travel
with `state_dict`; the raw tensor lives at `<module>.parametrizations.<attr>.original`.

The parameterization travels with the model and the checkpoint, never as an attribute of the
user's modules: each Multiplier holds the table it was built from (`parameterization`, read by
`rn.optimizer` and the Transformer's attention scale through `parameterization_of(model)`), and
its extra state (plain strings and numbers, so `torch.load(weights_only=True)` reads it) names
its role, fan-in, width and the table (name, r, γ, gauge, base width, optimizer); loading a
checkpoint into a model parameterized differently raises instead of silently rescaling the
weights.
"""

from __future__ import annotations

import copy
import types
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from richness.scaling import Parameterization

__all__ = ["Multiplier", "output_scaled", "parameterization_of"]


def _identity(p: Parameterization) -> dict[str, Any]:
    """The table's fields that a checkpoint records and checks (plain data)."""
    return {
        "table": p.name,
        "r": p.r,
        "gamma": p.gamma,
        "gauge": p.gauge,
        "base_width": p.base_width,
        "optimizer": p.optimizer,
    }


class Multiplier(nn.Module):
    """Parametrization X ↦ g·X, carrying the layer's table entry.

    Attributes:
      multiplier: buffer, g.
      lr_factor: buffer, the η factor of the table (the layer LR is η0 · lr_factor).
      role, fan_in, width: what the entry was evaluated at (plain attributes, for tables).
      parameterization: the table the entry came from (None for a bare multiplier); its
        identity is the checkpointed extra state.
    """

    def __init__(
        self,
        multiplier: float,
        lr_factor: float,
        role: str,
        fan_in: int,
        width: int,
        dtype: torch.dtype = torch.float64,
        parameterization: Parameterization | None = None,
    ):
        super().__init__()
        # Buffers in the parameter's dtype: g rounded to float32 would break float64 checks.
        self.register_buffer("multiplier", torch.tensor(float(multiplier), dtype=dtype))
        self.register_buffer("lr_factor", torch.tensor(float(lr_factor), dtype=dtype))
        self.role = role
        self.fan_in = fan_in
        self.width = width
        self.parameterization = parameterization
        self.table = {} if parameterization is None else _identity(parameterization)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.multiplier.to(x.dtype)

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.multiplier.to(x.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {"role": self.role, "fan_in": self.fan_in, "width": self.width, **self.table}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        mine = self.get_extra_state()
        diff = {
            k: (state.get(k), mine.get(k))
            for k in set(state) | set(mine)
            if state.get(k) != mine.get(k)
        }
        if diff:
            lines = "\n".join(f"  {k}: checkpoint {a!r}, model {b!r}" for k, (a, b) in diff.items())
            raise ValueError(
                "the checkpoint was saved with another parameterization than this model's:\n"
                f"{lines}\nbuild the model with the checkpoint's table (rn.richness / rn.preset) "
                "before loading; richness never rescales loaded weights"
            )

    def extra_repr(self) -> str:
        return (
            f"role={self.role}, g={self.multiplier.item():.4g}, "
            f"lr_factor={self.lr_factor.item():.4g}"
        )


_OUTPUT_SCALED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
_CONV = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def _output_scaled_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer with its multipliers on the output: g·(W x) + g_b·b, equal to (g·W) x + g_b·b."""
    if isinstance(module, nn.Linear):
        out = F.linear(x, module.weight)
    elif isinstance(module, nn.Embedding):
        out = F.embedding(x, module.weight, module.padding_idx, module.max_norm)
    else:
        conv = next(fn for cls, fn in _CONV.items() if isinstance(module, cls))
        out = conv(
            x, module.weight, None, module.stride, module.padding, module.dilation, module.groups
        )
    out = out * module.weight_g.to(out.dtype)
    bias = getattr(module, "bias", None)
    if bias is None:
        return out
    if hasattr(module, "bias_g"):
        bias = bias * module.bias_g.to(out.dtype)
    if not isinstance(module, nn.Linear):  # conv: one bias per channel, dim 1
        bias = bias.reshape(-1, *([1] * (out.dim() - 2)))
    return out + bias


def output_scaled(model: nn.Module) -> tuple[nn.Module, dict[str, str]]:
    """A meta-device copy of `model` whose Multipliers act on layer outputs: g·(W x).

    The same function as the parametrized model (THEORY.md §1: h = g·W x), evaluated in the
    other order: the parametrization forms g·W, n² numbers per layer and forward (and again in
    the backward); g·(W x) touches batch·n (at n = 2048, batch 256, 8x fewer; in bf16 the
    weight product cost as much as the matmul). For `torch.func.functional_call` with stacked
    parameters (`richness.train`'s vectorized ensembles). Only torch's Linear, Conv and
    Embedding layers whose parametrizations are exactly one Multiplier per tensor are
    rewritten; other parametrized modules keep their parametrization.

    Returns:
      The copy (its tensors on the meta device: values come from functional_call) and
      {name in the original state: name in the copy's state}: ``<layer>.parametrizations.
      weight.original`` becomes ``<layer>.weight`` and its multiplier ``<layer>.weight_g``.
    """
    skeleton = copy.deepcopy(model).to("meta")
    renames: dict[str, str] = {}
    for name, module in skeleton.named_modules():
        if not isinstance(module, _OUTPUT_SCALED) or not parametrize.is_parametrized(module):
            continue
        chains = module.parametrizations
        if set(chains) - {"weight", "bias"} or any(
            len(chains[t]) != 1 or not isinstance(chains[t][0], Multiplier) for t in chains
        ):
            continue
        prefix = f"{name}." if name else ""
        for tensor in list(chains):
            parametrize.remove_parametrizations(module, tensor, leave_parametrized=False)
            module.register_buffer(f"{tensor}_g", torch.empty((), device="meta"))
            old = f"{prefix}parametrizations.{tensor}"
            renames[f"{old}.original"] = f"{prefix}{tensor}"
            renames[f"{old}.0.multiplier"] = f"{prefix}{tensor}_g"
        module.forward = types.MethodType(_output_scaled_forward, module)
    return skeleton, renames


def parameterization_of(model: nn.Module) -> Parameterization | None:
    """The table `rn.parameterize` applied to `model`, read from its Multiplier modules.

    Returns:
      The Parameterization, or None when no module of `model` carries one (not parameterized).

    Raises:
      ValueError: parts of the model carry different tables (parameterized separately).
    """
    found: list[Parameterization] = []
    for module in model.modules():
        p = getattr(module, "parameterization", None) if isinstance(module, Multiplier) else None
        if p is not None and p not in found:
            found.append(p)
    if len(found) > 1:
        raise ValueError(
            "the model's multipliers carry different tables: "
            + ", ".join(
                f"{p.name} (r={p.r}, gauge={p.gauge}, base_width={p.base_width})" for p in found
            )
            + "; parameterize the whole model once with rn.parameterize(model, p)"
        )
    return found[0] if found else None
