"""The sweep report: one self-contained HTML page, a summary JSON and the PNG figures.

``write_report(store_or_frames, out_dir)`` writes

- ``out_dir/index.html``: opens offline (figures inlined as base64 PNG): how to read it, the
  richness scale table (measured ‖Δh‖ exponent against r, C2), the criteria verdicts (C1, C2,
  C4, C5), the figures, the fit table, a run summary (counts, widths, seeds, whether the output
  was centered) and the diverged or failed runs;
- ``out_dir/summary.json``: ``{"fits": [{"quantity", "layer", "r", "gauge", "slope", "ci_low",
  "ci_high", "predicted", ...}], "criteria": [...], ...}`` (DESIGN.md);
- ``out_dir/*.png``: the same figures as files.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from richness.analysis._frames import (
    last_step_rows,
    load_frames,
    quantity_label,
    run_table,
    varying_config_keys,
)
from richness.analysis.fits import _fit_all, criteria_verdicts
from richness.analysis.plots import (
    _DPI,
    group_title,
    plot_coord_check,
    plot_phase_diagram,
    plot_richness_scale,
)

__all__ = ["write_report"]

_SUMMARY_FIT_KEYS = ("quantity", "layer", "r", "gauge", "slope", "ci_low", "ci_high", "predicted")


def write_report(
    store_or_frames: Any,
    out_dir: str | Path,
    *,
    title: str = "richness sweep report",
    n_boot: int = 1000,
    ci: float = 0.95,
    tolerance: float = 0.1,
    step: int | None = None,
    seed: int = 0,
    coord_quantities: Sequence[str] | None = None,
) -> Path:
    """Writes the HTML report, summary.json and the figures of a sweep; returns index.html.

    Measures: THEORY.md §4 (C1–C8 as fitted exponents against predictions) and §2 (criteria).

    Args:
      store_or_frames: a path to an SQLite store (`richness.sweep.store.Store`), a Store, or
        a ``(runs, metrics)`` pair of DataFrames.
      out_dir: the folder to write (created; existing files of the same names are replaced).
      title: the page title.
      n_boot: bootstrap resamples of the seeds per fit.
      ci: confidence level of the intervals.
      tolerance: exponent tolerance of the criteria verdicts.
      step: the step the verdicts and the richness-scale figure judge (None: last step).
      seed: the bootstrap's random seed.
      coord_quantities: quantities of the coordinate-check figures (None: the default set).

    Returns:
      The path of ``out_dir/index.html``.

    Raises:
      FileNotFoundError: a store path that does not exist.
      TypeError: ``store_or_frames`` is none of the accepted kinds.
    """
    runs, metrics = load_frames(store_or_frames)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits, local = _fit_all(runs, metrics, None, None, n_boot, ci, seed, "expanded", want_local=True)
    verdicts = criteria_verdicts(fits, tolerance, step=step)
    table = run_table(runs)
    figures: list[tuple[str, Path]] = []
    scale = plot_richness_scale(fits, local, out_dir / "richness_scale.png", step=step)
    if scale is not None:
        figures.append(
            (
                "The richness scale. Top: fitted width exponents against r with seed-bootstrap "
                "intervals; dashed lines are THEORY.md's predictions (‖Δh‖ ∝ nʳ, C2; gap ∝ "
                "n^{2r−1}, C8, leading term only). Bottom: local slopes between consecutive "
                "widths, which should flatten onto the dotted prediction as width grows.",
                scale,
            )
        )
    phase = plot_phase_diagram(runs, metrics, out_dir / "phase_diagram.png")
    if phase is not None:
        figures.append(
            (
                "Phase diagram: relative feature movement ‖Δh‖/‖h‖ of the last hidden layer at "
                "the last step (predicted ∝ n^{r−1/2}: it fades with width below r = 1/2).",
                phase,
            )
        )
    kwargs = {} if coord_quantities is None else {"quantities": coord_quantities}
    for path in plot_coord_check(runs, metrics, out_dir, fits=fits, **kwargs):
        figures.append(
            (
                "Coordinate check: each quantity against width, one line per step; flat lines "
                "are width-independent; band: range over seeds. Each panel's second title line "
                "gives the fitted slope at the last step, its interval and the prediction.",
                path,
            )
        )
    summary = {
        "title": title,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tolerance": tolerance,
        "ci": ci,
        "n_boot": n_boot,
        "centered": _centered(table),
        "runs": _run_counts(table, metrics),
        "fits": [_summary_fit(row) for row in fits.to_dict("records")],
        "criteria": [_plain_row(row) for row in verdicts.to_dict("records")],
        "figures": [path.name for _, path in figures],
    }
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    page = _html(title, table, fits, verdicts, figures, summary, varying_config_keys(runs), step)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


# ------------------------------------------------------------------------------ JSON helpers


def _plain(value: Any) -> Any:
    """JSON-safe scalars: NaN and pd.NA become None, numpy scalars Python ones."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _plain(v) for k, v in row.items()}
    if "gauge" in out and out["gauge"] == "":
        out["gauge"] = None
    if "layer" in out and out["layer"] is None:
        out["layer"] = None
    return out


