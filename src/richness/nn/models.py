"""Reference models, each with the width as one argument (THEORY.md §1, §4 C13)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

from richness.nn.transformer import Transformer

__all__ = ["CNN", "MLP", "ConvMixer", "LinearNet", "ResMLP", "Transformer", "activation_fn"]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "erf": torch.erf,
    "gelu": nn.functional.gelu,
}


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise nonlinearity called `name`."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not one of {tuple(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _check_sizes(**sizes: int) -> None:
    for field, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{field}={value!r} must be an integer ≥ 1")


class MLP(nn.Module):
    """Fully connected net d_in → width → … → width → d_out with `depth` weight layers.

    h_1 = W_1 x, h_ℓ = W_ℓ φ(h_{ℓ−1}), f = W_L φ(h_{L−1}); `layers[ℓ−1]` is W_ℓ.

    Args:
      d_in, width, d_out: sizes.
      depth: number of weight layers (≥ 2).
      activation: "linear", "relu", "tanh", "erf" or "gelu".
      bias: whether layers have biases.

    Shapes: x (N, d_in) → f (N, d_out).
    """

    def __init__(
        self,
        d_in: int,
        width: int,
        d_out: int,
        depth: int = 3,
        activation: str = "relu",
        bias: bool = False,
    ):
        super().__init__()
        _check_sizes(d_in=d_in, width=width, d_out=d_out)
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth={depth!r} must be an integer ≥ 2")
        self.phi = activation_fn(activation)
        self.activation = activation
        sizes = [d_in] + [width] * (depth - 1) + [d_out]
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=bias) for a, b in itertools.pairwise(sizes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers[0](x)
        for layer in self.layers[1:]:
            h = layer(self.phi(h))
        return h


class LinearNet(MLP):
    """The tutorial's model f = W3 W2 W1 x (THEORY.md §1): a 3-layer linear net, no biases."""

    def __init__(self, d_in: int, width: int, d_out: int = 1):
        super().__init__(d_in, width, d_out, depth=3, activation="linear", bias=False)


class ResMLP(nn.Module):
    """Residual MLP: stem, `depth` residual blocks with two-layer branches, readout.

    h_0 = W_in x;  h_ℓ = h_{ℓ−1} + β · W2_ℓ φ(W1_ℓ h_{ℓ−1}) for ℓ = 1..depth;  f = W_out h_L.
    `stem` is input-role, every `blocks[ℓ].fc1` / `.fc2` (n → n) hidden, `readout` output-role
    (THEORY.md §1). The branch multiplier β is a fixed constant, not a width law: β = 1/√depth
    (the default, depth-μP's branch scale, arXiv:2310.02244) keeps the residual stream's
    coordinates Θ(1) as depth grows (h_L² ≈ h_0² (1 + β² c)^depth with c = Θ(1)); β = 1 is the
    plain ResNet, whose stream grows with depth. Width scaling is the library's (any table).

    Args:
      d_in, width, d_out: sizes.
      depth: number of residual blocks (≥ 1).
      branch_multiplier: β; None means 1/√depth.
      activation: the branch nonlinearity φ (see `activation_fn`).
      bias: whether layers have biases.

    Shapes: x (N, d_in) → f (N, d_out).
    """

    def __init__(
        self,
        d_in: int,
        width: int,
        d_out: int,
        depth: int = 4,
        branch_multiplier: float | None = None,
        activation: str = "relu",
        bias: bool = False,
    ):
        super().__init__()
        _check_sizes(d_in=d_in, width=width, d_out=d_out, depth=depth)
        beta = depth**-0.5 if branch_multiplier is None else branch_multiplier
        if not (isinstance(beta, int | float) and math.isfinite(beta) and beta > 0):
            raise ValueError(f"branch_multiplier={branch_multiplier!r} must be a number > 0")
        self.branch_multiplier = float(beta)
        self.phi = activation_fn(activation)
        self.activation = activation
        self.stem = nn.Linear(d_in, width, bias=bias)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "fc1": nn.Linear(width, width, bias=bias),
                    "fc2": nn.Linear(width, width, bias=bias),
                }
            )
            for _ in range(depth)
        )
        self.readout = nn.Linear(width, d_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)  # (N, n)
        for block in self.blocks:
            h = h + self.branch_multiplier * block["fc2"](self.phi(block["fc1"](h)))
        return self.readout(h)


