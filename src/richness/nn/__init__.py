"""Floor 2: torch glue. Roles, multipliers, initialization, param groups, reference models."""

from richness.nn import models
from richness.nn.multiplier import Multiplier
from richness.nn.optim import optimizer
from richness.nn.parameterize import (
    effective_weights,
    load_effective_weights,
    multipliers,
    parameterize,
    table_of,
)
from richness.nn.roles import ParamRole, infer_roles

__all__ = [
    "Multiplier",
    "ParamRole",
    "effective_weights",
    "infer_roles",
    "load_effective_weights",
    "models",
    "multipliers",
    "optimizer",
    "parameterize",
    "table_of",
]
