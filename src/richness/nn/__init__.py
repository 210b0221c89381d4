"""Floor 2: torch glue. Roles, multipliers, initialization, param groups, reference models."""

from richness.nn import hf, models
from richness.nn.layers import WeightLayout, layout_of, register_layer_type
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
    "WeightLayout",
    "effective_weights",
    "hf",
    "infer_roles",
    "layout_of",
    "load_effective_weights",
    "models",
    "multipliers",
    "optimizer",
    "parameterize",
    "register_layer_type",
    "table_of",
]
