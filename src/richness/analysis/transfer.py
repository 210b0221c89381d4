"""μTransfer: the optimal base learning rate η0 at each width, its drift with width, a verdict.

Measures: THEORY.md §5, μTransfer: at r = 1/2 the optimal η0 is stable across width; under SP
(one global LR, §3 "Not on the scale") it drifts. SP's output update grows like n at fixed η0
(C9, NTC broken), so its stable and optimal η0 shrink like 1/n: a drift of −1 in log2 η0 per
doubling of width for SGD (Yang et al. 2022, arXiv:2203.03466, Fig. 1).

From a transfer sweep (widths × parameterizations × a log2-spaced grid of η0 × seeds, see
`richness.sweep.transfer`), each run gives its final loss: the mean of the losses recorded over
the run's last steps (the store's "loss" and "test_loss" rows), +inf when it diverged. Then, per
(parameterization, width):

  L(x) = mean over seeds of the final loss at x = log2 η0 (+inf if any seed diverged there),
  x* = the vertex of the parabola through (x, log L(x)) at the grid argmin and its two
       neighbours; the argmin itself when a neighbour diverged; the grid edge, flagged
       `at_edge`, when the argmin is the smallest or largest grid point.

and per parameterization the drift is the least-squares slope of x* against log2(width): log2
units of η0 per doubling of width, fitted on the widest ⌈k/2⌉ + 1 of k widths (all when k ≤ 3;
`richness.analysis.agreement.asymptotic_widths`, the claims' rule), with the all-width fit and
the local drifts between consecutive widths beside it. Intervals are a cluster bootstrap over
seeds (the seeds are the independent replicates; one resample draws seed ids with replacement
for every width and grid point at once, and recomputes every x* and the drift), with the
small-sample expanded percentile levels of `richness.analysis._stats`.

Verdict per parameterization, with tolerance τ (log2 units per doubling), the drift judged
against 0 by `richness.analysis.agreement.agreement`: "stays" when it agrees (the drift and its
whole interval within ±τ), "drifts" when it disagrees (the whole interval beyond ±τ),
otherwise "inconclusive" (no interval, or one that straddles ±τ); also "inconclusive" when the
optimum of a fitted width sits at the grid's edge (the grid does not bracket it).
Expected: "stays" at r = 1/2 (μP, any gauge), "drifts" for SP; the sweep passes when every
parameterization with an expectation meets it on the training loss.

Example:
  >>> import numpy as np
  >>> x = np.arange(-4.0, 4.5, 0.5)
  >>> float(optimal_log2_lr(x, np.exp((x - 1.2) ** 2))[0].round(6))
  1.2
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any, Literal

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from richness.analysis._frames import run_table
from richness.analysis._stats import tail
from richness.analysis.agreement import agreement, asymptotic_widths
from richness.analysis.plots import _new_figure, _save, _slug

__all__ = [
    "QUANTITIES",
    "drift_slope",
    "final_losses",
    "optimal_log2_lr",
    "plot_transfer",
    "transfer_summary",
    "write_transfer",
]

QUANTITIES = ("loss", "test_loss")  # the verdict is on "loss", the final training loss
Verdict = Literal["stays", "drifts", "inconclusive"]


def final_losses(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Returns one row per run: its parameterization, width, seed, log2 η0 and final losses.

    A run's final loss is the mean of its stored values of the quantity (a transfer sweep
    records only its last steps); a diverged run's is +inf, a failed run is left out.

    Args:
      runs: the store's runs frame (run_id, status, config JSON and flattened fields).
      metrics: the store's metrics frame with the "loss" and "test_loss" rows.

    Returns:
      Columns label (preset name, or "r=… gauge"), r (NaN for SP), preset, width (int), seed,
      log2_lr (log2 of the config's train.lr), loss, test_loss (NaN when the data has no test
      split).

    Raises:
      ValueError: a run config without train.lr.
    """
    table = run_table(runs)
    table = table[table["status"].isin(["done", "diverged"])].copy()
    configs = dict(zip(runs["run_id"], runs["config"], strict=True))
    lrs = []
    for run_id in table["run_id"]:
        lr = json.loads(configs[run_id]).get("train", {}).get("lr")
        if not isinstance(lr, int | float) or not lr > 0:
            raise ValueError(f"run {run_id}: config train.lr={lr!r} must be a positive number")
        lrs.append(math.log2(lr))
    table["log2_lr"] = np.round(lrs, 9)
    table["label"] = [
        label if preset is not None else f"{label} {gauge}".strip()
        for label, preset, gauge in zip(
            table["label"], table["preset"], table["gauge"], strict=True
        )
    ]
    wanted = metrics[metrics["quantity"].isin(QUANTITIES)]
    means = wanted.groupby(["run_id", "quantity"])["value"].mean().unstack("quantity")
    means = means.reindex(columns=list(QUANTITIES))
    table = table.join(means, on="run_id")
    diverged = table["status"] == "diverged"
    table.loc[diverged, list(QUANTITIES)] = math.inf
    table["width"] = table["width"].astype(int)
    columns = ["label", "r", "preset", "width", "seed", "log2_lr", *QUANTITIES]
    return table[columns].reset_index(drop=True)


