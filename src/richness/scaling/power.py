"""A width scaling law `c · fan_in^a · w^b`: the unit every table entry is made of.

`w` is the width factor: the width n itself for the tutorial's absolute tables, or
m = n / n0 for base-relative ones (THEORY.md §3). Keeping `fan_in` separate lets one
entry serve a read-in layer (fan_in = d, fixed) and a hidden layer (fan_in ∝ n) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Power"]


@dataclass(frozen=True)
class Power:
    """`prefactor · fan_in**fan_in_exp · w**width_exp`.

    Attributes:
      prefactor: width-independent constant (γ enters here).
      fan_in_exp: exponent of the layer's fan-in.
      width_exp: exponent of the width factor w (n, or n / n0).
    """

    prefactor: float = 1.0
    fan_in_exp: float = 0.0
    width_exp: float = 0.0

    def __call__(self, fan_in: float, w: float) -> float:
        """Evaluates the law at one layer's fan-in and width factor."""
        return self.prefactor * fan_in**self.fan_in_exp * w**self.width_exp

    def __mul__(self, other: Power) -> Power:
        return Power(
            self.prefactor * other.prefactor,
            self.fan_in_exp + other.fan_in_exp,
            self.width_exp + other.width_exp,
        )

    def __truediv__(self, other: Power) -> Power:
        return self * other**-1

    def __pow__(self, k: float) -> Power:
        return Power(self.prefactor**k, self.fan_in_exp * k, self.width_exp * k)

    def exponent(self, fan_in_scales: bool) -> float:
        """Width exponent of this law: the power of n it grows with.

        Args:
          fan_in_scales: whether the layer's fan-in grows ∝ n (hidden, output roles) or is
            fixed (input role).
        """
        return self.width_exp + (self.fan_in_exp if fan_in_scales else 0.0)
