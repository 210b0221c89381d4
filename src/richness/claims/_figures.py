"""Figures of the claims: measured quantity against width, per richness, with theory slopes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from richness.analysis._frames import run_table

__all__ = ["plt", "save_claim_figure", "width_figure"]


def _series(runs: pd.DataFrame, metrics: pd.DataFrame, quantity: str, step: int, layer: str):
    """(label, widths, geometric mean over seeds, min, max) per trained label."""
    m = metrics[(metrics.quantity == quantity) & (metrics.step == step) & (metrics.layer == layer)]
    labels = run_table(runs).set_index("run_id")
    m = m.assign(width=m.run_id.map(labels.width), label=m.run_id.map(labels.label))
    m = m[(m.value > 0) & np.isfinite(m.value)]
    for label, group in m.groupby("label", sort=True):
        stats = group.groupby("width").value.agg(
            gm=lambda v: float(np.exp(np.log(v).mean())), lo="min", hi="max"
        )
        yield (
            label,
            stats.index.to_numpy(),
            stats.gm.to_numpy(),
            stats.lo.to_numpy(),
            stats.hi.to_numpy(),
        )


def save_claim_figure(fig, out: Path, claim: str, title: str) -> str:
    """Titles, lays out, writes out/<claim>.png and closes the figure; returns the path."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(out) / f"{claim}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def width_figure(
    path: Path,
    title: str,
    panels: list[dict[str, Any]],
) -> str:
    """One panel per entry: {"runs", "metrics", "quantity", "step", "layer", "title",
    "predicted": {label: slope}}; lines are geometric means over seeds, shaded min–max,
    dashed the predicted slope through the first point."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        colors = plt.cm.viridis(np.linspace(0, 0.9, 8))
        series = list(
            _series(
                panel["runs"], panel["metrics"], panel["quantity"], panel["step"], panel["layer"]
            )
        )
        for i, (label, w, gm, lo, hi) in enumerate(series):
            color = colors[i % len(colors)]
            ax.loglog(w, gm, "o-", color=color, label=label, ms=3)
            ax.fill_between(w, lo, hi, color=color, alpha=0.15)
            slope = panel.get("predicted", {}).get(label)
            if slope is not None and math.isfinite(slope) and len(w):
                ax.loglog(w, gm[0] * (w / w[0]) ** slope, "--", color=color, lw=0.8)
        ax.set_xlabel("width n")
        ax.set_ylabel(f"{panel['quantity']} ({panel['layer'] or 'model'}, step {panel['step']})")
        ax.set_title(panel["title"], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    return save_claim_figure(fig, path.parent, path.stem, title + "  (dashed: predicted slope)")