def _summary_fit(row: dict[str, Any]) -> dict[str, Any]:
    plain = _plain_row(row)
    out = {k: plain.get(k) for k in _SUMMARY_FIT_KEYS}
    out.update({k: v for k, v in plain.items() if k not in out})
    return out


def _centered(table: pd.DataFrame) -> bool | str | None:
    values = {v for v in table.loc[table["status"] == "done", "center"] if v is not None}
    if not values:
        return None
    return values.pop() if len(values) == 1 else "mixed"


def _run_counts(table: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, Any]:
    done = table[table["status"] == "done"]
    steps = metrics.loc[metrics["run_id"].astype(str).isin(done["run_id"]), "step"]
    return {
        "total": len(table),
        "by_status": {str(k): int(v) for k, v in table["status"].value_counts().items()},
        "widths": sorted(int(w) for w in done["width"].dropna().unique()),
        "seeds": sorted(_plain(s) for s in done["seed"].unique()),
        "labels": sorted(str(x) for x in done["label"].unique()),
        "gauges": sorted(str(g) or "—" for g in done["gauge"].unique()),
        "steps": sorted(int(t) for t in steps.unique()),
    }


# ------------------------------------------------------------------------------ HTML helpers

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1280px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.1em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #d6d6d6; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.nw { white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.pass { color: #0a7a2f; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.na { color: #888; } .note { background: #fff8e1; border-left: 4px solid #f0b400;
       padding: 0.5em 0.9em; margin: 0.8em 0; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
