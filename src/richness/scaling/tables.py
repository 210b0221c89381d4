"""The richness-scale tables in the three gauges, and the named presets.

Implements: THEORY.md §3 (STP table, μP-gauge table, rescaling gauge, named points, SP).

Every gauge is built from the STP table by the gauge transformation of THEORY.md §3,
applied per role with a factor θ (a width law):
  SGD:  (g, σ, η) → (θ·g, σ/θ, η/θ²)      Adam: (g, σ, η) → (θ·g, σ/θ, η/θ)
so the physical content (g·σ and the effective LR) is the same in all three by construction.
Adam tables also carry ε and coupled-decay laws (`RoleScaling.eps`, `.l2`): derived in the STP
gauge from the raw gradient's width exponent, and carried to the other gauges by ε → θ·ε,
l2 → θ²·l2 (the raw gradient scales by θ), so every gauge trains identically with Adam too.
  stp:        θ = 1                      (g = 1, layerwise learning rates)
  mup:        θ = √η_stp (SGD), η_stp (Adam)   (one global learning rate)
  rescaling:  θ = θ_mup / α               (σ = 1 in absolute tables, one LR α²·η0 for SGD)
with α = γ·w^r the activity.
"""

from __future__ import annotations

import dataclasses

from richness.scaling._types import (
    GAUGES,
    OPTIMIZERS,
    PRESETS,
    Gauge,
    Optimizer,
    PresetName,
    check_choice,
)
from richness.scaling.parameterization import Parameterization, RoleScaling
from richness.scaling.power import Power
from richness.scaling.predict import weight_gradient_exponents

__all__ = ["preset", "preset_point", "richness", "stp_table", "table"]

_ONE = Power()
_INV_SQRT_FAN_IN = Power(1.0, -0.5, 0.0)

_PRESET_POINTS: dict[str, tuple[float, str]] = {
    "ntp": (0.0, "mup"),  # Jacot et al.: σ = 1, multipliers 1/√fan_in, one LR
    "ntp-lr": (0.0, "stp"),
    "mup": (0.5, "mup"),  # Yang & Hu 2021: a = (−1/2, 0, 1/2), b = 1/2, c = 0
    "mup-lr": (0.5, "stp"),  # TP V "μP for SGD" with layerwise learning rates
    "mf": (0.5, "rescaling"),  # mean-field parameterization (MFP)
}


def _check_r(r: float, allow_off_scale: bool) -> float:
    if not isinstance(r, int | float) or r != r:
        raise ValueError(f"r={r!r} must be a number in [0, 0.5] (THEORY.md §3)")
    if not allow_off_scale and not 0.0 <= r <= 0.5:
        raise ValueError(
            f"r={r!r} is outside [0, 0.5] (THEORY.md §3: r < 0 makes outputs explode, "
            "r > 1/2 makes gradients explode); pass allow_off_scale=True to study it anyway"
        )
    return float(r)


def _check_gamma(gamma: float) -> float:
    if not isinstance(gamma, int | float) or not gamma > 0 or gamma == float("inf"):
        raise ValueError(f"gamma={gamma!r} must be a finite number > 0 (α = γ·n^r)")
    return float(gamma)


