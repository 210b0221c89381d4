"""Measurement instruments (floor 2): the Meter, empirical NTK, linearization, infinite kernels.

Every instrument works on any ``torch.nn.Module`` through ``torch.func.functional_call`` with
``dict(model.named_parameters())``, so weights parametrized with ``torch.nn.utils.parametrize``
(the multipliers of ``richness.nn``) are handled without special cases.
"""

from richness.measure.infinite import (
    infinite_nngp,
    infinite_ntk,
    kernel_regression,
    ntk_predictor,
)
from richness.measure.linearize import (
    LinearizedModel,
    linearization_gap,
    linearize,
    second_order_term,
)
from richness.measure.meter import ALL_METRICS, DEFAULT_METRICS, Meter
from richness.measure.ntk import (
    NtkMethod,
    empirical_ntk,
    kernel_alignment,
    kernel_distance,
    lr_weights_from_optimizer,
)

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "LinearizedModel",
    "Meter",
    "NtkMethod",
    "empirical_ntk",
    "infinite_nngp",
    "infinite_ntk",
    "kernel_alignment",
    "kernel_distance",
    "kernel_regression",
    "linearization_gap",
    "linearize",
    "lr_weights_from_optimizer",
    "ntk_predictor",
    "second_order_term",
]
