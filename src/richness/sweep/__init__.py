"""Sweeps: specs, runners and the run store (floor 3).

Names load on first use (PEP 562): the store and the specs need no torch, the runner does.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SpecError": "richness.sweep.spec",
    "SweepSpec": "richness.sweep.spec",
    "expand": "richness.sweep.spec",
    "load_spec": "richness.sweep.spec",
    "parse_spec": "richness.sweep.spec",
    "Store": "richness.sweep.store",
    "config_hash": "richness.sweep.store",
    "run_sweep": "richness.sweep.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'richness.sweep' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
