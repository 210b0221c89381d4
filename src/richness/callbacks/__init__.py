"""The Meter inside the loops people use: a Hugging Face Trainer callback and a metric logger.

  MeterCallback(trainer, probe_inputs, every=k)   measures every k steps, logs by trainer.log
  MetricLogger(log_dir, tensorboard="auto")       .log(step, metrics) to CSV (+ TensorBoard)

Names are loaded on first use (PEP 562): `MetricLogger` needs no `transformers`, and
`import richness.callbacks` imports neither transformers nor tensorboard.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MeterCallback": "richness.callbacks._trainer",
    "MetricLogger": "richness.callbacks._logger",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'richness.callbacks' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
