"""Runs of tables a sweep spec cannot name: off-scale richness (C17), SP with η ∝ 1/n (C18).

A sweep spec and a `RunConfig` accept r in [0, 1/2] only (THEORY.md §3), and that user-facing
validation stays as it is. The claims that study what breaks outside it train here instead: the
same model, data, optimizer, centered loop and Meter as a sweep run (`richness.build`,
`richness.train`), but parameterized by a `Parameterization` given explicitly. Every record's
config names its table and carries `"off_scale": true` when the table is not on the richness
scale (r outside [0, 1/2], or not a richness point at all), so these runs are never mistaken
for the scale's. Records are cached in `ctx.out` under the hash of what they depend on.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from richness.analysis import run_frames
from richness.claims._base import Context
from richness.config import RunConfig
from richness.scaling import Parameterization
from richness.sweep.store import config_hash
from richness.train import run

__all__ = ["table_runs"]


def _one(carrier: RunConfig, table: Parameterization) -> tuple[list, dict[str, Any], str]:
    """Trains the carrier config's model, data and loop under `table`: (rows, identity, status)."""
    outcome = run(carrier, table=table)
    if outcome.status == "failed":
        raise RuntimeError(f"{carrier.label} under {table.name}: {outcome.error}")
    return list(outcome.rows), outcome.identity, outcome.status


def table_runs(
    ctx: Context,
    name: str,
    tables: dict[str, Parameterization],
    *,
    model: dict[str, Any],
    data: dict[str, Any],
    widths: list[int],
    seeds: list[int],
    lr: float,
    steps: int,
    measure_steps: list[int],
    metrics: list[str],
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Trains every table at every width and seed; {table label: (runs, metrics)}.

    Args:
      ctx: where the records are cached (`ctx.out/<name>-<hash>.json`).
      name: the experiment's name (the cache file's prefix).
      tables: label → table; a table off the richness scale is recorded `off_scale: true`.
      model, data: a sweep spec's model and data sections.
      widths, seeds: the grid.
      lr: η0 (SGD); each layer's rate is η0 times its table's factor.
      steps, measure_steps, metrics: the loop's length and the Meter's steps and metrics.
    """
    tables_key = {k: repr(t) for k, t in tables.items()}
    key = config_hash(
        {
            "name": name,
            "tables": tables_key,
            "model": model,
            "data": data,
            "widths": widths,
            "seeds": seeds,
            "lr": lr,
            "steps": steps,
            "measure": [measure_steps, metrics],
            "version": 1,
        }
    )
    path = ctx.out / f"{name}-{key}.json"
    if path.exists():
        records = json.loads(path.read_text())
    else:
        records = []
        for label, table in tables.items():
            off_scale = table.r is None or not 0.0 <= table.r <= 0.5
            for width in widths:
                for seed in seeds:
                    carrier = RunConfig.parse(  # the model, data and loop; its r=0 is replaced
                        {
                            "model": model,
                            "data": data,
                            "width": width,
                            "seed": seed,
                            "r": 0.0,
                            "base_width": int(table.base_width) if table.base_width else None,
                            "train": {"kind": "sgd", "lr": lr, "steps": steps},
                            "measure": {"steps": measure_steps, "metrics": metrics},
                        }
                    )
                    rows, ident, status = _one(carrier, table)
                    config = {
                        **carrier.as_json(),
                        "r": table.r,
                        "preset": None,
                        "gauge": table.gauge,
                        "gamma": table.gamma,
                        "table": label,
                        "off_scale": off_scale,
                    }
                    records.append(
                        {
                            "run_id": f"{name}-{label}-{width}-{seed}",
                            "config": config,
                            "identity": ident,
                            "rows": rows,
                            "status": status,
                            "table": label,
                        }
                    )
        path.write_text(json.dumps(records))
    out = {}
    for label in tables:
        mine = [r for r in records if r["table"] == label]
        out[label] = run_frames(mine)
    return out
