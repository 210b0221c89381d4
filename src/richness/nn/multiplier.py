"""The forward multiplier g as a `torch.nn.utils.parametrize` parametrization.

Implements: THEORY.md §1 (the forward pass uses g·W). The user's module is not rewritten:
`module.weight` reads as g·W (the effective weight), and assigning `module.weight = W_eff`
stores W_eff / g (via `right_inverse`). g and the layer's LR factor are buffers, so they travel
with `state_dict`; the raw tensor lives at `<module>.parametrizations.<attr>.original`.

The parameterization travels with the checkpoint: each Multiplier's extra state (plain
strings and numbers, so `torch.load(weights_only=True)` reads it) names its role, fan-in,
width and the table (name, r, γ, gauge, base width, optimizer), and loading a checkpoint into a
model parameterized differently raises instead of silently rescaling the weights.
"""

from __future__ import annotations

from typing import Any

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
        table: dict[str, Any] | None = None,
    ):
        super().__init__()
        # Buffers in the parameter's dtype: g rounded to float32 would break float64 checks.
        self.register_buffer("multiplier", torch.tensor(float(multiplier), dtype=dtype))
        self.register_buffer("lr_factor", torch.tensor(float(lr_factor), dtype=dtype))
        self.role = role
        self.fan_in = fan_in
        self.width = width
        self.table = dict(table or {})

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
