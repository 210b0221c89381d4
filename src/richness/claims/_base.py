"""What every claim shares: the run context and the result record.

Claims judge a fitted exponent against its prediction by `richness.analysis.agreement`, the
library's one agreement rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from richness.sweep import Store, config_hash, expand, parse_spec, run_sweep

__all__ = ["ClaimResult", "Context"]

Scale = Literal["quick", "full"]


@dataclass
class Context:
    """Where and how big a reproduction runs.

    Attributes:
      out: output directory: `runs.sqlite` (resumable), figures, claims.json.
      scale: "quick" (small widths, few seeds: seconds, for tests) or "full" (docs).
      data_dir: CIFAR-10 directory for C13 (digits when None).
      workers: local processes for the sweeps (None: all cores).
      substitute: a preset to train in place of every richness point while the verdicts still
        expect the richness r (tests use "sp" to check that a wrong table fails a claim).
      progress: show progress bars.
      optimizer: "sgd" (the tutorial's) or "adam": the scale experiment (C1–C8) then trains
        the Adam tables of THEORY.md §3 with Adam and judges them against their own
        predictions (docs/adam.md).
      archs: the scale experiment's architectures to run (None: all of them).
      max_width: run the scale experiment only at widths ≤ this (None: every width of the
        scale): the full protocol (steps, seeds, r grid) on a grid a CPU finishes quickly.
    """

    out: Path
    scale: Scale = "full"
    data_dir: str | None = None
    workers: int | None = None
    substitute: str | None = None
    progress: bool = False
    optimizer: Literal["sgd", "adam"] = "sgd"
    archs: tuple[str, ...] | None = None
    max_width: int | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.scale not in ("quick", "full"):
            raise ValueError(f"scale={self.scale!r} is not one of 'quick', 'full'")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer={self.optimizer!r} is not one of 'sgd', 'adam'")
        if self.max_width is not None and not (
            isinstance(self.max_width, int) and self.max_width >= 1
        ):
            raise ValueError(f"max_width={self.max_width!r} must be an integer ≥ 1 or None")
        if self.archs is not None:
            self.archs = tuple(self.archs)
        self.out.mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> Path:
        return self.out / "runs.sqlite"

    def sweep(
        self, spec: dict[str, Any], *, substitutable: bool = True
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Runs a sweep spec (skipping finished runs) and returns its (runs, metrics) frames.

        With `substitutable` (the default) and `substitute` set, the spec's richness points are
        replaced by the substitute preset.
        """
        if substitutable and self.substitute and spec.get("richness"):
            spec = {**spec, "presets": [self.substitute], "richness": []}
        parsed = parse_spec(spec)
        run_sweep(parsed, self.db, workers=self.workers, progress=self.progress)
        ids = {config_hash(c) for c in expand(parsed)}
        store = Store(self.db)
        runs = store.runs()
        runs = runs[runs.run_id.isin(ids)].reset_index(drop=True)
        metrics = store.metrics(run_ids=list(ids))
        return runs, metrics


@dataclass
class ClaimResult:
    """One claim's verdict (DESIGN.md claims.json record) plus its tables and figures.

    `rule` is the rule it was judged by (`richness.claims.rules`, with its version and
    history); `first_rule_verdict` the verdict of the same runs under the claim's first rule
    where that rule was changed after its data were seen and can be applied to these runs.
    """

    claim: str
    title: str
    verdict: Literal["pass", "fail"]
    measured: Any
    predicted: Any
    tolerance: Any
    details: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)
    rule: dict[str, Any] = field(default_factory=dict)
    first_rule_verdict: str | None = None

    def __post_init__(self) -> None:
        if not self.rule:  # the rule it was judged by (richness.claims.rules)
            from richness.claims.rules import RULES, rule_of

            self.rule = rule_of(self.claim) if self.claim in RULES else {}

    def to_json(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(obj: Any) -> Any:
    """JSON-safe: NaN and inf become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):
        return _finite(obj.item())
    return obj
