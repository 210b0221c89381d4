"""Floor 1: pure theory, no torch. Tables, gauges, presets, predicted exponents (THEORY.md §3–4)."""

from richness.scaling._types import GAUGES, OPTIMIZERS, PRESETS, ROLES, Gauge, Optimizer, Role
from richness.scaling.parameterization import LayerScaling, Parameterization, RoleScaling
from richness.scaling.power import Power
from richness.scaling.predict import Criterion, criteria, predict_exponents
from richness.scaling.series import predicted_series
from richness.scaling.tables import preset, richness, stp_table, table

__all__ = [
    "GAUGES",
    "OPTIMIZERS",
    "PRESETS",
    "ROLES",
    "Criterion",
    "Gauge",
    "LayerScaling",
    "Optimizer",
    "Parameterization",
    "Power",
    "Role",
    "RoleScaling",
    "criteria",
    "predict_exponents",
    "predicted_series",
    "preset",
    "richness",
    "stp_table",
    "table",
]