def optimal_log2_lr(log2_lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (x*, at_edge): the optimal log2 η0 of each loss curve and whether it is censored.

    Args:
      log2_lrs: (G,) the grid x, strictly increasing (any spacing).
      losses: (..., G) loss curves on that grid; +inf for a diverged point, NaN where nothing
        was measured (treated as diverged: the point cannot be a minimum).

    Returns:
      x* (...) — the vertex of the parabola through (x, log L) at the argmin i and its
      neighbours i ± 1 when both are finite, else x_i; NaN where every point diverged —
      and at_edge (...) bool, true when i is the first or last grid point (x* = that point).

    Raises:
      ValueError: a grid that is not strictly increasing or shapes that do not match.
    """
    x = np.asarray(log2_lrs, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1 or len(x) < 3 or np.any(np.diff(x) <= 0):
        raise ValueError(f"log2_lrs must be ≥ 3 strictly increasing values, got {x.tolist()}")
    if y.shape[-1] != len(x):
        raise ValueError(
            f"losses' last dim must match the grid:\n  losses.shape: {y.shape}\n"
            f"  len(log2_lrs): {len(x)}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        logy = np.where(np.isfinite(y) & (y > 0), np.log(np.where(y > 0, y, 1.0)), np.inf)
    dead = np.all(np.isinf(logy), axis=-1)
    i = np.argmin(logy, axis=-1)
    inner = np.clip(i, 1, len(x) - 2)
    y0, y1, y2 = (np.take_along_axis(logy, (inner + k)[..., None], -1)[..., 0] for k in (-1, 0, 1))
    x0, x1, x2 = x[inner - 1], x[inner], x[inner + 1]
    # vertex of the parabola through three points (x0, y0), (x1, y1), (x2, y2), y1 the minimum
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
        den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
        vertex = x1 - 0.5 * num / den
    at_edge = (i == 0) | (i == len(x) - 1)
    fit = ~at_edge & np.isfinite(y0) & np.isfinite(y2) & (den != 0)
    best = np.where(fit, vertex, x[i])
    return np.where(dead, np.nan, best), at_edge & ~dead


def drift_slope(log2_widths: np.ndarray, optima: np.ndarray) -> np.ndarray:
    """Returns the least-squares slope of optima (..., W) on log2 widths (W,); NaN-aware."""
    w = np.asarray(log2_widths, dtype=np.float64)
    o = np.asarray(optima, dtype=np.float64)
    ok = np.isfinite(o)
    n = ok.sum(-1)
    xs = np.where(ok, w, 0.0)
    ys = np.where(ok, o, 0.0)
    mx = xs.sum(-1) / np.maximum(n, 1)
    my = ys.sum(-1) / np.maximum(n, 1)
    sxy = (np.where(ok, (w - mx[..., None]) * (o - my[..., None]), 0.0)).sum(-1)
    sxx = (np.where(ok, (w - mx[..., None]) ** 2, 0.0)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 2) & (sxx > 0), sxy / sxx, np.nan)


def _curves(group: pd.DataFrame, quantity: str, grid: np.ndarray) -> tuple[np.ndarray, list]:
    """(W, S, G) final losses of one parameterization (NaN where a run is missing), seed ids."""
    widths = sorted(group["width"].unique())
    seeds = sorted(group["seed"].unique(), key=str)
    cube = np.full((len(widths), len(seeds), len(grid)), np.nan)
    wi = np.searchsorted(widths, group["width"].to_numpy())
    si = np.array([seeds.index(s) for s in group["seed"]])
    gi = np.searchsorted(grid, group["log2_lr"].to_numpy())
    cube[wi, si, gi] = group[quantity].to_numpy(dtype=np.float64)
    return cube, seeds


def _seed_mean(cube: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, W, G) means over seeds drawn `counts` (B, S) times; +inf where a drawn seed diverged.

    A missing run (NaN) is left out of its point's mean; a point with no run is NaN.
    """
    present = np.isfinite(cube) | np.isinf(cube)
    finite = np.where(np.isfinite(cube), cube, 0.0)
    total = np.einsum("bs,wsg->bwg", counts, finite)
    n = np.einsum("bs,wsg->bwg", counts, present.astype(np.float64))
    blown = np.einsum("bs,wsg->bwg", counts, np.isinf(cube).astype(np.float64)) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
    return np.where(blown, np.inf, np.where(n > 0, mean, np.nan))


_TRANSFER: dict[str, Verdict] = {
    "agrees": "stays",
    "disagrees": "drifts",
    "undetermined": "inconclusive",
}


def _verdict(drift: float, low: float, high: float, tolerance: float, edge: bool) -> Verdict:
    if edge:
        return "inconclusive"
    return _TRANSFER[agreement(drift, low, high, 0.0, tolerance)]


def _expected(r: float, preset: str | None) -> Verdict | None:
    if r == 0.5:
        return "stays"
    if preset == "sp":
        return "drifts"
    return None


def transfer_summary(
    losses: pd.DataFrame,
    *,
    tolerance: float = 0.25,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Returns the optima per (parameterization, width), the drifts and the verdicts (JSON-able).

    Args:
      losses: the output of `final_losses`.
      tolerance: τ, the largest |drift| (log2 η0 per doubling of width) that counts as "stays".
      n_boot: bootstrap resamples of the seeds (0: no intervals).
      ci: confidence level of the intervals, in (0, 1).
      seed: seed of the bootstrap's draws.

    Returns:
      {"grid": [x...], "tolerance", "ci", "n_boot", "optima": [{label, quantity, width,
      log2_lr, ci_low, ci_high, grid_argmin, at_edge, min_loss, n_seeds}], "drifts": [{label,
      quantity, drift, ci_low, ci_high, fit_widths (the widths of that fit), drift_all,
      ci_low_all, ci_high_all (the fit on every width), widths, optima (x* by width), local
      (the drift between consecutive widths), edge_widths, expected, verdict, meets}], "verdict":
      "pass" | "fail" | "no expectation"} — "meets" is None without an expectation; the
      overall verdict uses the "loss" rows.

    Raises:
      ValueError: a bad tolerance, n_boot or ci, or fewer than two widths or three grid points.
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance={tolerance!r} must be > 0 (log2 η0 per doubling of width)")
    if not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot={n_boot!r} must be an integer ≥ 0 (0 skips the intervals)")
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie in (0, 1), e.g. 0.95")
    grid = np.sort(losses["log2_lr"].unique())
    optima_rows: list[dict[str, Any]] = []
    drift_rows: list[dict[str, Any]] = []
    for label, group in losses.groupby("label", sort=True):
        first = group.iloc[0]
        widths = sorted(int(w) for w in group["width"].unique())
        if len(widths) < 2:
            raise ValueError(f"parameterization {label!r} has runs at {widths}: need ≥ 2 widths")
        expected = _expected(float(first["r"]), first["preset"])
        for quantity in QUANTITIES:
            if group[quantity].isna().all():
                continue
            cube, seeds = _curves(group, quantity, grid)
            n_seeds = len(seeds)
            point = _seed_mean(cube, np.ones((1, n_seeds)))[0]  # (W, G)
            best, edge = optimal_log2_lr(grid, point)
            fit = np.isin(widths, asymptotic_widths(widths))  # (W,) the widths the drift uses
            log2_widths = np.log2(widths)
            drift = float(drift_slope(log2_widths[fit], best[fit]))
            drift_all = float(drift_slope(log2_widths, best))
            rng = np.random.default_rng([seed, zlib.crc32(f"{label}|{quantity}".encode())])
            low_q = tail(ci, n_seeds, "expanded")
            if n_boot > 0 and n_seeds >= 2:
                counts = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)
                boot, _ = optimal_log2_lr(grid, _seed_mean(cube, counts.astype(np.float64)))
                bounds = np.nanquantile(boot, [low_q, 1 - low_q], axis=0)  # (2, W)
                slopes = drift_slope(log2_widths[fit], boot[:, fit])
                d_low, d_high = (float(v) for v in np.nanquantile(slopes, [low_q, 1 - low_q]))
                slopes = drift_slope(log2_widths, boot)
                a_low, a_high = (float(v) for v in np.nanquantile(slopes, [low_q, 1 - low_q]))
            else:
                bounds = np.full((2, len(widths)), np.nan)
                d_low = d_high = a_low = a_high = math.nan
            for k, width in enumerate(widths):
                row = point[k]
                finite = np.isfinite(row)
                optima_rows.append(
                    {
                        "label": label,
                        "quantity": quantity,
                        "width": width,
                        "log2_lr": _num(best[k]),
                        "ci_low": _num(bounds[0, k]),
                        "ci_high": _num(bounds[1, k]),
                        "grid_argmin": _num(grid[np.argmin(np.where(finite, row, np.inf))])
                        if finite.any()
                        else None,
                        "at_edge": bool(edge[k]),
                        "min_loss": _num(row[finite].min()) if finite.any() else None,
                        "n_seeds": n_seeds,
                    }
                )
            verdict = _verdict(drift, d_low, d_high, tolerance, bool(edge[fit].any()))
            drift_rows.append(
                {
                    "label": label,
                    "quantity": quantity,
                    "drift": _num(drift),
                    "ci_low": _num(d_low),
                    "ci_high": _num(d_high),
                    "fit_widths": [w for w, f in zip(widths, fit, strict=True) if f],
                    "drift_all": _num(drift_all),
                    "ci_low_all": _num(a_low),
                    "ci_high_all": _num(a_high),
                    "widths": widths,
                    "optima": [_num(v) for v in best],
                    "local": [_num(v) for v in np.diff(best) / np.diff(np.log2(widths))],
                    "edge_widths": [w for w, e in zip(widths, edge, strict=True) if e],
                    "expected": expected,
                    "verdict": verdict,
                    "meets": None if expected is None else verdict == expected,
                }
            )
    judged = [d["meets"] for d in drift_rows if d["quantity"] == "loss" and d["meets"] is not None]
    overall = "no expectation" if not judged else ("pass" if all(judged) else "fail")
    return {
        "grid": [float(x) for x in grid],
        "tolerance": tolerance,
        "ci": ci,
        "n_boot": n_boot,
        "optima": optima_rows,
        "drifts": drift_rows,
        "verdict": overall,
    }


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def plot_transfer(
    losses: pd.DataFrame, summary: dict[str, Any], out_path: str | Path, *, title: str = ""
) -> Path:
    """Draws final loss against log2 η0, one curve per width, one column per parameterization.

    Rows: training loss (top) and test loss (bottom, when measured). Each curve is the seed
    mean; diverged grid points are left out of the curve and marked × on the panel's top edge;
    the optimum x* is a star on the curve's minimum level with its bootstrap interval as a bar.
    The column title gives the drift of x* (log2 η0 per doubling of width) and the verdict.

    Returns:
      out_path (PNG).
    """
    labels = sorted(losses["label"].unique())
    rows = [q for q in QUANTITIES if not losses[q].isna().all()]
    widths = sorted(int(w) for w in losses["width"].unique())
    norm = LogNorm(vmin=min(widths), vmax=max(max(widths), min(widths) * 2))
    cmap = mpl.colormaps["viridis"]
    fig = _new_figure(4.2 * len(labels) + 1.0, 3.2 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), len(labels), squeeze=False)
    optima = {(o["label"], o["quantity"], o["width"]): o for o in summary["optima"]}
    drifts = {(d["label"], d["quantity"]): d for d in summary["drifts"]}
    for col, label in enumerate(labels):
        group = losses[losses["label"] == label]
        for row, quantity in enumerate(rows):
            ax = axes[row, col]
            curves = group.groupby(["width", "log2_lr"])[quantity].mean().unstack("log2_lr")
            finite_all = curves.to_numpy()[np.isfinite(curves.to_numpy())]
            top = float(np.max(finite_all)) if finite_all.size else 1.0
            for width, curve in curves.iterrows():
                color = cmap(norm(width))
                ok = np.isfinite(curve.to_numpy())
                ax.plot(curve.index[ok], curve.to_numpy()[ok], "o-", ms=2.5, lw=1.2, color=color)
                blown = curve.index[~ok & ~curve.isna().to_numpy()]
                ax.plot(blown, np.full(len(blown), top), "x", ms=4, color=color, alpha=0.8)
                o = optima.get((label, quantity, int(width)))
                if o and o["log2_lr"] is not None and o["min_loss"] is not None:
                    lo = o["ci_low"] if o["ci_low"] is not None else o["log2_lr"]
                    hi = o["ci_high"] if o["ci_high"] is not None else o["log2_lr"]
                    ax.errorbar(
                        o["log2_lr"],
                        o["min_loss"],
                        xerr=[[o["log2_lr"] - lo], [hi - o["log2_lr"]]],
                        fmt="*",
                        ms=11,
                        color=color,
                        mec="black",
                        mew=0.6,
                        capsize=2,
                        zorder=5,
                    )
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("log2 η0 (base learning rate)", fontsize=8)
            ax.set_ylabel(
                "final training loss" if quantity == "loss" else "final test loss", fontsize=8
            )
            d = drifts.get((label, quantity))
            note = ""
            if d and d["drift"] is not None:
                ci_text = (
                    f" [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
                    if d["ci_low"] is not None and d["ci_high"] is not None
                    else ""
                )
                fitted = f"n ≥ {d['fit_widths'][0]}"
                note = (
                    f"\ndrift {d['drift']:+.2f}{ci_text} per doubling ({fitted}) · {d['verdict']}"
                    f"\nall widths {d['drift_all']:+.2f}"
                )
            ax.set_title(f"{label}{note}", fontsize=8)
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(sm, ax=axes, shrink=0.8)
    bar.set_ticks(widths)
    bar.set_ticklabels([str(w) for w in widths])
    bar.minorticks_off()
    bar.set_label("width n")
    fig.suptitle(
        title or "μTransfer: final loss against the base learning rate, per width", fontsize=10
    )
    return _save(fig, Path(out_path))


def write_transfer(
    losses: pd.DataFrame,
    out_dir: str | Path,
    name: str,
    *,
    tolerance: float = 0.25,
    n_boot: int = 1000,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path, dict[str, Any]]:
    """Writes out_dir/transfer.json and out_dir/transfer_<name>.png; returns both and the summary.

    `extra` (the spec, the command) is stored in the JSON under "spec".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = transfer_summary(losses, tolerance=tolerance, n_boot=n_boot, seed=seed)
    summary = {"name": name, **summary, **({"spec": extra} if extra else {})}
    json_path = out_dir / "transfer.json"
    json_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    png = plot_transfer(losses, summary, out_dir / f"transfer_{_slug(name)}.png", title=name)
    return json_path, png, summary
