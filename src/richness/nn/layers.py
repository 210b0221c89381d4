"""Weight layouts: which module types hold a weight matrix, and which of its dims is which.

Implements: THEORY.md §1 (a matrix-like weight has a fan-out dim and a fan-in: Linear
(out, in); Conv (C_out, C_in, *kernel), fan-in C_in · prod(kernel); Embedding (vocab, dim),
fan-in 1).
Roles (`infer_roles`), the table's fan-in and the Meter's weight metrics all read a layer through
its `WeightLayout`, so a module type that stores its weight another way is supported by one
registration, without richness importing the library that defines it.

Built in: torch's Linear, Conv1d/2d/3d, Embedding, and Hugging Face's
`transformers.pytorch_utils.Conv1D` (GPT-2's attention and MLP layers: a Linear whose weight is
stored transposed, (in, out), applied as x @ W + b). Types are matched by their qualified name
("package.module.Class", every class of the module's MRO), so the transformers entry costs no
import.

Example:
    >>> import torch
    >>> from richness.nn import layout_of, register_layer_type
    >>> class MyDense(torch.nn.Module):  # weight (in, out), applied as x @ W
    ...     def __init__(self, d_in, d_out):
    ...         super().__init__()
    ...         self.weight = torch.nn.Parameter(torch.randn(d_in, d_out) / d_in**0.5)
    ...     def forward(self, x):
    ...         return x @ self.weight
    >>> register_layer_type(MyDense, fan_out_dim=1, fan_in_dim=0)
    >>> layout_of(MyDense(3, 5))
    WeightLayout(fan_out_dim=1, fan_in_dim=0, applied='dense')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = ["WeightLayout", "layout_of", "register_layer_type", "weight_matrix"]

Applied = Literal["dense", "conv", "lookup"]
_APPLIED = ("dense", "conv", "lookup")


@dataclass(frozen=True)
class WeightLayout:
    """How a module's `weight` is laid out and applied.

    Attributes:
      fan_out_dim: the dim of the weight that indexes outputs (it scales with width for input
        and hidden layers).
      fan_in_dim: the dim that indexes inputs; the fan-in is the product of every dim except
        fan_out_dim (a conv's kernel dims count). None for a lookup table (fan-in 1).
      applied: "dense" (y = W x on the last dim of x, any leading dims), "conv" (torch's
        Conv1d/2d/3d semantics) or "lookup" (an embedding: rows picked by integer ids).
    """

    fan_out_dim: int
    fan_in_dim: int | None
    applied: Applied = "dense"

    def __post_init__(self) -> None:
        if self.applied not in _APPLIED:
            raise ValueError(f"applied={self.applied!r} is not one of {_APPLIED}")
        if (self.fan_in_dim is None) != (self.applied == "lookup"):
            raise ValueError(
                f"fan_in_dim={self.fan_in_dim!r} with applied={self.applied!r}: fan_in_dim is "
                "None exactly for a lookup table"
            )
        if self.fan_in_dim == self.fan_out_dim:
            raise ValueError(f"fan_in_dim and fan_out_dim are both {self.fan_out_dim}")

    def fan_in(self, shape: tuple[int, ...]) -> int:
        """The fan-in of a weight of this shape: 1 for a lookup, else prod of the other dims."""
        if self.fan_in_dim is None:
            return 1
        return math.prod(s for d, s in enumerate(shape) if d != self.fan_out_dim)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_DENSE = WeightLayout(fan_out_dim=0, fan_in_dim=1, applied="dense")
_CONV = WeightLayout(fan_out_dim=0, fan_in_dim=1, applied="conv")
_REGISTRY: dict[str, WeightLayout] = {
    _name(nn.Linear): _DENSE,
    _name(nn.Conv1d): _CONV,
    _name(nn.Conv2d): _CONV,
    _name(nn.Conv3d): _CONV,
    _name(nn.Embedding): WeightLayout(fan_out_dim=1, fan_in_dim=None, applied="lookup"),
    "transformers.pytorch_utils.Conv1D": WeightLayout(fan_out_dim=1, fan_in_dim=0),
}


def register_layer_type(
    cls: type[nn.Module] | str,
    *,
    fan_out_dim: int,
    fan_in_dim: int | None,
    applied: Applied = "dense",
) -> None:
    """Declares how modules of type `cls` (and its subclasses) store their `weight`.

    Args:
      cls: the module class, or its qualified name "package.module.Class" (no import needed).
      fan_out_dim, fan_in_dim, applied: see `WeightLayout`.

    Raises:
      ValueError: an inconsistent layout (see `WeightLayout`).
      TypeError: `cls` is neither a class nor a string.
    """
    if isinstance(cls, str):
        key = cls
    elif isinstance(cls, type):
        key = _name(cls)
    else:
        raise TypeError(f"cls must be a module class or its qualified name, got {cls!r}")
    _REGISTRY[key] = WeightLayout(fan_out_dim, fan_in_dim, applied)


def layout_of(module: nn.Module) -> WeightLayout | None:
    """The layout of the module's `weight`, or None if its type is not registered."""
    for cls in type(module).__mro__:
        layout = _REGISTRY.get(_name(cls))
        if layout is not None:
            return layout
    return None


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """(out, fan_in) view of the module's (effective) weight; a lookup table as (dim, vocab).

    Raises:
      TypeError: the module's type has no registered layout.
    """
    layout = layout_of(module)
    if layout is None:
        raise TypeError(
            f"{type(module).__name__} has no weight layout; "
            "register it with rn.nn.register_layer_type"
        )
    return module.weight.movedim(layout.fan_out_dim, 0).flatten(1)
