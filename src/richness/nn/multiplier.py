"""The forward multiplier g as a `torch.nn.utils.parametrize` parametrization.

Implements: THEORY.md §1 (the forward pass uses g·W). The user's module is not rewritten:
`module.weight` reads as g·W (the effective weight), and assigning `module.weight = W_eff`
stores W_eff / g (via `right_inverse`). g and the layer's LR factor are buffers, so they travel
with `state_dict`; the raw tensor lives at `<module>.parametrizations.<attr>.original`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Multiplier"]


class Multiplier(nn.Module):
    """Parametrization X ↦ g·X, carrying the layer's table entry.

    Attributes:
      multiplier: buffer, g.
      lr_factor: buffer, the η factor of the table (the layer LR is η0 · lr_factor).
      role, fan_in, width: what the entry was evaluated at (plain attributes, for tables).
    """

    def __init__(
        self,
        multiplier: float,
        lr_factor: float,
        role: str,
        fan_in: int,
        width: int,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        # Buffers in the parameter's dtype: g rounded to float32 would break float64 checks.
        self.register_buffer("multiplier", torch.tensor(float(multiplier), dtype=dtype))
        self.register_buffer("lr_factor", torch.tensor(float(lr_factor), dtype=dtype))
        self.role = role
        self.fan_in = fan_in
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.multiplier.to(x.dtype)

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.multiplier.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"role={self.role}, g={self.multiplier.item():.4g}, "
            f"lr_factor={self.lr_factor.item():.4g}"
        )
