"""The `Parameterization`: per-role multiplier, init std and learning rate as width laws.

Implements: THEORY.md §1 (roles, the three hyperparameters g, σ, η per layer) and §3
(gauge symmetry: only g·σ and the effective learning rate are physical).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from richness.scaling._types import OPTIMIZERS, ROLES, Optimizer, Role, check_choice
from richness.scaling.power import Power

__all__ = ["LayerScaling", "Parameterization", "RoleScaling"]

_ONE = Power()  # the width law 1: torch's plain ε and weight decay


@dataclass(frozen=True)
class RoleScaling:
    """Width laws of one role's forward multiplier g, init std σ and LR factor η.

    Adam tables also carry (docs/adam.md; 1 in SGD tables and hand-made ones, i.e. torch's
    plain settings):
      eps: the factor of Adam's ε, the width law of the raw gradient's coordinates
        (`weight_gradient_exponents`), so that ε/|∂L/∂W| is the same at every width;
      l2: the factor of Adam's coupled weight decay (L2 added to the gradient), the law of
        |∂L/∂W| / σ, so that the decay term keeps its ratio to the gradient at every width.
    Under the Adam gauge map (θg, σ/θ, η/θ) the raw gradient scales by θ: ε → θ·ε, l2 → θ²·l2.
    """

    multiplier: Power
    init_std: Power
    lr: Power
    eps: Power = _ONE
    l2: Power = _ONE


@dataclass(frozen=True)
class LayerScaling:
    """The numbers for one layer: what `Parameterization.layer` returns.

    Attributes:
      role: "input", "hidden" or "output".
      width: n, the layer's width dimension.
      fan_in: the layer's fan-in (C_in · prod(kernel) for convolutions, 1 for vectors).
      multiplier: g; the forward pass uses g·W.
      init_std: σ; W ~ N(0, σ²).
      lr: η factor; the layer's learning rate is η0 · lr.
      optimizer: "sgd" or "adam", which decides the effective learning rate.
      eps: Adam's ε factor; the layer's ε is ε0 · eps (1 for SGD tables).
      l2: Adam's coupled weight-decay factor; its coefficient is wd0 · l2 (1 for SGD tables).
    """

    role: Role
    width: float
    fan_in: float
    multiplier: float
    init_std: float
    lr: float
    optimizer: Optimizer
    eps: float = 1.0
    l2: float = 1.0

    @property
    def effective_std(self) -> float:
        """g·σ: the init std of the effective weight g·W (gauge invariant, THEORY.md §3)."""
        return self.multiplier * self.init_std

    @property
    def effective_lr(self) -> float:
        """The gauge-invariant learning rate of g·W: η·g² for SGD, η·g for Adam (THEORY.md §3)."""
        power = 2 if self.optimizer == "sgd" else 1
        return self.lr * self.multiplier**power


def _positive(field_name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{field_name}={value!r} must be a finite number > 0")
    return float(value)


@dataclass(frozen=True)
class Parameterization:
    """A width-scaling table: for each role, the laws of g, σ and η.

    Build one with `richness(...)` or `preset(...)`, or by hand for a table of your own,
    which `predict()` and `criteria()` then judge against THEORY.md §2.

    Attributes:
      roles: a `RoleScaling` for each of "input", "hidden", "output".
      optimizer: "sgd" or "adam" (the gauge symmetry differs, THEORY.md §3).
      base_width: n0. None: width factors are n itself (the tutorial's absolute tables);
        a number: width factors are m = n / n0 (base-relative, as in microsoft/mup).
      name: a label for tables and reports.
      r, gamma, gauge: the richness point this table was built from, if any.

    Example:
      >>> import richness as rn
      >>> p = rn.richness(r=0.5, gauge="stp", base_width=64)
      >>> round(p.layer("output", width=256, fan_in=256).lr, 6)
      0.25
    """

    roles: Mapping[str, RoleScaling]
    optimizer: Optimizer = "sgd"
    base_width: float | None = None
    name: str = "custom"
    r: float | None = None
    gamma: float | None = None
    gauge: str | None = None

    def __post_init__(self) -> None:
        missing = [role for role in ROLES if role not in self.roles]
        extra = [role for role in self.roles if role not in ROLES]
        if missing or extra:
            raise ValueError(
                f"roles must have exactly the keys {ROLES}; missing {missing}, unknown {extra}"
            )
        for role, scaling in self.roles.items():
            if not isinstance(scaling, RoleScaling):
                raise TypeError(f"roles[{role!r}] must be a RoleScaling, got {type(scaling)}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.base_width is not None:
            _positive("base_width", self.base_width)
        object.__setattr__(self, "roles", dict(self.roles))

    def width_factor(self, width: float) -> float:
        """The w of every law: n for absolute tables, m = n / n0 for base-relative ones."""
        _positive("width", width)
        return width if self.base_width is None else width / self.base_width

    def layer(self, role: Role, width: float, fan_in: float) -> LayerScaling:
        """The multiplier, init std and LR factor of one layer.

        Args:
          role: "input", "hidden" or "output".
          width: the width n of the model (the dimension that scales).
          fan_in: the layer's fan-in (for a conv, C_in · prod(kernel size); 1 for a vector).

        Returns:
          A `LayerScaling` with the evaluated numbers.

        Raises:
          ValueError: unknown role, or width / fan_in not > 0.
        """
        check_choice("role", role, ROLES)
        w = self.width_factor(width)
        fan_in = _positive("fan_in", fan_in)
        laws = self.roles[role]
        return LayerScaling(
            role=role,
            width=float(width),
            fan_in=fan_in,
            multiplier=laws.multiplier(fan_in, w),
            init_std=laws.init_std(fan_in, w),
            lr=laws.lr(fan_in, w),
            optimizer=self.optimizer,
            eps=laws.eps(fan_in, w),
            l2=laws.l2(fan_in, w),
        )

    def exponents(self) -> dict[str, dict[str, float]]:
        """Width exponents of g, σ, η per role (input fan-in fixed, hidden/output fan-in ∝ n)."""
        return {
            role: {
                quantity: getattr(laws, quantity).exponent(fan_in_scales=role != "input")
                for quantity in ("multiplier", "init_std", "lr")
            }
            for role, laws in self.roles.items()
        }

    def predict(self, depth: int = 3, roles: list[str] | None = None) -> dict[str, float]:
        """Predicted width exponents of THEORY.md §4 (C1–C8) by the one-step derivation.

        See `richness.scaling.predict.predict_exponents` for the keys and `roles` (the layers'
        roles in order, for a model with input-like layers inside it, such as a ConvMixer's
        depthwise convs; None: input, hidden…, output).
        """
        from richness.scaling.predict import predict_exponents

        return predict_exponents(self, depth, roles=roles)

    def criteria(self, depth: int = 3) -> list:
        """Verdicts on THEORY.md §2's criteria (activations, NTC, UUC, MAX) for this table."""
        from richness.scaling.predict import criteria

        return criteria(self, depth)
