"""String choices shared by every floor (THEORY.md §1, §3)."""

from typing import Literal, get_args

Role = Literal["input", "hidden", "output"]
Gauge = Literal["stp", "mup", "rescaling"]
Optimizer = Literal["sgd", "adam"]
PresetName = Literal["sp", "ntp", "ntp-lr", "mup", "mup-lr", "mf"]

ROLES: tuple[str, ...] = get_args(Role)
GAUGES: tuple[str, ...] = get_args(Gauge)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
PRESETS: tuple[str, ...] = get_args(PresetName)


def check_choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """Returns `value` if it is one of `allowed`, else raises a ValueError naming the field."""
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return value  # type: ignore[return-value]