class CNN(nn.Module):
    """Myrtle-style conv net: `depth` 3×3 convs of `width` channels, ReLU, average pools, readout.

    conv(in→n) φ, conv(n→n) φ, pool, conv φ, pool, …, global average pool, linear(n→classes):
    a pool follows every conv after the second while the image is larger than 1×1 (Myrtle5
    with depth 4 on 32×32 inputs; digits' 8×8 images work too).

    Shapes: x (N, C, H, W) → f (N, n_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        n_classes: int = 10,
        depth: int = 4,
        activation: str = "relu",
        bias: bool = False,
    ):
        super().__init__()
        _check_sizes(in_channels=in_channels, width=width, n_classes=n_classes, depth=depth)
        self.phi = activation_fn(activation)
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1, bias=bias)
            for i in range(depth)
        )
        self.readout = nn.Linear(width, n_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = self.phi(conv(h))
            if i >= 1 and i < len(self.convs) - 1 and min(h.shape[-2:]) >= 2:
                h = nn.functional.avg_pool2d(h, 2)
        h = h.mean(dim=(-2, -1))  # (N, n)
        return self.readout(h)


class ConvMixer(nn.Module):
    """ConvMixer (Trockman & Kolter, arXiv:2201.09792) without BatchNorm.

    h = φ(patch(x)) with a p×p conv of stride p (C → n channels); then `depth` blocks
    h ← h + φ(depthwise(h)) (a k×k conv per channel, groups = n, padding k//2),
    h ← φ(pointwise(h)) (1×1, n → n); global average pool; linear(n → classes).

    Richness roles (read against the same model at another width, `richness.nn.roles`):
    `patch` is input (fan-in C·p², fan-out n), every `blocks[i].depthwise` is input-like: its
    weight is (n, 1, k, k), fan-in k² fixed and n channels, each its own map (a "vector-like"
    layer of the μP tables, like a bias or a norm gain with a kernel), `blocks[i].pointwise` is
    hidden (fan-in and fan-out n), `readout` output. `Parameterization.predict(roles=...)`
    takes the interleaved order (the run's identity passes it).

    No BatchNorm: it renormalizes every channel per batch, so the feature movement
    ‖Δh‖/‖h(0)‖ the claims measure would be divided out, the model's function would differ
    between train and eval mode, and its running statistics have no row in the tables. The
    residual stream then grows by at most (1 + ½)^{1/2} per block at init under ReLU (σ =
    1/√fan_in), and each pointwise ReLU halves its second moment again: coordinates stay Θ(1)
    at the depths used (≤ 8).

    Shapes: x (N, C, H, W) → f (N, n_classes); H and W divisible by `patch_size`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        n_classes: int = 10,
        depth: int = 4,
        patch_size: int = 4,
        kernel_size: int = 5,
        activation: str = "relu",
        bias: bool = False,
    ):
        super().__init__()
        _check_sizes(
            in_channels=in_channels,
            width=width,
            n_classes=n_classes,
            depth=depth,
            patch_size=patch_size,
            kernel_size=kernel_size,
        )
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size={kernel_size!r} must be odd (same-size padding)")
        self.phi = activation_fn(activation)
        self.patch = nn.Conv2d(in_channels, width, patch_size, stride=patch_size, bias=bias)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "depthwise": nn.Conv2d(
                        width, width, kernel_size, padding=kernel_size // 2, groups=width, bias=bias
                    ),
                    "pointwise": nn.Conv2d(width, width, 1, bias=bias),
                }
            )
            for _ in range(depth)
        )
        self.readout = nn.Linear(width, n_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.phi(self.patch(x))  # (N, n, H/p, W/p)
        for block in self.blocks:
            h = h + self.phi(block["depthwise"](h))
            h = self.phi(block["pointwise"](h))
        return self.readout(h.mean(dim=(-2, -1)))  # (N, n) → (N, classes)