def stp_table(
    r: float, gamma: float, optimizer: Optimizer, relative: bool
) -> dict[str, RoleScaling]:
    """The STP gauge (g = 1, layerwise LRs) at richness r, as width laws per role.

    Implements: THEORY.md §3, STP table. With α = γ·w^r, SGD, absolute (w = n):
      input:  σ = 1/√fan_in,       η = α²/fan_in
      hidden: σ = 1/√fan_in,       η = α²/fan_in          (fan_in = n: η ∝ n^{2r−1})
      output: σ = 1/(α·√fan_in),   η = 1/fan_in
    Base-relative (w = m = n/n0): σ as above, η = (γ²m^{2r}, γ²m^{2r−1}, 1/m), so that at
    m = 1, γ = 1 every σ is 1/√fan_in and every LR factor is 1 (the standard model).
    Adam (update size independent of gradient scale): η = (α/(√n·fan_in), α/(√n·fan_in),
    1/fan_in) absolute and (γ·m^{r−1/2}, γ·m^{r−3/2}, 1/m) relative; at r = 1/2 this is TP V's
    Adam μP (arXiv:2203.03466, Table 3). Adam's ε factor follows the raw gradient's coordinates,
    w^{(−1/2−r, −1/2−r, 0)}, and the coupled-decay factor |∂L/∂W|/σ, w^{(−1/2−r, −r, 1/2+r)}
    (derived by `weight_gradient_exponents`; 1 at the base width).
    """
    alpha = Power(gamma, 0.0, r)
    out_std = _INV_SQRT_FAN_IN / alpha
    if optimizer == "sgd":
        if relative:
            lrs = (alpha**2, alpha**2 * Power(1.0, 0.0, -1.0), Power(1.0, 0.0, -1.0))
        else:
            per_fan_in = Power(1.0, -1.0, 0.0)
            lrs = (alpha**2 * per_fan_in, alpha**2 * per_fan_in, per_fan_in)
    else:
        if relative:
            lrs = (
                Power(gamma, 0.0, r - 0.5),
                Power(gamma, 0.0, r - 1.5),
                Power(1.0, 0.0, -1.0),
            )
        else:
            hidden_like = Power(gamma, -1.0, r - 0.5)
            lrs = (hidden_like, hidden_like, Power(1.0, -1.0, 0.0))
    stds = (_INV_SQRT_FAN_IN, _INV_SQRT_FAN_IN, out_std)
    table = {
        role: RoleScaling(multiplier=_ONE, init_std=std, lr=lr)
        for role, std, lr in zip(("input", "hidden", "output"), stds, lrs, strict=True)
    }
    return table if optimizer == "sgd" else _with_adam_eps(table)


def _with_adam_eps(table: dict[str, RoleScaling]) -> dict[str, RoleScaling]:
    """The table with Adam's ε and coupled-decay laws: ε ∝ |∂L/∂W| coordinates, l2 ∝ |∂L/∂W|/σ.

    Both are pure width laws w^e (1 at the base width of a base-relative table).
    """
    grads = weight_gradient_exponents(Parameterization(roles=table, optimizer="adam"))
    out = {}
    for role, laws in table.items():
        grad = grads[f"grad_w/{role}"]
        std = laws.init_std.exponent(fan_in_scales=role != "input")
        out[role] = dataclasses.replace(
            laws, eps=Power(1.0, 0.0, grad), l2=Power(1.0, 0.0, grad - std)
        )
    return out


def _gauge_transform(laws: RoleScaling, theta: Power, optimizer: Optimizer) -> RoleScaling:
    """(g, σ, η) → (θg, σ/θ, η/θ²) for SGD or (θg, σ/θ, η/θ) for Adam (THEORY.md §3).

    Adam's ε and coupled-decay laws follow the raw gradient, which scales by θ: ε → θ·ε,
    l2 → θ²·l2 (SGD tables keep them at 1).
    """
    adam = optimizer == "adam"
    return RoleScaling(
        multiplier=laws.multiplier * theta,
        init_std=laws.init_std / theta,
        lr=laws.lr / theta ** (1 if adam else 2),
        eps=laws.eps * theta if adam else laws.eps,
        l2=laws.l2 * theta**2 if adam else laws.l2,
    )


