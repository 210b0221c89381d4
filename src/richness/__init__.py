"""richness: the richness scale of wide networks, from lazy (NTK, r = 0) to rich (μP, r = 1/2).

The public surface of DESIGN.md. Names are loaded on first use (PEP 562), so that the pure
theory floor, `richness.scaling`, can be imported without torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "Parameterization": ("richness.scaling", "Parameterization"),
    "richness": ("richness.scaling", "richness"),
    "preset": ("richness.scaling", "preset"),
    "models": ("richness.nn.models", ""),
    "parameterize": ("richness.nn", "parameterize"),
    "optimizer": ("richness.nn", "optimizer"),
    "Meter": ("richness.measure.meter", "Meter"),
    "empirical_ntk": ("richness.measure", "empirical_ntk"),
    "linearize": ("richness.measure", "linearize"),
    "infinite_ntk": ("richness.measure", "infinite_ntk"),
    "infinite_nngp": ("richness.measure", "infinite_nngp"),
    "infinite": ("richness.infinite", ""),
    "Store": ("richness.sweep.store", "Store"),
    "load_dataset": ("richness.data", "load_dataset"),
    "estimate_richness": ("richness.estimate", "estimate_richness"),
    "callbacks": ("richness.callbacks", ""),
    "nn": ("richness.nn", ""),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'richness' has no attribute {name!r}")
    module_name, attr = _EXPORTS[name]
    module = import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
