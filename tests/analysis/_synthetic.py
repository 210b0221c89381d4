"""Synthetic store frames with known power laws (THEORY.md §4), for the analysis tests."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd

from richness.analysis._frames import meter_key, predicted_exponent
from richness.scaling import Parameterization, predicted_series, preset, richness

LAYERS = ["layers.0", "layers.1", "layers.2"]
PER_LAYER = ("h_rms", "dh", "dh_rms", "max_ratio", "align")
MODEL_LEVEL = ("f0", "df", "lin_gap", "loss")


def identity_of(p: Parameterization | None, layers: list[str] = LAYERS) -> dict:
    """The identity a run of table `p` records (`richness.build.identity`), roles by position."""
    roles = ["input"] + ["hidden"] * (len(layers) - 2) + ["output"]
    predicted, predicted_init = predicted_series(p, layers) if p is not None else ({}, {})
    return {
        "depth": len(layers),
        "layers": [
            {"name": name, "role": role, "ell": ell}
            for ell, (name, role) in enumerate(zip(layers, roles, strict=True), 1)
        ],
        "predicted": predicted,
        "predicted_init": predicted_init,
    }


def _run_id(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def synth_frames(
    *,
    points=(("r", 0.0), ("r", 0.25), ("r", 0.5), ("preset", "sp")),
    gauge: str = "stp",
    widths=(64, 128, 256, 512, 1024),
    seeds=(0, 1, 2, 3),
    steps=(0, 1, 3),
    seed_slope_noise: float = 0.01,
    noise: float = 0.03,
    rng_seed: int = 0,
    broken_runs: bool = True,
    truth: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (runs, metrics) shaped like the store's, values c·n^e·exp(noise).

    e is the run's recorded prediction (`identity_of`) unless `truth` maps quantity -> exponent;
    each seed also gets its own small slope offset (seed_slope_noise), which only a bootstrap
    over seeds (not over points) sees.
    """
    rng = np.random.default_rng(rng_seed)
    run_rows, metric_rows = [], []
    for kind, value in points:
        if kind == "r":
            p = richness(value, gauge, 1.0, "sgd", 64)
            cfg_point = {"r": value, "preset": None, "gauge": gauge}
        else:
            p = preset(value, base_width=64)
            cfg_point = {"r": None, "preset": value, "gauge": None}
        identity = identity_of(p)
        offsets = {s: rng.normal(0, seed_slope_noise) for s in seeds}
        for width in widths:
            for seed in seeds:
                config = {
                    "width": width,
                    **cfg_point,
                    "gamma": 1.0,
                    "seed": seed,
                    "base_width": 64,
                    "optimizer": "sgd",
                    "center": True,
                    "steps": max(steps),
                }
                run_id = _run_id(config)
                run_rows.append(
                    {"run_id": run_id, "status": "done", "config": config, "identity": identity}
                )
                for step in steps:
                    series = [
                        (q, layer, ell) for q in PER_LAYER for ell, layer in enumerate(LAYERS, 1)
                    ]
                    series += [(q, "", None) for q in MODEL_LEVEL]
                    for q, layer, _ in series:
                        if step == 0 and q in (
                            "dh",
                            "dh_rms",
                            "df",
                            "lin_gap",
                            "max_ratio",
                            "align",
                        ):
                            metric_rows.append((run_id, step, layer, q, 0.0))
                            continue
                        if truth is not None and q in truth:
                            e = truth[q]
                        else:
                            e = predicted_exponent(identity, meter_key(q, layer), step)
                        if math.isnan(e):
                            e = 0.0
                        e += offsets[seed]
                        c = 0.5 + 0.1 * step
                        v = c * (width / 64) ** e * math.exp(rng.normal(0, noise))
                        metric_rows.append((run_id, step, layer, q, v))
    if broken_runs:
        for status, error, diverged_step in (
            ("diverged", None, 2),
            (
                "failed",
                "Traceback (most recent call last):\n  ...\nRuntimeError: out of memory",
                None,
            ),
        ):
            config = {
                "width": 2048,
                "r": 0.5,
                "preset": None,
                "gauge": gauge,
                "gamma": 1.0,
                "seed": 0,
                "base_width": 64,
                "optimizer": "sgd",
                "center": True,
                "steps": max(steps),
                "status_hint": status,
            }
            run_id = _run_id(config)
            run_rows.append(
                {
                    "run_id": run_id,
                    "status": status,
                    "config": config,
                    "identity": None,
                    "error": error,
                    "diverged_step": diverged_step,
                }
            )
            for q in ("dh", "h_rms"):
                metric_rows.append((run_id, 1, "layers.1", q, 1e30))
            metric_rows.append((run_id, 1, "", "df", float("inf")))
    runs = pd.DataFrame.from_records(run_rows)
    flat = pd.DataFrame.from_records(list(runs["config"]))
    runs = pd.concat([runs.drop(columns=["config"]), flat], axis=1)
    runs.insert(2, "config", [json.dumps(c) for c in (r["config"] for r in run_rows)])
    # a store's runs() has one identity dict per run (None for runs that never finished)
    metrics = pd.DataFrame.from_records(
        metric_rows, columns=["run_id", "step", "layer", "quantity", "value"]
    )
    return runs, metrics