def richness(
    r: float,
    gauge: Gauge = "stp",
    gamma: float = 1.0,
    optimizer: Optimizer = "sgd",
    base_width: float | None = None,
    *,
    allow_off_scale: bool = False,
) -> Parameterization:
    """The parameterization at richness r (‖Δh‖ ~ γ·n^r) in the given gauge.

    Args:
      r: richness exponent in [0, 1/2]: 0 is NTP (lazy), 1/2 is μP (rich).
      gauge: "stp" (layerwise LRs), "mup" (one global LR), "rescaling" (NTP with output/α).
      gamma: the width-independent prefactor γ of the activity α = γ·n^r.
      optimizer: "sgd" or "adam".
      base_width: n0 for base-relative tables (at n = n0, γ = 1: the standard model with the
        single LR you tuned); None for the tutorial's absolute tables.
      allow_off_scale: accept r outside [0, 1/2] (to study what breaks).

    Returns:
      A `Parameterization`.

    Raises:
      ValueError: r outside [0, 1/2], gamma ≤ 0, base_width ≤ 0, unknown gauge or optimizer.

    Example:
      >>> p = richness(0.5, gauge="stp")          # TP V's layerwise-LR μP for SGD
      >>> s = p.layer("input", width=1024, fan_in=64)
      >>> s.lr
      16.0
    """
    r = _check_r(r, allow_off_scale)
    gamma = _check_gamma(gamma)
    check_choice("gauge", gauge, GAUGES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    relative = base_width is not None
    table = stp_table(r, gamma, optimizer, relative)
    if gauge != "stp":
        alpha = Power(gamma, 0.0, r)
        transformed = {}
        for role, laws in table.items():
            theta = laws.lr**0.5 if optimizer == "sgd" else laws.lr
            if gauge == "rescaling":
                theta = theta / alpha
            transformed[role] = _gauge_transform(laws, theta, optimizer)
        table = transformed
    return Parameterization(
        roles=table,
        optimizer=optimizer,
        base_width=base_width,
        name=f"r={r:g} {gauge}",
        r=r,
        gamma=gamma,
        gauge=gauge,
    )


def preset_point(name: str) -> tuple[float | None, str | None]:
    """Returns (r, default gauge) of a named preset, (None, None) for "sp" (not on the scale).

    Raises:
      ValueError: an unknown name.
    """
    check_choice("preset", name, PRESETS)
    return (None, None) if name == "sp" else _PRESET_POINTS[name]


def preset(
    name: PresetName,
    gauge: Gauge | None = None,
    gamma: float = 1.0,
    optimizer: Optimizer = "sgd",
    base_width: float | None = None,
) -> Parameterization:
    """A named point: "sp", "ntp", "ntp-lr", "mup", "mup-lr" or "mf" (THEORY.md §3).

    "ntp" is r = 0 in the μP gauge (Jacot et al.), "mup" r = 1/2 in the μP gauge (Yang & Hu),
    "mf" r = 1/2 in the rescaling gauge, the "-lr" names the STP gauge; `gauge=` overrides.
    "sp" is the standard parameterization, not on the scale: g = 1, σ = 1/√fan_in everywhere,
    one global LR (its `predict()` shows NTC failing at fixed LR).

    Raises:
      ValueError: unknown name, gauge or optimizer, gamma ≤ 0, or a gauge given for "sp".
    """
    check_choice("preset", name, PRESETS)
    if name == "sp":
        if gauge is not None:
            raise ValueError(
                "gauge is not defined for preset 'sp' (it is not on the richness scale)"
            )
        check_choice("optimizer", optimizer, OPTIMIZERS)
        _check_gamma(gamma)
        sp = RoleScaling(multiplier=_ONE, init_std=_INV_SQRT_FAN_IN, lr=_ONE)
        return Parameterization(
            roles={"input": sp, "hidden": sp, "output": sp},
            optimizer=optimizer,
            base_width=base_width,
            name="sp",
        )
    r, default_gauge = _PRESET_POINTS[name]
    p = richness(r, gauge or default_gauge, gamma, optimizer, base_width)  # type: ignore[arg-type]
    return dataclasses.replace(p, name=name)


def table(
    r: float | None = None,
    preset_name: PresetName | None = None,
    gauge: Gauge | None = None,
    gamma: float = 1.0,
    optimizer: Optimizer = "sgd",
    base_width: float | None = None,
) -> Parameterization:
    """The table a run or a command names: richness r in a gauge (STP by default), or a preset.

    Raises:
      ValueError: both or neither of r and preset_name, or what `richness` / `preset` refuse.
    """
    if (r is None) == (preset_name is None):
        raise ValueError(f"give exactly one of r and preset, got r={r}, preset={preset_name}")
    if preset_name is not None:
        return preset(preset_name, gauge, gamma, optimizer, base_width)
    return richness(r, gauge or "stp", gamma, optimizer, base_width)
