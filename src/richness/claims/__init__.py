"""Floor 4: every claim of THEORY.md §4 as a runnable experiment with a verdict.

    from richness.claims import reproduce
    results = reproduce(["C2", "C8"], out="repro", scale="quick")

Each module `cNN_*.py` holds one claim: its experiment (a sweep spec), its analysis and its
verdict rule with the tolerance stated. Claims share runs through the store in `out/`.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from richness.claims._base import ClaimResult, Context

__all__ = ["CLAIMS", "ClaimResult", "Context", "reproduce"]

CLAIMS: dict[str, str] = {
    "C1": "c01_activations",
    "C2": "c02_feature_updates",
    "C3": "c03_initial_outputs",
    "C4": "c04_output_updates",
    "C5": "c05_maximality",
    "C6": "c06_alignment",
    "C7": "c07_gradients",
    "C8": "c08_linearization",
    "C9": "c09_standard",
    "C10": "c10_gauges",
    "C11": "c11_rescaling",
    "C12": "c12_kernel_limit",
    "C13": "c13_practical",
    "C14": "c14_weight_updates",
    "C15": "c15_second_order",
    "C16": "c16_useful_updates",
    "C17": "c17_off_scale",
    "C18": "c18_sp_small_lr",
    "C19": "c19_kernel_regression",
    "C20": "c20_sharpening",
    "C21": "c21_rich_limit",
    "C22": "c22_transition",
}


def _resolve(claims: list[str] | str) -> list[str]:
    names = [claims] if isinstance(claims, str) else list(claims)
    if names == ["all"]:
        return list(CLAIMS)
    unknown = [c for c in names if c.upper() not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; allowed: {list(CLAIMS)} or 'all'")
    return [c.upper() for c in names]


def reproduce(
    claims: list[str] | str,
    out: str | Path,
    *,
    scale: str = "full",
    data_dir: str | None = None,
    workers: int | None = None,
    substitute: str | None = None,
    progress: bool = False,
    optimizer: str = "sgd",
    archs: list[str] | None = None,
    max_width: int | None = None,
) -> list[ClaimResult]:
    """Runs the claims and writes out/claims.json (DESIGN.md format) and the figures.

    Args:
      claims: ids ("C2"), a list of them, or "all".
      out: output directory (its runs.sqlite makes a second call resume, not recompute).
      scale: "quick" or "full".
      data_dir: CIFAR-10 directory for C13.
      workers: local processes.
      substitute: train this preset wherever a richness point is expected (tests).
      progress: show progress bars.
      optimizer: "sgd" or "adam": the optimizer (and table) of the scale experiment behind
        C1–C8 (docs/adam.md).
      archs: the scale experiment's architectures ("linear", "mlp", "cnn"); None: all.
      max_width: cap the scale experiment's widths (None: every width of the scale).

    Raises:
      ValueError: an unknown claim id, scale, optimizer or architecture.
    """
    ids = _resolve(claims)
    ctx = Context(
        Path(out),
        scale=scale,
        data_dir=data_dir,
        workers=workers,  # type: ignore[arg-type]
        substitute=substitute,
        progress=progress,
        optimizer=optimizer,  # type: ignore[arg-type]
        archs=None if archs is None else tuple(archs),
        max_width=max_width,
    )
    results = []
    for claim in ids:
        module = import_module(f"richness.claims.{CLAIMS[claim]}")
        results.append(module.run(ctx))
    path = ctx.out / "claims.json"
    previous = json.loads(path.read_text()) if path.exists() else []
    merged = {row["claim"]: row for row in previous}
    merged.update({r.claim: r.to_json() for r in results})
    ordered = [merged[c] for c in CLAIMS if c in merged]
    path.write_text(json.dumps(ordered, indent=2))
    return results
