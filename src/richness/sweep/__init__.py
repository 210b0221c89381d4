"""Sweeps: specs, runners and the run store (floor 3)."""

from richness.sweep.runner import run_sweep
from richness.sweep.spec import SpecError, SweepSpec, expand, load_spec, parse_spec
from richness.sweep.store import Store, config_hash

__all__ = [
    "SpecError",
    "Store",
    "SweepSpec",
    "config_hash",
    "expand",
    "load_spec",
    "parse_spec",
    "run_sweep",
]