details summary { cursor: pointer; font-weight: 600; margin: 0.5em 0; }
code { background: #f3f4f6; padding: 0 0.25em; border-radius: 3px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, fmt: str = "+.3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<span class="na">—</span>'
    return format(float(value), fmt)


def _ci(row: dict[str, Any]) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return '<span class="na">—</span>'
    return f"[{low:+.3f}, {high:+.3f}]"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _gauge(value: Any) -> str:
    return _e(value) if value else '<span class="na">—</span>'


def _layer(row: dict[str, Any]) -> str:
    layer, ell, depth = row.get("layer"), row.get("ell"), row.get("depth")
    if not layer:
        return "model"
    if ell is None or ell < 0:
        return _e(layer)
    role = "output f" if depth is not None and not math.isnan(depth) and ell == depth else "hidden"
    return f"<span class='nw'>{_e(layer)} <span class='na'>(ℓ={ell}, {role})</span></span>"


def _where(layer: Any) -> str:
    if layer is None or (isinstance(layer, float) and math.isnan(layer)):
        return '<span class="na">—</span>'
    return _e(layer or "model")


def _verdict_cell(verdict: Any) -> str:
    css = {"pass": "pass", "fail": "fail"}.get(str(verdict), "na")
    return f'<span class="{css}">{_e(verdict)}</span>'


def _scale_table(fits: pd.DataFrame, step: int | None) -> str:
    last = last_step_rows(fits, step)
    dh = last[(last["quantity"] == "dh") & (last["ell"] >= 1) & (last["ell"] < last["depth"])]
    if dh.empty:
        return "<p class='na'>No hidden-layer ‖Δh‖ was measured.</p>"
    gap = last[last["quantity"] == "lin_gap"]
    rows = []
    dh = dh.assign(_r=dh["r"].fillna(np.inf)).sort_values(["_r", "label", "gauge", "ell"])
    for rec in dh.to_dict("records"):
        g = gap[(gap["label"] == rec["label"]) & (gap["gauge"] == rec["gauge"])]
        g = g[g["step"] == rec["step"]]
        grec = g.iloc[0].to_dict() if len(g) else None
        local = " → ".join(f"{s:+.2f}" for s in rec["local_slopes"] if not math.isnan(s))
        rows.append(
            [
                _e(rec["label"]),
                _gauge(rec["gauge"]),
                _num(rec["r"], "g"),
                _layer(rec),
                str(int(rec["step"])),
                f"<b>{_num(rec['slope'])}</b>",
                _ci(rec),
                _num(rec["predicted"]),
                f"<small class='nw'>{local}</small>",
                _num(grec["slope"]) if grec else _num(None),
                _num(grec["predicted"]) if grec else _num(None),
                f"{rec['n_widths']} × {rec['n_seeds']}",
            ]
        )
    headers = [
        "label",
        "gauge",
        "r",
        "layer",
        "step",
        "‖Δh‖ exponent",
        "CI",
        "predicted (r)",
        "local slopes, small → large n",
        "lin-gap exponent",
        "predicted (2r−1)",
        "widths × seeds",
    ]
    return _table(headers, rows, numeric={2, 4, 5, 6, 7, 9, 10})


def _criteria_table(verdicts: pd.DataFrame) -> str:
    if verdicts.empty:
        return "<p class='na'>No criteria could be judged.</p>"
    rows = []
    for rec in verdicts.to_dict("records"):
        agrees = rec["agreement"]
        agrees_text = (
            '<span class="na">—</span>'
            if not isinstance(agrees, str)
            else {"agrees": "yes", "disagrees": '<span class="fail">no</span>'}.get(
                agrees, '<span class="na">undetermined</span>'
            )
        )
        rows.append(
            [
                _e(rec["label"]),
                _gauge(rec["gauge"]),
                f"{_e(rec['criterion'])} <span class='na'>({_e(rec['claim'])})</span>",
                f"{_e(rec['quantity'])} @ {_where(rec['layer'])}",
                str(int(rec["step"])),
                _num(rec["measured"]),
                _ci(rec),
                _num(rec["target"]),
                _num(rec["predicted"]),
                _verdict_cell(rec["verdict"]),
                _verdict_cell(rec["expected"]),
                agrees_text,
                f"<small>{_e(rec['detail'])}</small>",
            ]
        )
    headers = [
        "label",
        "gauge",
        "criterion",
        "quantity @ worst layer",
        "step",
        "measured",
        "CI",
        "target",
        "predicted",
        "verdict",
        "theory expects",
        "matches prediction",
        "all layers",
    ]
    return _table(headers, rows, numeric={4, 5, 6, 7, 8})


def _fit_table(fits: pd.DataFrame) -> str:
    rows = []
    ordered = fits.assign(_r=fits["r"].fillna(np.inf)).sort_values(
        ["_r", "label", "gauge", "quantity", "ell", "step"]
    )
    for rec in ordered.to_dict("records"):
        local = " → ".join(f"{s:+.2f}" for s in rec["local_slopes"] if not math.isnan(s))
        rows.append(
            [
                _e(rec["label"]),
                _gauge(rec["gauge"]),
                f"{_e(rec['quantity'])} <span class='na'>{_e(quantity_label(rec['quantity']))}"
                "</span>",
                _layer(rec),
                str(int(rec["step"])),
                _num(rec["slope"]),
                _ci(rec),
                _num(rec["predicted"]),
                f"<small class='nw'>{local}</small>",
                f"{rec['n_widths']} × {rec['n_seeds']}",
                str(rec["n_skipped"]) if rec["n_skipped"] else "",
            ]
        )
    headers = [
        "label",
        "gauge",
        "quantity",
        "layer",
        "step",
        "slope",
        "CI",
        "predicted",
        "local slopes",
        "widths × seeds",
        "skipped ≤0",
    ]
    return _table(headers, rows, numeric={4, 5, 6, 7})


def _first_error_line(text: Any) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    # a traceback's useful line is its last ("ValueError: ..."), anything else its first
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _bad_runs(table: pd.DataFrame) -> str:
    bad = table[table["status"].isin(["diverged", "failed"])]
    if bad.empty:
        return "<p>No run diverged or failed.</p>"
    rows = []
    for rec in bad.sort_values(["status", "label", "width"]).to_dict("records"):
        step = rec.get("diverged_step")
        step_text = "" if step is None or pd.isna(step) else str(int(step))
        error = _first_error_line(rec["error"])
        rows.append(
            [
                f'<span class="fail">{_e(rec["status"])}</span>',
                _e(rec["label"]),
                _gauge(rec["gauge"]),
                _num(rec["width"], "g"),
                _e(rec["seed"]),
                step_text,
                f"<code>{_e(error)}</code>" if error else "",
                f"<code>{_e(rec['run_id'])}</code>",
            ]
        )
    headers = ["status", "label", "gauge", "width", "seed", "diverged at step", "error", "run id"]
    return "<p>These runs are excluded from every fit.</p>" + _table(headers, rows, numeric={3, 5})


def _run_summary(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    counts = summary["runs"]
    by_status = ", ".join(f"{k}: {v}" for k, v in sorted(counts["by_status"].items()))
    centered = summary["centered"]
    if centered is True:
        center_text = (
            "yes: every run trained the centered output f − f₀ "
            "(C3's ‖f₀‖ is still measured on the raw output)"
        )
    elif centered is False:
        center_text = "no: the raw output f was trained"
    elif centered == "mixed":
        center_text = "<span class='fail'>mixed</span>: some runs centered the output, some did not"
    else:
        center_text = "<span class='na'>not recorded</span>"
    done = table[table["status"] == "done"]
    items = [
        ("runs", f"{counts['total']} ({by_status})"),
        ("parameterizations", _e(", ".join(counts["labels"])) or "—"),
        ("gauges", _e(", ".join(counts["gauges"])) or "—"),
        ("widths", _e(", ".join(map(str, counts["widths"]))) or "—"),
        ("seeds", _e(", ".join(map(str, counts["seeds"]))) + f" ({done['seed'].nunique()})"),
        ("optimizers", _e(", ".join(sorted(done["optimizer"].unique())))),
        ("measured at steps", _e(", ".join(map(str, counts["steps"]))) or "—"),
        ("output centered", center_text),
    ]
    return _table(["", ""], [[f"<b>{k}</b>", v] for k, v in items], numeric=set())


def _img(path: Path) -> str:
    raw = path.read_bytes()
    # shown at the figure's size in CSS pixels (96 per inch) rather than stretched to the page
    width = int.from_bytes(raw[16:20], "big") * 96 // _DPI if raw[:8] == b"\x89PNG\r\n\x1a\n" else 0
    data = base64.b64encode(raw).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}"{size} alt="{_e(path.name)}">'


def _html(
    title: str,
    table: pd.DataFrame,
    fits: pd.DataFrame,
    verdicts: pd.DataFrame,
    figures: list[tuple[str, Path]],
    summary: dict[str, Any],
    varying: dict[str, list[str]],
    step: int | None,
) -> str:
    notes = []
    if summary["centered"] is True:
        notes.append(
            "Outputs were <b>centered</b>: the networks trained f − f₀ with f₀ frozen at init "
            "(research/notes.md: without it the random f₀ biases finite-width slopes)."
        )
    elif summary["centered"] == "mixed":
        notes.append("Some runs centered the output and some did not; their slopes differ.")
    for label, keys in varying.items():
        notes.append(
            f"Runs pooled under <b>{_e(label)}</b> also differ in {_e(', '.join(keys))}; "
            "their fits mix those settings."
        )
    n_fail = int((verdicts["verdict"] == "fail").sum()) if not verdicts.empty else 0
    n_pass = int((verdicts["verdict"] == "pass").sum()) if not verdicts.empty else 0
    n_undetermined = int((verdicts["verdict"] == "undetermined").sum()) if not verdicts.empty else 0
    decided = (
        verdicts[verdicts["verdict"].isin(["pass", "fail"])] if not verdicts.empty else verdicts
    )
    n_unexpected = int((decided["verdict"] != decided["expected"]).sum()) if len(decided) else 0
    figures_html = "".join(
        f"<figure>{_img(path)}<figcaption>{_e(caption)} <code>{_e(path.name)}</code>"
        "</figcaption></figure>"
        for caption, path in figures
    )
    last = last_step_rows(fits, step)
    groups = (
        ", ".join(sorted({group_title(row) for row in last.to_dict("records")}))
        if not last.empty
        else "—"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">Written {_e(summary["created"])} by <code>richness.analysis.write_report</code>;
{len(fits)} fitted series, {summary["runs"]["by_status"].get("done", 0)} done runs;
parameterizations: {_e(groups)}.</p>

<h2>How to read this</h2>
<p>Each quantity is measured on a fixed probe set at several widths n and seeds, after t
optimizer steps. Its <b>width exponent</b> is the least-squares slope of log(value) against
log(n); the interval (level {summary["ci"]:.0%}) comes from resampling <em>seeds</em> with
replacement ({summary["n_boot"]} times, widened for few seeds). <b>predicted</b> is the exponent
that <code>Parameterization.predict(depth)</code> derives for the run's table (THEORY.md §4):
‖Δh‖ ∝ nʳ in every hidden layer (C2), flat activations (C1), ‖Δf‖ of order one (NTC, C4),
balanced own and passed-through updates (MAX, C5), and a linearization gap ∝ n^(2r−1) (C8,
leading term; finite widths show subleading terms, so read its local slopes). Local slopes between
consecutive widths show whether an exponent has settled; a global slope alone can hide
curvature. A slope <b>agrees</b> with its target when the slope and its whole interval lie
within ±{summary["tolerance"]:g} of it, <b>disagrees</b> when the whole interval lies outside that
band, and is <b>undetermined</b> otherwise (an interval that straddles the band, or none: one
seed); <code>richness.analysis.agreement</code> gives the reason. A criterion passes when
every layer it covers agrees and fails when one disagrees.</p>
{"".join(f'<p class="note">{n}</p>' for n in notes)}

<h2>The richness scale: measured ‖Δh‖ exponent against r</h2>
{_scale_table(fits, step)}

<h2>Criteria verdicts</h2>
<p>{n_pass} pass, {n_fail} fail, {n_undetermined} undetermined; {n_unexpected} differ from
what theory expects for that parameterization (SP is expected to fail NTC and MAX).</p>
{_criteria_table(verdicts)}

<h2>Figures</h2>
{figures_html or "<p class='na'>No figure could be drawn.</p>"}

<h2>Fits at the last step</h2>
{_fit_table(last) if not last.empty else "<p class='na'>No series had two usable widths.</p>"}
<details><summary>All steps ({len(fits)} fitted series)</summary>
{_fit_table(fits) if not fits.empty else ""}
</details>

<h2>Runs</h2>
{_run_summary(table, summary)}
<h3>Diverged and failed runs</h3>
{_bad_runs(table)}
</body></html>
"""
