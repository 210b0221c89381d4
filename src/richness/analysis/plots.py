"""Figures of a sweep: coordinate checks, the richness scale, and the phase diagram.

Every figure is drawn on a `matplotlib.figure.Figure` with the Agg canvas attached here
(`FigureCanvasAgg`), never through `pyplot`: no global backend switch, no open-figure
registry, safe in threads and notebooks, and no display needed.

Measures: THEORY.md §4 — the coordinate check shows C1–C8 per layer against width; the
richness scale plots C2's ‖Δh‖ exponent against r (prediction: r) and C8's linearization-gap
exponent against r (leading prediction: 2r − 1), with local slopes to show convergence; the
phase diagram shows relative feature movement ‖Δh‖/‖h‖ over (width, r).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, LogFormatter, NullLocator

from richness.analysis._frames import group_key, last_step_rows, quantity_label, tidy

__all__ = [
    "COORD_QUANTITIES",
    "plot_coord_check",
    "plot_phase_diagram",
    "plot_richness_scale",
]

# What a coordinate check shows by default, in panel order: per-layer quantities first.
COORD_QUANTITIES: tuple[str, ...] = ("h_rms", "dh", "max_ratio", "align", "f0", "df", "lin_gap")

_DPI = 150
_STEP_CMAP = "viridis"
_GAUGE_COLORS = {"stp": "tab:blue", "mup": "tab:orange", "rescaling": "tab:green", "": "tab:gray"}


def _new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_") or "run"


def group_title(row: dict[str, Any] | pd.Series) -> str:
    """A one-line title for a parameterization: label, gauge and the non-default settings."""
    parts = [str(row["label"])]
    if row.get("gauge"):
        parts.append(f"gauge {row['gauge']}")
    if row.get("optimizer") and row["optimizer"] != "sgd":
        parts.append(str(row["optimizer"]))
    gamma = row.get("gamma")
    if gamma is not None and not (isinstance(gamma, float) and math.isnan(gamma)) and gamma != 1:
        parts.append(f"γ={gamma:g}")
    depth = row.get("depth")
    if depth is not None and not (isinstance(depth, float) and math.isnan(depth)):
        parts.append(f"depth {int(depth)}")
    return ", ".join(parts)


def _pick_steps(steps: Sequence[int], max_steps: int) -> list[int]:
    steps = sorted(set(int(s) for s in steps))
    if len(steps) <= max_steps:
        return steps
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, max_steps)).astype(int))
    return [steps[i] for i in idx]


def _layer_title(layer: str, ell: int, depth: float) -> str:
    if ell < 0:
        return "model output"
    if not math.isnan(depth) and ell == int(depth):
        return f"{layer} (ℓ={ell}, output f)"
    return f"{layer} (ℓ={ell})"


def plot_coord_check(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    out_dir: str | Path,
    *,
    quantities: Sequence[str] = COORD_QUANTITIES,
    max_steps: int = 6,
    fits: pd.DataFrame | None = None,
    ncols: int = 4,
) -> list[Path]:
    """Draws one coordinate-check figure per parameterization; returns the PNG paths.

    As in the μP paper's coordinate checks (arXiv:2203.03466, Fig. 5): each panel is one
    quantity of one layer against width on log-log axes, one line per step (colour = step),
    the seed geometric mean with a band from the smallest to the largest seed. A flat line
    means width-independent (C1, C4, C5); ‖Δh‖ should rise with slope r (C2). With ``fits``,
    each panel also prints the fitted slope at the last step, its interval and the prediction.

    Args:
      runs: the store's runs frame (only status "done" runs are drawn).
      metrics: the store's metrics frame.
      out_dir: folder for the PNGs (created).
      quantities: quantities to draw, in panel order; absent ones are skipped.
      max_steps: at most this many steps are drawn (first and last always).
      fits: the output of `fit_exponents`, for the slope annotations (optional).
      ncols: panels per row.

    Returns:
      The written files, ``coord_<label>_<gauge>.png``, one per parameterization.
    """
    out_dir = Path(out_dir)
    data = tidy(runs, metrics)
    data = data[data["quantity"].isin(list(quantities))]
    data = data[np.isfinite(data["value"]) & (data["value"] > 0)]
    paths: list[Path] = []
    used_names: set[str] = set()
    order = {q: i for i, q in enumerate(quantities)}
    for group, gdata in data.groupby("group", sort=True):
        first = gdata.iloc[0]
        shown_steps = _pick_steps(gdata["step"].unique(), max_steps)
        gdata = gdata[gdata["step"].isin(shown_steps)]
        panels = sorted(
            {
                (q, layer, int(ell))
                for q, layer, ell in gdata[["quantity", "layer", "ell"]].itertuples(index=False)
            },
            key=lambda p: (order[p[0]], p[2] if p[2] >= 0 else 10**6, p[1]),
        )
        if not panels:
            continue
        n_rows = math.ceil(len(panels) / ncols)
        n_cols = min(ncols, len(panels))
        fig = _new_figure(3.5 * n_cols + 1.2, 2.9 * n_rows + 0.7, layout=None)
        fig.subplots_adjust(
            left=0.8 / fig.get_figwidth(),
            right=1 - 1.35 / fig.get_figwidth(),
            bottom=0.55 / fig.get_figheight(),
            top=1 - 0.75 / fig.get_figheight(),
            wspace=0.42,
            hspace=0.62,
        )
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        norm = Normalize(vmin=min(shown_steps), vmax=max(max(shown_steps), min(shown_steps) + 1))
        cmap = mpl.colormaps[_STEP_CMAP]
        group_fits = None
        if fits is not None and not fits.empty:
            keys = [group_key(row) for row in fits.to_dict("records")]
            group_fits = fits[[k == group for k in keys]]
        all_widths = sorted(int(w) for w in gdata["width"].unique())
        for ax, (quantity, layer, ell) in zip(axes.flat, panels, strict=False):
            pdata = gdata[(gdata["quantity"] == quantity) & (gdata["layer"] == layer)]
            for step, sdata in pdata.groupby("step"):
                logs = np.log(sdata["value"].to_numpy())
                stats = (
                    pd.DataFrame({"width": sdata["width"].to_numpy(), "log": logs})
                    .groupby("width")["log"]
                    .agg(["mean", "min", "max"])
                )
                color = cmap(norm(step))
                ax.plot(
                    stats.index,
                    np.exp(stats["mean"]),
                    "o-",
                    color=color,
                    ms=3.5,
                    lw=1.4,
                    label=f"t={step}",
                )
                if len(stats) > 1:
                    ax.fill_between(
                        stats.index,
                        np.exp(stats["min"]),
                        np.exp(stats["max"]),
                        color=color,
                        alpha=0.15,
                        lw=0,
                    )
            _log_axes(ax, all_widths)
            title = f"{quantity} · {_layer_title(layer, ell, float(first['depth']))}"
            if group_fits is not None:
                title += _slope_note(group_fits, quantity, layer)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("width n (hidden units)", fontsize=8)
            ax.set_ylabel(quantity_label(quantity), fontsize=8)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
        cax = fig.add_axes((1 - 0.95 / fig.get_figwidth(), 0.25, 0.16 / fig.get_figwidth(), 0.5))
        bar = fig.colorbar(sm, cax=cax)
        bar.set_label("optimizer step t (0 = init)")
        bar.set_ticks(shown_steps)
        fig.suptitle(
            f"Coordinate check — {group_title(first)}: seed geometric mean, band = seed range",
            fontsize=11,
        )
        name = f"coord_{_slug(str(first['label']))}_{_slug(str(first['gauge']) or 'none')}"
        stem, k = name, 2
        while name in used_names:
            name, k = f"{stem}_{k}", k + 1
        used_names.add(name)
        paths.append(_save(fig, out_dir / f"{name}.png"))
    return paths


def _slope_note(fits: pd.DataFrame, quantity: str, layer: str) -> str:
    """A second title line: the fitted slope at the last step, its interval and prediction."""
    rows = fits[(fits["quantity"] == quantity) & (fits["layer"] == layer)]
    if rows.empty:
        return ""
    row = rows.loc[rows["step"].idxmax()]
    text = f"\nt={int(row['step'])}: slope {row['slope']:+.2f}"
    if not math.isnan(row["ci_low"]):
        text += f" [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
    if not math.isnan(row["predicted"]):
        text += f", predicted {row['predicted']:+.2f}"
    return text


class _PlainLogFormatter(LogFormatter):
    """Labels the ticks `LogFormatter` would label, as plain numbers (0.6, 8, 20)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def _log_axes(ax: Any, widths: Sequence[int]) -> None:
    """Log-log axes with the sweep's widths as x ticks and plain-number y labels."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(widths))
    ax.xaxis.set_major_formatter(FixedFormatter([str(w) for w in widths]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=True))
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="y", which="minor", labelsize=6)
    ax.grid(True, which="major", alpha=0.3)


def plot_richness_scale(
    fits: pd.DataFrame,
    local: pd.DataFrame | None,
    out_path: str | Path,
    *,
    step: int | None = None,
) -> Path | None:
    """Draws the richness scale: measured exponents against r, with local slopes; returns the path.

    Top left: the fitted ‖Δh‖ exponent of each hidden layer against r with its confidence
    interval, against the line slope = r (C2). Top right: the linearization-gap exponent
    against r, against the leading prediction 2r − 1 (C8). Bottom: the local slopes between
    consecutive widths of the last hidden layer, which should flatten onto the prediction as
    width grows (THEORY.md, note under §4).

    Args:
      fits: the output of `fit_exponents` (rows with r NaN, as SP, are left out).
      local: the output of `local_slopes` (None: bottom row from ``fits["local_slopes"]``).
      out_path: the PNG to write.
      step: the step to show (None: each parameterization's last fitted step).

    Returns:
      The written path, or None when no fitted run has an r.
    """
    out_path = Path(out_path)
    rows = last_step_rows(fits[fits["r"].notna()], step) if not fits.empty else fits
    if rows.empty:
        return None
    fig = _new_figure(12.5, 8.6)
    (ax_dh, ax_gap), (ax_ldh, ax_lgap) = fig.subplots(2, 2)
    r_values = sorted(rows["r"].unique())
    r_lo, r_hi = min(0.0, r_values[0]), max(0.5, r_values[-1])
    grid = np.linspace(r_lo, r_hi, 50)
    gauges = sorted(rows["gauge"].unique())
    hidden = rows[(rows["ell"] >= 1) & (rows["ell"] < rows["depth"])]
    n_hidden = max(1, int(hidden["ell"].max()) if not hidden.empty else 1)
    markers = "osD^v<>p*h"

    def scatter(ax: Any, sel: pd.DataFrame, label_layers: bool) -> None:
        for gi, gauge in enumerate(gauges):
            for ell, lrows in sel[sel["gauge"] == gauge].groupby("ell"):
                layer_shift = (ell - 1) - (n_hidden - 1) / 2 if ell >= 1 else 0.0
                offset = 0.006 * layer_shift + 0.004 * (gi - (len(gauges) - 1) / 2)
                x = lrows["r"].to_numpy() + offset
                y = lrows["slope"].to_numpy()
                lo = np.where(lrows["ci_low"].notna(), y - lrows["ci_low"], 0.0)
                hi = np.where(lrows["ci_high"].notna(), lrows["ci_high"] - y, 0.0)
                what = f"gauge {gauge or '—'}"
                if label_layers and ell >= 0:
                    what += f", {lrows['layer'].iloc[0]} (ℓ={ell})"
                ax.errorbar(
                    x,
                    y,
                    yerr=[lo, hi],
                    fmt=markers[(max(ell, 1) - 1) % len(markers)],
                    color=_GAUGE_COLORS.get(gauge, "tab:purple"),
                    ms=5,
                    capsize=3,
                    lw=1.2,
                    label=what,
                )

    dh = hidden[hidden["quantity"] == "dh"]
    ax_dh.plot(grid, grid, "k--", lw=1, label="theory: slope = r")
    scatter(ax_dh, dh, label_layers=True)
    ax_dh.set_title("‖Δh‖ exponent vs richness r (C2)", fontsize=10)
    ax_dh.set_xlabel("richness r (‖Δh‖ ∝ nʳ)")
    ax_dh.set_ylabel("fitted slope of log ‖Δh‖ vs log n")
    ax_dh.legend(fontsize=7, loc="upper left")

    gap = rows[rows["quantity"] == "lin_gap"]
    ax_gap.plot(grid, 2 * grid - 1, "k--", lw=1, label="leading term: 2r − 1")
    if gap.empty:
        ax_gap.text(
            0.5, 0.5, "lin_gap not measured", ha="center", va="center", transform=ax_gap.transAxes
        )
    else:
        scatter(ax_gap, gap, label_layers=False)
    ax_gap.set_title("Linearization-gap exponent vs r (C8)", fontsize=10)
    ax_gap.set_xlabel("richness r")
    ax_gap.set_ylabel("fitted slope of log(‖f − f_lin‖/‖Δf‖) vs log n")
    ax_gap.legend(fontsize=7, loc="upper left")

    steps_shown = sorted(rows["step"].unique())
    for ax in (ax_dh, ax_gap):
        ax.grid(True, alpha=0.3)
    _local_panel(ax_ldh, rows, local, "dh", "‖Δh‖ (last hidden layer)", last_hidden=True)
    _local_panel(ax_lgap, rows, local, "lin_gap", "linearization gap", last_hidden=False)
    fig.suptitle(
        "The richness scale: measured width exponents against r "
        f"(step t = {', '.join(str(int(s)) for s in steps_shown)}; bars: seed-bootstrap CI)",
        fontsize=11,
    )
    return _save(fig, out_path)


def _local_panel(
    ax: Any,
    rows: pd.DataFrame,
    local: pd.DataFrame | None,
    quantity: str,
    what: str,
    *,
    last_hidden: bool,
) -> None:
    sel = rows[rows["quantity"] == quantity]
    if last_hidden:
        sel = sel[(sel["ell"] >= 1) & (sel["ell"] == sel["depth"] - 1)]
    ax.set_title(f"Local slopes of {what} between consecutive widths", fontsize=10)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width pair n → 2n (hidden units)")
    ax.set_ylabel("local slope (exponent between the pair)")
    ax.grid(True, alpha=0.3)
    if sel.empty:
        ax.text(
            0.5, 0.5, f"{quantity} not measured", ha="center", va="center", transform=ax.transAxes
        )
        return
    if local is not None and not local.empty:
        local = local[local["quantity"] == quantity]
        local = local.assign(_key=[group_key(row) for row in local.to_dict("records")])
    r_norm = Normalize(vmin=0.0, vmax=max(0.5, float(sel["r"].max())))
    cmap = mpl.colormaps["plasma"]
    styles = ["-", "--", ":", "-."]
    gauges = sorted(sel["gauge"].unique())
    pairs: dict[float, str] = {}
    for row in sel.sort_values(["r", "gauge"]).to_dict("records"):
        widths = np.asarray(row["widths"], dtype=float)
        mids = np.sqrt(widths[:-1] * widths[1:])
        pairs.update(
            {m: f"{lo:g}–{hi:g}" for m, lo, hi in zip(mids, widths[:-1], widths[1:], strict=True)}
        )
        color = cmap(r_norm(row["r"]) * 0.85)
        fmt = "o" + styles[gauges.index(row["gauge"]) % len(styles)]
        label = f"{row['label']}" + (f" ({row['gauge'] or '—'})" if len(gauges) > 1 else "")
        y = np.asarray(row["local_slopes"], dtype=float)
        err = None
        if local is not None and not local.empty:
            lrows = local[
                (local["_key"] == group_key(row))
                & (local["layer"] == row["layer"])
                & (local["step"] == row["step"])
            ].sort_values("width_lo")
            if len(lrows) == len(mids):
                y = lrows["slope"].to_numpy()
                lo = np.where(lrows["ci_low"].notna(), y - lrows["ci_low"], 0.0)
                hi = np.where(lrows["ci_high"].notna(), lrows["ci_high"] - y, 0.0)
                err = [lo, hi]
        ax.errorbar(mids, y, yerr=err, fmt=fmt, color=color, ms=4, capsize=2, lw=1.3, label=label)
        if not math.isnan(row["predicted"]):
            ax.axhline(row["predicted"], color=color, lw=0.8, ls=":")
    ticks = sorted(pairs)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([pairs[t] for t in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="dotted:\nprediction",
        title_fontsize=7,
    )


def plot_phase_diagram(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    out_path: str | Path,
) -> Path | None:
    """Draws relative feature movement over (width, r) as a heatmap; returns the path.

    The cell value is ‖Δh‖ / ‖h‖ of the last hidden layer at each run's last step, with
    ‖h‖ = h_rms·√n (RMS coordinate times √width), geometric mean over seeds. On the scale it
    grows like n^{r − 1/2}: it vanishes with width for every r < 1/2 (lazy) and stays of
    order one at r = 1/2 (rich), THEORY.md §4's discontinuous transition seen at finite width.

    Args:
      runs: the store's runs frame (only "done" runs with an r are used).
      metrics: the store's metrics frame.
      out_path: the PNG to write.

    Returns:
      The written path, or None when no run has both dh and h_rms of a hidden layer.
    """
    out_path = Path(out_path)
    data = tidy(runs, metrics)
    data = data[data["r"].notna() & data["quantity"].isin(["dh", "h_rms"])]
    data = data[(data["ell"] >= 1) & (data["ell"] == data["depth"] - 1)]
    if data.empty:
        return None
    last = data.groupby("run_id")["step"].transform("max")
    data = data[data["step"] == last]
    wide = data.pivot_table(
        index=["run_id", "r", "width", "gauge", "optimizer", "gamma", "depth"],
        columns="quantity",
        values="value",
        aggfunc="mean",
    ).reset_index()
    if "dh" not in wide or "h_rms" not in wide:
        return None
    rel = wide["dh"] / (wide["h_rms"] * np.sqrt(wide["width"]))
    wide = wide.assign(rel=rel)
    wide = wide[np.isfinite(wide["rel"]) & (wide["rel"] > 0)]
    if wide.empty:
        return None
    wide = wide.assign(log_rel=np.log(wide["rel"]))
    panel_keys = ["gauge", "optimizer", "gamma", "depth"]
    panels = list(wide.groupby(panel_keys, sort=True))
    fig = _new_figure(5.4 * len(panels) + 1.2, 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    vmin, vmax = float(wide["rel"].min()), float(wide["rel"].max())
    norm = LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * 10)
    image = None
    for ax, (key, pdata) in zip(axes, panels, strict=True):
        grid = pdata.groupby(["r", "width"])["log_rel"].mean().unstack("width")
        grid = np.exp(grid.sort_index())
        widths = [int(w) for w in grid.columns]
        image = ax.imshow(grid.to_numpy(), norm=norm, cmap="magma", aspect="auto", origin="lower")
        ax.set_xticks(range(len(widths)), [str(w) for w in widths])
        ax.set_yticks(range(len(grid.index)), [f"{r:g}" for r in grid.index])
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                value = grid.iat[i, j]
                if np.isfinite(value):
                    shade = norm(value)
                    ax.text(
                        j,
                        i,
                        f"{value:.2g}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="black" if shade > 0.6 else "white",
                    )
        gauge, optimizer, gamma, depth = key
        ax.set_title(
            f"gauge {gauge or '—'}, {optimizer}, γ={gamma:g}, depth {int(depth)}", fontsize=10
        )
        ax.set_xlabel("width n (hidden units)")
        ax.set_ylabel("richness r")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label("‖Δh‖ / ‖h‖ (last hidden layer, last step)")
    fig.suptitle(
        "Phase diagram: relative feature movement ‖Δh‖/‖h‖ (lazy: → 0 with width; rich: Θ(1))",
        fontsize=11,
    )
    return _save(fig, out_path)
