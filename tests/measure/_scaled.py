"""A scalar multiplier parametrization W -> g·W for measure tests, as richness.nn registers them."""

import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, g: float) -> None:
        super().__init__()
        self.register_buffer("g", torch.tensor(g, dtype=torch.float64))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.g * w
