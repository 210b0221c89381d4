"""The richness meter: the effective richness r of a training run, with an interval and a verdict.

Estimates where a run sits on the richness scale ‖Δh‖ ~ γ·n^r (THEORY.md §3), 0 = lazy (NTP,
kernel regime) to 1/2 = rich (μP, feature learning), from the Meter's measurements
(`richness.measure.meter`), in one of two ways:

- **multi-width** (`estimate_multiwidth`, `estimate_store`): the same recipe measured at two or
  more widths, r̂ = the fitted exponent of ‖Δh_ℓ‖ against width (C2), per hidden layer and
  pooled. This is the estimator: it reads r directly, whatever γ is, and it can tell whether the
  run is well scaled at all (‖Δf‖ ~ n^0, C4/NTC; h_rms ~ n^0, C1).
- **one-width** (`laziness_index`): a single width n, placed between two reference runs of the
  same model, data, learning rate and step at that width, one lazy (NTP, r = 0) and one rich
  (μP, r = 1/2). It measures the activity α = γ·n^r, not r: see its docstring for what that
  means and when it equals r.

Verdicts, from the interval [ci_low, ci_high] of r̂ (thresholds are arguments):
  "ill-scaled"   (multi-width only) ‖Δf‖ or a hidden h_rms has a width exponent beyond
                 ``scale_tolerance`` (its interval excludes 0), or r̂'s interval lies off [0, 1/2]
                 by more than ``scale_tolerance``: the run is not on the scale (e.g. SP, C9);
  "undetermined" no interval, an interval wider than ``max_ci_width``, or one that straddles a
                 threshold;
  "lazy"         ci_high ≤ ``lazy_below`` (0.1);
  "rich"         ci_low ≥ ``rich_above`` (0.4);
  "intermediate" ``lazy_below`` < ci_low and ci_high < ``rich_above``.
r̂ is reported raw; `RichnessEstimate.r` clips it to [0, 1/2] for reading off the scale.

Floor 3: numpy and pandas only, no torch. `richness.estimate.estimate_richness` runs a user's
factory at several widths and calls `estimate_multiwidth`.

Example:
  >>> import richness.analysis.richness_meter as rm
  >>> records = [{"width": n, "seed": s, "dh/l0": 0.1 * n**0.5 * (1 + 0.01 * s),
  ...             "dh/out": 1.0, "df": 1.0, "h_rms/l0": 1.0} for n in (128, 256, 512)
  ...            for s in range(3)]
  >>> est = rm.estimate_multiwidth(rm.measurements_frame(records))
  >>> round(est.r_hat, 3), est.verdict
  (0.5, 'rich')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from richness.analysis._frames import load_frames, tidy
from richness.analysis.fits import _matrix, _slope_ci, _t_quantile, _tail

__all__ = [
    "RichnessEstimate",
    "estimate_multiwidth",
    "estimate_store",
    "laziness_index",
    "measurements_frame",
]

Verdict = Literal["lazy", "intermediate", "rich", "ill-scaled", "undetermined"]
R_MAX = 0.5  # μP: the rich end of the scale (THEORY.md §3)


@dataclass(frozen=True)
class RichnessEstimate:
    """The effective richness of one run (or one family of runs across width).

    Attributes:
      r_hat: the raw estimate of r (may fall outside [0, 1/2]).
      ci_low, ci_high: its interval (NaN when none can be given honestly); `interval` says
        what kind.
      verdict: "lazy", "intermediate", "rich", "ill-scaled" or "undetermined" (module docstring).
      method: "multi-width" or "one-width".
      layers: per hidden layer: layer, ell, r_hat, ci_low, ci_high, and for multi-width
        n_widths, n_seeds, local_slopes (slopes between consecutive widths).
      checks: the other signals: for multi-width the width exponents of ‖Δf‖ (C4), h_rms (C1)
        and ‖f0‖ (C3) with the expected value and whether it holds; for one-width the r each
        signal (relative feature movement per layer, linearization gap, NTK movement) implies.
      interval: how [ci_low, ci_high] was obtained ("seed bootstrap", "width residuals",
        "signal spread" or "none").
      label: what was measured (e.g. "r=0.25 · stp").
      context: the run family's fields when known (r, preset, gauge, widths, seeds, step...).
      notes: caveats that apply to this estimate.
    """

    r_hat: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    method: Literal["multi-width", "one-width"]
    layers: pd.DataFrame
    checks: pd.DataFrame
    interval: str = "none"
    label: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def r(self) -> float:
        """r̂ clipped to the scale [0, 1/2] (NaN stays NaN)."""
        return self.r_hat if math.isnan(self.r_hat) else min(max(self.r_hat, 0.0), R_MAX)

    @property
    def position(self) -> float:
        """Where the run sits between lazy (0) and rich (1): the clipped r̂ over 1/2."""
        return self.r / R_MAX

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (frames as lists of records)."""
        return {
            "label": self.label,
            "method": self.method,
            "r_hat": self.r_hat,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "r": self.r,
            "position": self.position,
            "verdict": self.verdict,
            "interval": self.interval,
            "context": self.context,
            "layers": self.layers.to_dict("records"),
            "checks": self.checks.to_dict("records"),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        head = f"effective richness ({self.method}{', ' + self.label if self.label else ''})"
        lines = [
            head,
            f"  r̂ = {_fmt(self.r_hat)} {_interval_text(self.ci_low, self.ci_high)} "
            f"({self.interval}) → {self.verdict}; on the scale r = {_fmt(self.r)}, "
            f"{100 * self.position:.0f}% of the way from lazy (NTP) to rich (μP)"
            if not math.isnan(self.r_hat)
            else f"  r̂ = nan → {self.verdict}",
        ]
        for row in self.layers.to_dict("records"):
            lines.append(
                f"  {row['layer']:<14} r̂ {_fmt(row['r_hat'])} "
                f"{_interval_text(row['ci_low'], row['ci_high'])}"
            )
        for row in self.checks.to_dict("records"):
            expected = row.get("expected")
            tail = "" if _nan(expected) else f" (expected {_fmt(expected)})"
            status = {True: " ok", False: " OFF"}.get(row.get("ok"), "")
            lines.append(
                f"  check {row['signal']:<16} {_fmt(row['value'])} "
                f"{_interval_text(row['ci_low'], row['ci_high'])}{tail}{status}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: float) -> str:
    return "nan" if _nan(value) else f"{value:+.3f}"


def _interval_text(low: float, high: float) -> str:
    return "[no interval]" if _nan(low) else f"[{low:+.3f}, {high:+.3f}]"


# ----------------------------------------------------------------------------- inputs


def measurements_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Returns the long frame the estimators read, from Meter dicts labelled by width and seed.

    Args:
      records: one mapping per measurement: ``"width"`` (int, required), ``"seed"`` (default 0),
        ``"step"`` (default 0: the step the measurement was taken after; keep it the same
        across widths) and the `Meter.measure()` keys (``"dh/layers.1"``, ``"df"``, ...).

    Returns:
      Columns width, seed, step, layer ("" at model level), quantity, value, ell (ℓ: position
      of the layer among the measured layers in the order of the first record, 1-based; -1 at
      model level). The last layer is taken as the readout (its ‖Δh‖ is ‖Δf‖).

    Raises:
      ValueError: a record without a positive ``"width"``.
    """
    rows: list[tuple[int, Any, int, str, str, float]] = []
    order: list[str] = []
    for i, record in enumerate(records):
        width = record.get("width")
        if not isinstance(width, int | np.integer) or width < 1:
            raise ValueError(f"record {i} has width={width!r}; every record needs an int ≥ 1")
        seed, step = record.get("seed", 0), int(record.get("step", 0))
        for key, value in record.items():
            if key in ("width", "seed", "step"):
                continue
            quantity, _, layer = key.partition("/")
            if layer and layer not in order:
                order.append(layer)
            rows.append((int(width), seed, step, layer, quantity, float(value)))
    frame = pd.DataFrame(rows, columns=["width", "seed", "step", "layer", "quantity", "value"])
    index = {name: i + 1 for i, name in enumerate(order)}
    frame["ell"] = [index.get(layer, -1) for layer in frame["layer"]]
    return frame


# -------------------------------------------------------------------------- multi-width


def estimate_multiwidth(
    data: pd.DataFrame,
    *,
    step: int | None = None,
    layers: Sequence[str] | None = None,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    lazy_below: float = 0.1,
    rich_above: float = 0.4,
    scale_tolerance: float = 0.15,
    max_ci_width: float = 0.3,
    label: str = "",
    context: Mapping[str, Any] | None = None,
) -> RichnessEstimate:
    """Returns r̂, the width exponent of ‖Δh_ℓ‖ of one recipe measured at several widths.

    Implements: THEORY.md §3 (‖Δh‖ ~ γ·n^r, 0 ≤ r ≤ 1/2) and §4 claim C2, with C4 (‖Δf‖ ~ n^0,
    NTC), C1 (h_rms ~ n^0) and C3 (‖f0‖ ~ n^−r) as cross-checks.

    Per hidden layer ℓ (every measured layer but the last, the readout), r̂_ℓ is the
    least-squares slope of log ‖Δh_ℓ‖ on log n over every (width, seed) point (values of one
    cell averaged in log space). The pooled r̂ is the slope of the layers' mean log ‖Δh_ℓ‖
    (the geometric mean over layers), which the verdict uses. Because γ is the same at every
    width of one recipe, it cancels: r̂ needs no reference run.

    Interval (what is honest with what was measured):
      - two or more seeds: cluster bootstrap over seeds (seeds are the independent replicates;
        layers and probe inputs of one run are not), expanded-percentile as in `fit_exponents`;
      - one seed, three or more widths: the t-interval of the slope from the residuals about
        the log-log line (W − 2 degrees of freedom). It covers width-to-width scatter and
        curvature (finite-width terms), not the seed-to-seed spread, so it is optimistic when
        the widths are few;
      - one seed, two widths: none (NaN) and the verdict is "undetermined".

    Finite widths bias r̂ (THEORY.md note under §4; research/notes.md): centered training
    and widths of 128 and more give r̂ within about ±0.05 of r after a few steps; the random
    initial output of an uncentered run drags r̂ low at small widths (−0.05 / +0.07 / +0.31
    measured for r = 0 / 0.25 / 0.5 in research/notes.md). `layers` lists local slopes: flat
    ones mean the exponent has converged.

    Args:
      data: a long frame with columns width, seed, layer, quantity, value and optionally step
        and ell (`measurements_frame`, or one family of a store's `tidy` frame). Needs "dh"
        rows of at least one hidden layer at two or more widths.
      step: the step to estimate at (None: the largest step present).
      layers: hidden layers to use (None: every measured layer but the last).
      ci: interval level in (0, 1).
      n_boot: bootstrap resamples (≥ 1).
      seed: seed of the bootstrap draws.
      lazy_below, rich_above: verdict thresholds on r, 0 ≤ lazy_below < rich_above ≤ 1/2.
      scale_tolerance: largest |exponent| of ‖Δf‖ and h_rms (and distance of r̂ from [0, 1/2])
        still counted as well scaled.
      max_ci_width: an interval wider than this gives "undetermined".
      label, context: carried into the result.

    Returns:
      A `RichnessEstimate` with method "multi-width".

    Raises:
      ValueError: a bad threshold, ``ci`` or ``n_boot``, missing columns, or fewer than two
        widths with ‖Δh‖ of a hidden layer.
    """
    _check_thresholds(lazy_below, rich_above, ci, n_boot, max_ci_width, scale_tolerance)
    missing = {"width", "seed", "layer", "quantity", "value"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; build it with measurements_frame")
    frame = data[np.isfinite(data["value"]) & (data["value"] > 0)]
    if "step" in frame.columns and len(frame):
        chosen = int(frame["step"].max()) if step is None else int(step)
        frame = frame[frame["step"] == chosen]
    else:
        chosen = step
    dh = frame[frame["quantity"] == "dh"]
    hidden = _hidden_layers(dh, layers)
    if not hidden:
        raise ValueError(
            "no hidden layer with 'dh' measurements at this step; the Meter's default "
            "metrics give dh/<layer> (the last layer is the readout and is not counted)"
        )
    dh = dh[dh["layer"].isin(hidden)]
    widths = np.sort(dh["width"].unique())
    if len(widths) < 2:
        raise ValueError(
            f"widths={[int(w) for w in widths]}: the multi-width estimate needs ≥ 2 widths; "
            "use laziness_index for one width"
        )
    rng = np.random.default_rng(seed)
    rows = []
    for name in hidden:
        fit = _fit(dh[dh["layer"] == name], ci, n_boot, rng)
        rows.append({"layer": name, "ell": _ell(dh, name), **fit})
    layer_table = pd.DataFrame(
        rows,
        columns=[
            "layer",
            "ell",
            "r_hat",
            "ci_low",
            "ci_high",
            "n_widths",
            "n_seeds",
            "interval",
            "local_slopes",
        ],
    )
    pooled_series = (
        dh.assign(value=np.log(dh["value"]))
        .groupby(["width", "seed"], as_index=False)["value"]
        .mean()
        .assign(value=lambda t: np.exp(t["value"]))
    )
    pooled = _fit(pooled_series, ci, n_boot, rng)
    checks = _scale_checks(frame, hidden, ci, n_boot, rng, pooled["r_hat"], scale_tolerance)
    notes = []
    if pooled["interval"] == "width residuals":
        notes.append(
            "one seed: the interval is the scatter about the log-log line, not seed variation; "
            "run ≥ 2 seeds for a seed bootstrap"
        )
    if pooled["interval"] == "none":
        notes.append("one seed at two widths: no interval; add a seed or a width")
    local = pooled["local_slopes"]
    if len(local) >= 2 and abs(local[-1] - local[0]) > 0.1:
        notes.append(
            f"local slopes drift from {local[0]:+.2f} to {local[-1]:+.2f}: not converged in "
            "width; trust the largest widths"
        )
    verdict, why = _verdict(
        pooled["r_hat"],
        pooled["ci_low"],
        pooled["ci_high"],
        lazy_below,
        rich_above,
        max_ci_width,
        checks,
        scale_tolerance,
    )
    if why:
        notes.append(why)
    ctx = {
        **(dict(context) if context else {}),
        "widths": [int(w) for w in widths],
        "n_seeds": pooled["n_seeds"],
        "step": chosen,
    }
    return RichnessEstimate(
        r_hat=pooled["r_hat"],
        ci_low=pooled["ci_low"],
        ci_high=pooled["ci_high"],
        verdict=verdict,
        method="multi-width",
        layers=layer_table,
        checks=checks,
        interval=pooled["interval"],
        label=label,
        context=ctx,
        notes=tuple(notes),
    )


def estimate_store(
    source: Any,
    *,
    step: int | None = None,
    **kwargs: Any,
) -> list[RichnessEstimate]:
    """Returns one multi-width estimate per parameterization family of a sweep store.

    Runs are grouped as `fit_exponents` groups them (preset or r, gauge, γ, optimizer, base
    width, depth); families measured at fewer than two widths are skipped.

    Args:
      source: a store path, a `Store`, or a ``(runs, metrics)`` pair of DataFrames.
      step: the step to estimate at (None: each family's last measured step).
      **kwargs: passed to `estimate_multiwidth` (thresholds, ci, n_boot, seed).

    Returns:
      Estimates in the order of the families' labels; each ``context`` has r, preset, gauge.
    """
    runs, metrics = load_frames(source)
    data = tidy(runs, metrics)
    out = []
    for _, family in data.groupby("group", sort=False):
        first = family.iloc[0]
        if family[family["quantity"] == "dh"]["width"].nunique() < 2:
            continue
        gauge = first["gauge"] or ""
        label = str(first["label"]) + (f" · {gauge}" if gauge else "")
        context = {
            "r": None if _nan(first["r"]) else float(first["r"]),
            "preset": first["preset"],
            "gauge": gauge,
            "gamma": float(first["gamma"]),
            "optimizer": first["optimizer"],
        }
        out.append(estimate_multiwidth(family, step=step, label=label, context=context, **kwargs))
    return sorted(out, key=lambda e: (e.context.get("r") is None, e.context.get("r") or 0, e.label))


def _hidden_layers(dh: pd.DataFrame, layers: Sequence[str] | None) -> list[str]:
    if layers is not None:
        absent = [name for name in layers if name not in set(dh["layer"])]
        if absent:
            raise ValueError(f"layers {absent} have no 'dh' measurements; found {_order(dh)}")
        return list(layers)
    order = _order(dh)
    return order[:-1]


def _order(dh: pd.DataFrame) -> list[str]:
    """Layers with dh rows, ordered by ℓ when known, else by first appearance."""
    named = dh[dh["layer"] != ""]
    if "ell" in named.columns and (named["ell"] >= 1).all():
        return list(named.sort_values("ell", kind="stable")["layer"].drop_duplicates())
    return list(named["layer"].drop_duplicates())


def _ell(dh: pd.DataFrame, name: str) -> int:
    if "ell" not in dh.columns:
        return -1
    return int(dh.loc[dh["layer"] == name, "ell"].iloc[0])


def _fit(series: pd.DataFrame, ci: float, n_boot: int, rng: np.random.Generator) -> dict:
    """Slope of log value on log width, its interval (module docstring) and local slopes."""
    widths = np.sort(series["width"].unique()).astype(np.float64)
    if len(widths) < 2:
        return {
            "r_hat": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "n_widths": len(widths),
            "n_seeds": int(series["seed"].nunique()),
            "interval": "none",
            "local_slopes": [],
        }
    x, y, mask, n_seeds = _matrix(series, widths)
    counts = None
    if n_seeds >= 2:
        counts = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot).astype(
            np.float64
        )
    lo_q = _tail(ci, n_seeds, "expanded")
    slope, low, high = _slope_ci(x, y, mask, counts, lo_q, 1 - lo_q)
    interval = "seed bootstrap" if counts is not None else "none"
    if counts is None and len(widths) >= 3:
        low, high = _residual_interval(x, y[:, 0], slope, ci)
        interval = "width residuals"
    local = [
        _slope_ci(x[i : i + 2], y[i : i + 2], mask[i : i + 2], None, 0.0, 1.0)[0]
        for i in range(len(widths) - 1)
    ]
    return {
        "r_hat": slope,
        "ci_low": low,
        "ci_high": high,
        "n_widths": len(widths),
        "n_seeds": n_seeds,
        "interval": interval,
        "local_slopes": local,
    }


def _residual_interval(x: np.ndarray, y: np.ndarray, slope: float, ci: float) -> tuple:
    """The t-interval of a least-squares slope from its residuals (len(x) − 2 dof)."""
    xc = x - x.mean()
    resid = y - y.mean() - slope * xc
    dof = len(x) - 2
    se = math.sqrt(float(resid @ resid) / dof / float(xc @ xc))
    half = _t_quantile(1 - (1 - ci) / 2, dof) * se
    return slope - half, slope + half


def _scale_checks(
    frame: pd.DataFrame,
    hidden: list[str],
    ci: float,
    n_boot: int,
    rng: np.random.Generator,
    r_hat: float,
    tolerance: float,
) -> pd.DataFrame:
    """Width exponents of ‖Δf‖ (C4), hidden h_rms (C1) and ‖f0‖ (C3) with their expectations."""
    rows = []
    specs = [("df", "", 0.0), *[("h_rms", name, 0.0) for name in hidden], ("f0", "", -r_hat)]
    for quantity, layer, expected in specs:
        series = frame[(frame["quantity"] == quantity) & (frame["layer"] == layer)]
        if series["width"].nunique() < 2:
            continue
        fit = _fit(series, ci, n_boot, rng)
        judged = quantity != "f0"  # f0 ~ n^−r holds on the scale only; informational
        ok = None
        if judged:
            ok = abs(fit["r_hat"] - expected) <= tolerance or (
                not _nan(fit["ci_low"]) and fit["ci_low"] <= expected <= fit["ci_high"]
            )
        rows.append(
            {
                "signal": f"{quantity}/{layer}" if layer else quantity,
                "claim": {"df": "C4", "h_rms": "C1", "f0": "C3"}[quantity],
                "value": fit["r_hat"],
                "ci_low": fit["ci_low"],
                "ci_high": fit["ci_high"],
                "expected": expected,
                "ok": ok,
            }
        )
    return pd.DataFrame(
        rows, columns=["signal", "claim", "value", "ci_low", "ci_high", "expected", "ok"]
    )


def _verdict(
    r_hat: float,
    low: float,
    high: float,
    lazy_below: float,
    rich_above: float,
    max_ci_width: float,
    checks: pd.DataFrame | None,
    tolerance: float | None,
) -> tuple[Verdict, str]:
    """The verdict and, when it is not a plain one, why."""
    if checks is not None and len(checks):
        broken = checks[checks["ok"] == False]  # noqa: E712 (None means not judged)
        if len(broken):
            pairs = zip(broken["signal"], broken["value"], strict=True)
            worst = ", ".join(f"{s} n^{v:+.2f}" for s, v in pairs)
            return "ill-scaled", f"not on the richness scale: {worst} (expected n^0, C1/C4)"
    if _nan(low) or _nan(r_hat):
        return "undetermined", "no interval: the verdict needs one"
    if tolerance is not None and (low > R_MAX + tolerance or high < -tolerance):
        return "ill-scaled", f"r̂'s interval lies off the scale [0, {R_MAX}]"
    if high - low > max_ci_width:
        return "undetermined", f"interval wider than {max_ci_width}: more seeds or widths"
    if high <= lazy_below:
        return "lazy", ""
    if low >= rich_above:
        return "rich", ""
    if low > lazy_below and high < rich_above:
        return "intermediate", ""
    edge = lazy_below if low <= lazy_below else rich_above
    return "undetermined", f"the interval straddles the threshold {edge}"


def _check_thresholds(lazy_below, rich_above, ci, n_boot, max_ci_width, scale_tolerance) -> None:
    if not 0 <= lazy_below < rich_above <= R_MAX:
        raise ValueError(
            f"lazy_below={lazy_below}, rich_above={rich_above} must satisfy "
            f"0 ≤ lazy_below < rich_above ≤ {R_MAX}"
        )
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie in (0, 1), e.g. 0.95")
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be an integer ≥ 1")
    if not max_ci_width > 0:
        raise ValueError(f"max_ci_width={max_ci_width!r} must be > 0")
    if not scale_tolerance >= 0:
        raise ValueError(f"scale_tolerance={scale_tolerance!r} must be ≥ 0")


# ---------------------------------------------------------------------------- one width

_SIGNALS = ("rho", "lin_gap", "ntk_dist")


def laziness_index(
    run: Mapping[str, float] | Sequence[Mapping[str, float]],
    lazy: Mapping[str, float] | Sequence[Mapping[str, float]],
    rich: Mapping[str, float] | Sequence[Mapping[str, float]],
    *,
    layers: Sequence[str] | None = None,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    lazy_below: float = 0.1,
    rich_above: float = 0.4,
    max_ci_width: float = 0.3,
    min_separation: float = 0.1,
    label: str = "",
) -> RichnessEstimate:
    """Returns the effective richness of a run at one width, between a lazy and a rich reference.

    Implements: THEORY.md §3 (‖Δh‖ ~ α = γ·n^r; model rescaling emulates any richness, C11)
    and §4 C2, with C8 (linearization gap) and the NTK movement as cross-checks.

    At one width n nothing separates r from the prefactor γ: a signal q whose width law is
    q ~ c·α^k (k known or not) only gives α. So the run is compared with two references of the
    same model, data, learning rate, step and width: lazy (NTP, r = 0) and rich (μP, r = 1/2),
    both base-relative to the same base width n0 (``rn.preset("ntp"|"mup", base_width=n0)``),
    where every r gives the same model at n = n0. Then log q is linear in r with the shared
    intercept, and the laziness index

        I_q = (log q − log q_lazy) / (log q_rich − log q_lazy),   r̂_q = I_q / 2

    is the r of the run's activity: r̂ = log(α/γ_ref)/log(n/n0), the richness a run of the
    reference recipe would need to move its features as much. It equals the run's r when the
    run is that recipe at some r (measured: the index of an r = 1/4 run at n = 512, n0 = 64
    is 0.500 from ‖Δh‖); a different γ, learning rate or data shifts it by
    log(γ/γ_ref)/log(n/n0), which is why two widths (`estimate_multiwidth`) are the estimator
    and this is an index. No k is needed: the references calibrate it. It reads nothing about
    whether the run is well scaled (NTC): an index beyond 1 (richer than μP) is either a larger
    γ or a run off the scale (SP at a fixed LR gives 1.2–4 on digits), and gives "undetermined".

    Signals: ρ_ℓ = dh_rms/ℓ / h_rms/ℓ, the relative feature movement of each hidden layer
    (~ n^{r−1/2}, C2) gives r̂ (mean over layers); "lin_gap" (~ n^{2r−1} to leading order,
    C8) and "ntk_dist" are cross-checks in `checks`, as their finite-width terms (THEORY.md
    note under §4) bias them (measured r̂ 0.243 and 0.226 for an r = 1/4 MLP on digits).

    Interval: with two or more measurements (seeds) in each of run, lazy and rich, a seed
    bootstrap (each set resampled on its own, expanded percentile); otherwise the spread
    [min, max] of r̂ over the signals (every ρ_ℓ, lin_gap, ntk_dist that is present), a
    systematic range and not a confidence interval.

    Args:
      run, lazy, rich: `Meter.measure()` dicts (or sequences of them, one per seed) at the
        same width and step; need dh_rms/ℓ and h_rms/ℓ of hidden layers, lin_gap and ntk_dist
        optionally.
      layers: hidden layers (None: those with dh_rms but the last measured layer, the readout).
      ci, n_boot, seed, lazy_below, rich_above, max_ci_width: as in `estimate_multiwidth`.
      min_separation: smallest |log q_rich − log q_lazy| for a usable signal: the references
        coincide as n → n0, and the index is then noise.
      label: carried into the result.

    Returns:
      A `RichnessEstimate` with method "one-width".

    Raises:
      ValueError: no hidden layer with dh_rms and h_rms in all three, or bad thresholds.
    """
    _check_thresholds(lazy_below, rich_above, ci, n_boot, max_ci_width, 0.0)
    sets = [list(s) if not isinstance(s, Mapping) else [s] for s in (run, lazy, rich)]
    for name, group in zip(("run", "lazy", "rich"), sets, strict=True):
        if not group:
            raise ValueError(f"{name} holds no measurement; pass a Meter.measure() dict")
    hidden = _one_width_layers(sets, layers)
    keys = [f"rho/{name}" for name in hidden]
    keys += [k for k in _SIGNALS[1:] if all(k in m for group in sets for m in group)]
    logs = [np.array([[_signal(m, k) for k in keys] for m in group]) for group in sets]
    means = [g.mean(0) for g in logs]  # (K,) per set
    span = means[2] - means[1]
    usable = np.abs(span) >= min_separation
    r_signal = np.where(usable, (means[0] - means[1]) / np.where(usable, span, 1) / 2, np.nan)
    n_rho = len(hidden)
    notes = []
    if not usable[:n_rho].all():
        notes.append(
            f"references differ by less than {min_separation} in log ρ: the width is too "
            "close to the base width for a one-width index"
        )
    r_hat = float(np.nanmean(r_signal[:n_rho])) if usable[:n_rho].any() else math.nan
    low = high = math.nan
    interval = "none"
    sizes = [len(g) for g in logs]
    rng = np.random.default_rng(seed)
    if min(sizes) >= 2 and not math.isnan(r_hat):
        boots = []
        for g in logs:
            draws = rng.multinomial(len(g), np.full(len(g), 1 / len(g)), size=n_boot)
            boots.append(draws @ g[:, :n_rho] / len(g))  # (B, n_rho)
        run_b, lazy_b, rich_b = boots
        with np.errstate(divide="ignore", invalid="ignore"):
            r_boot = ((run_b - lazy_b) / (rich_b - lazy_b) / 2)[:, usable[:n_rho]].mean(1)
        r_boot = r_boot[np.isfinite(r_boot)]
        lo_q = _tail(ci, min(sizes), "expanded")
        low, high = (float(v) for v in np.quantile(r_boot, [lo_q, 1 - lo_q]))
        interval = "seed bootstrap"
    elif not math.isnan(r_hat) and np.isfinite(r_signal).sum() >= 2:
        low, high = float(np.nanmin(r_signal)), float(np.nanmax(r_signal))
        interval = "signal spread"
        notes.append(
            "one measurement per set: the interval is the spread of the signals, not a "
            "confidence interval; measure ≥ 2 seeds of each"
        )
    if not math.isnan(low) and low > R_MAX + 0.1:
        verdict: Verdict = "undetermined"
        notes.append(
            "richer than the μP reference: a larger γ or a run off the scale (e.g. SP); "
            "one width can't tell which: measure two widths"
        )
    else:
        verdict, why = _verdict(r_hat, low, high, lazy_below, rich_above, max_ci_width, None, None)
        if why:
            notes.append(why)
    notes.append(
        "one width reads the activity γ·n^r, not r: r̂ is the r of the reference recipe "
        "that moves its features as much (THEORY.md §3, C11)"
    )
    layer_table = pd.DataFrame(
        {
            "layer": hidden,
            "ell": list(range(1, n_rho + 1)),
            "r_hat": r_signal[:n_rho],
            "ci_low": math.nan,
            "ci_high": math.nan,
        }
    )
    checks = pd.DataFrame(
        {
            "signal": keys,
            "claim": ["C2"] * n_rho + ["C8" if k == "lin_gap" else "" for k in keys[n_rho:]],
            "value": r_signal,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "expected": math.nan,
            "ok": None,
        }
    )
    return RichnessEstimate(
        r_hat=r_hat,
        ci_low=low,
        ci_high=high,
        verdict=verdict,
        method="one-width",
        layers=layer_table,
        checks=checks,
        interval=interval,
        label=label,
        context={"n_run": sizes[0], "n_lazy": sizes[1], "n_rich": sizes[2]},
        notes=tuple(notes),
    )


def _one_width_layers(sets: list[list[Mapping[str, float]]], layers) -> list[str]:
    first = sets[0][0]
    order = [k.partition("/")[2] for k in first if k.startswith("dh_rms/")]
    hidden = list(layers) if layers is not None else order[:-1]
    complete = [
        name
        for name in hidden
        if all(f"dh_rms/{name}" in m and f"h_rms/{name}" in m for g in sets for m in g)
    ]
    if not complete or (layers is not None and len(complete) < len(hidden)):
        raise ValueError(
            f"hidden layers {hidden} need dh_rms/<layer> and h_rms/<layer> in run, lazy and "
            f"rich (the Meter's default metrics); layers with dh_rms: {order}"
        )
    return complete


def _signal(measurement: Mapping[str, float], key: str) -> float:
    """log of one signal: ρ_ℓ = dh_rms/h_rms, or lin_gap / ntk_dist as measured."""
    if key.startswith("rho/"):
        name = key.partition("/")[2]
        value = measurement[f"dh_rms/{name}"] / measurement[f"h_rms/{name}"]
    else:
        value = measurement[key]
    return math.log(value) if value > 0 else math.nan
