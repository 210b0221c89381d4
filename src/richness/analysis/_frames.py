"""Reading a store's two tables into the shape the fits need, and what theory predicts for each.

Internal to `richness.analysis` (floor 3; no torch). The runner stores (DESIGN.md, "Store"):

- ``runs``: ``run_id``, ``status``, ``config`` (JSON text) and the config flattened into columns
  (``width``, ``r``, ``preset``, ``gauge``, ``gamma``, ``seed``, ``base_width``, ``optimizer``,
  ``depth``...). The config also holds ``layers``, the hooked module names in order (position + 1
  is the representation index ℓ of `Parameterization.predict`; the last is the output, ℓ =
  depth), and ``center`` (whether the model output was centered, f − f0).
- ``metrics``: ``run_id``, ``step``, ``layer`` (module name, ``""`` at model level),
  ``quantity``, ``value``.

Every field is read from the config JSON first, then from the flattened column, so both a
store's frames and hand-built ones work.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from richness.scaling import preset as _preset
from richness.scaling import richness as _richness
from richness.sweep.store import flatten_config

__all__: list[str] = []  # internal module

# The columns that identify one parameterization (one "family" of runs fitted across width):
# runs differing only in width and seed share them.
GROUP_KEYS: tuple[str, ...] = (
    "label",
    "r",
    "preset",
    "gauge",
    "gamma",
    "optimizer",
    "base_width",
    "depth",
)

# quantity -> (axis label, THEORY.md claim); the claim id is "" for diagnostics without one.
QUANTITY_INFO: dict[str, tuple[str, str]] = {
    "h_rms": ("RMS coordinate of h", "C1"),
    "dh": ("‖Δh‖ per probe input", "C2"),
    "dh_rms": ("RMS coordinate of Δh", "C2"),
    "f0": ("‖f₀‖ (output at init)", "C3"),
    "df": ("‖Δf‖ per probe input", "C4"),
    "max_ratio": ("‖ΔW h‖ / ‖W Δh‖", "C5"),
    "align": ("alignment ‖ΔW h‖ / (‖ΔW‖ₒₚ‖h‖)", "C6"),
    "align_w0": ("alignment of W₀ with Δh", "C6"),
    "grad": ("‖∇_W L‖_F (weight gradient)", "C7"),
    "grad_h": ("‖∂(u·f)/∂h‖ (backward signal)", "C7"),
    "lin_gap": ("‖f − f_lin‖ / ‖Δf‖", "C8"),
    "dW_op": ("‖ΔW‖ operator norm", ""),
    "dW_fro": ("‖ΔW‖ Frobenius norm", ""),
    "ntk_dist": ("relative NTK movement", ""),
    "loss": ("training loss", ""),
    "test_loss": ("test loss", ""),
    "test_acc": ("test accuracy", ""),
}

# A measured quantity whose prediction `predict()` files under another name (none so far:
# the Meter's "grad_h" is predict()'s "grad_h/ℓ"; its "grad", the weight gradient, has none).
QUANTITY_ALIASES: dict[str, str] = {}


def quantity_label(quantity: str) -> str:
    """Returns a readable axis label for a quantity, with its claim id when it has one."""
    text, claim = QUANTITY_INFO.get(quantity, (quantity, ""))
    return f"{text} [{claim}]" if claim else text


def load_frames(source: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns ``(runs, metrics)`` from a store path, a Store-like object or a pair of frames.

    Args:
      source: a path (str or Path) to an SQLite store, an object with ``.runs()`` and
        ``.metrics()`` (a `richness.sweep.store.Store`), or a ``(runs, metrics)`` pair.

    Raises:
      FileNotFoundError: the path does not exist.
      TypeError: anything else.
    """
    if isinstance(source, tuple | list) and len(source) == 2:
        runs, metrics = source
        if isinstance(runs, pd.DataFrame) and isinstance(metrics, pd.DataFrame):
            return runs, metrics
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"store={str(path)!r} does not exist; run a sweep first")
        from richness.sweep.store import Store  # floor 3 sibling, imported where needed

        source = Store(path)
    if hasattr(source, "runs") and hasattr(source, "metrics"):
        return source.runs(), source.metrics()
    raise TypeError(
        f"source of type {type(source).__name__} is not a store path, a Store, or a "
        "(runs, metrics) pair of DataFrames"
    )


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _config(row: Mapping[str, Any]) -> dict[str, Any]:
    text = row.get("config")
    if isinstance(text, Mapping):
        return dict(text)
    if isinstance(text, str) and text:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _field(config: Mapping[str, Any], row: Mapping[str, Any], *paths: str) -> Any:
    """The first present value among config paths ("a.b" is nested) and flattened columns."""
    for path in paths:
        node: Any = config
        for part in path.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                node = None
                break
        if not _missing(node):
            return node
    for path in paths:
        for column in (path, f"config.{path}"):
            value = row.get(column)
            if not _missing(value) and not isinstance(value, Mapping):
                return value
    return None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Returns one normalized row per run: the fields the fits group and label by.

    Columns: ``run_id``, ``status``, ``width`` (int), ``seed``, ``label`` (the preset name, else
    ``f"r={r:g}"``), ``r`` (the parameterization's richness, NaN for SP), ``preset`` (str or
    None), ``gauge`` (str, ``""`` when undefined as for SP), ``gamma``, ``optimizer``,
    ``base_width`` (NaN when absolute), ``depth``, ``layers`` (list of module names), ``center``
    (bool or None), ``diverged_step``, ``error``.

    Raises:
      ValueError: ``runs`` lacks ``run_id`` or ``status``.
    """
    for column in ("run_id", "status"):
        if column not in runs.columns:
            raise ValueError(f"runs has no {column!r} column; columns found: {list(runs.columns)}")
    records = []
    for row in runs.to_dict("records"):
        config = _config(row)
        preset_name = _field(config, row, "preset")
        preset_name = None if _missing(preset_name) or preset_name == "" else str(preset_name)
        r_config = _as_float(_field(config, row, "r"))
        gauge = _field(config, row, "gauge")
        gamma = _as_float(_field(config, row, "gamma"))
        gamma = 1.0 if math.isnan(gamma) else gamma
        optimizer = _field(config, row, "optimizer", "optimizer.kind")
        if isinstance(optimizer, Mapping):
            optimizer = optimizer.get("kind")
        optimizer = "sgd" if _missing(optimizer) else str(optimizer)
        base_width = _as_float(_field(config, row, "base_width"))
        layers = _field(config, row, "layers")
        layers = [str(name) for name in layers] if isinstance(layers, list | tuple) else []
        depth = _as_float(_field(config, row, "depth"))
        if math.isnan(depth):
            depth = float(len(layers)) if layers else _as_float(_field(config, row, "model.depth"))
        center = _field(config, row, "center")
        width = _as_float(_field(config, row, "width", "model.width"))
        seed = _field(config, row, "seed")
        p = _parameterization(
            preset_name,
            None if math.isnan(r_config) else r_config,
            None if _missing(gauge) else str(gauge),
            gamma,
            optimizer,
            None if math.isnan(base_width) else base_width,
        )
        if p is not None:
            r, gauge_resolved = _as_float(p.r), p.gauge or ""
        else:
            r, gauge_resolved = r_config, "" if _missing(gauge) else str(gauge)
        if preset_name is not None:
            label = preset_name
        elif not math.isnan(r_config):
            label = f"r={r_config:g}"
        else:
            label = "custom"
        error = row.get("error")
        records.append(
            {
                "run_id": str(row["run_id"]),
                "status": str(row["status"]),
                "width": width,
                "seed": -1 if _missing(seed) else seed,
                "label": label,
                "r": r,
                "preset": preset_name,
                "gauge": gauge_resolved,
                "gamma": gamma,
                "optimizer": optimizer,
                "base_width": base_width,
                "depth": depth,
                "layers": layers,
                "center": None if _missing(center) else bool(center),
                "diverged_step": row.get("diverged_step"),
                "error": None if _missing(error) else str(error),
            }
        )
    columns = [
        "run_id",
        "status",
        "width",
        "seed",
        "label",
        "r",
        "preset",
        "gauge",
        "gamma",
        "optimizer",
        "base_width",
        "depth",
        "layers",
        "center",
        "diverged_step",
        "error",
    ]
    table = pd.DataFrame.from_records(records, columns=columns)
    for column in ("width", "r", "gamma", "base_width", "depth"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    return table


def group_key(row: Mapping[str, Any]) -> str:
    """A hashable, NaN-safe key of a row's `GROUP_KEYS` (JSON text)."""
    values = []
    for key in GROUP_KEYS:
        value = row.get(key)
        if isinstance(value, float | np.floating) and math.isnan(value):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        values.append(value)
    return json.dumps(values)


@functools.lru_cache(maxsize=512)
def _parameterization(
    preset_name: str | None,
    r: float | None,
    gauge: str | None,
    gamma: float,
    optimizer: str,
    base_width: float | None,
):
    """Rebuilds a run's table from its config; None when the config names no valid one."""
    try:
        if preset_name is not None:
            return _preset(
                preset_name,  # type: ignore[arg-type]
                gauge=gauge,  # type: ignore[arg-type]
                gamma=gamma,
                optimizer=optimizer,  # type: ignore[arg-type]
                base_width=base_width,
            )
        if r is None:
            return None
        return _richness(
            r,
            gauge or "stp",  # type: ignore[arg-type]
            gamma,
            optimizer,  # type: ignore[arg-type]
            base_width,
            allow_off_scale=True,
        )
    except (ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=512)
def _predictions(
    preset_name: str | None,
    r: float | None,
    gauge: str | None,
    gamma: float,
    optimizer: str,
    base_width: float | None,
    depth: int,
) -> dict[str, float] | None:
    p = _parameterization(preset_name, r, gauge, gamma, optimizer, base_width)
    if p is None or depth < 2:
        return None
    try:
        return p.predict(depth)
    except ValueError:
        return None


def predictions(row: Mapping[str, Any]) -> dict[str, float] | None:
    """Returns `Parameterization.predict(depth)` for a `run_table` row, or None.

    The table is rebuilt from the config: ``preset(name, gauge, gamma, optimizer, base_width)``
    for a preset, else ``richness(r, gauge, gamma, optimizer, base_width)``.

    Args:
      row: a `run_table` row (preset, r, gauge, gamma, optimizer, base_width, depth).
    """

    def _number(value: Any) -> float | None:
        value = _as_float(value)
        return None if math.isnan(value) else value

    depth = _number(row.get("depth"))
    if depth is None:
        return None
    preset_name = row.get("preset")
    preset_name = preset_name if isinstance(preset_name, str) and preset_name else None
    gauge = row.get("gauge") or None
    if preset_name == "sp":
        gauge = None
    return _predictions(
        preset_name,
        _number(row.get("r")),
        gauge,
        float(row.get("gamma", 1.0)),
        str(row.get("optimizer", "sgd")),
        _number(row.get("base_width")),
        int(depth),
    )


def predicted_exponent(
    pred: Mapping[str, float] | None,
    quantity: str,
    ell: int | None,
    depth: int | None,
    step: int,
) -> float:
    """The predicted width exponent of one measured series (NaN when theory has none).

    Implements the mapping from stored metrics to `predict()` keys (THEORY.md §4):
    model-level quantities use their own key ("f0" C3, "df" C4, "lin_gap" C8); a per-layer
    quantity uses ``f"{q}/{ℓ}"`` when it exists. The output layer (ℓ = depth) is the model
    output f, so its ‖Δh‖ is ‖Δf‖ ("df") and its RMS is ‖f₀‖ at init and the larger of f₀, Δf
    later. Otherwise the summary key ``q`` is used only when predict() has no per-layer
    version of ``q`` (for instance "align", C6), so that a per-layer law is never replaced by
    another layer's summary.

    Args:
      pred: the dict of `Parameterization.predict(depth)`, or None.
      quantity: the stored quantity name.
      ell: the representation index ℓ (1..depth), or None at model level.
      depth: number of weight layers.
      step: optimizer steps taken (0 = init).
    """
    if pred is None:
        return math.nan
    if ell is None:
        return float(pred.get(quantity, math.nan))
    name = QUANTITY_ALIASES.get(quantity, quantity)
    key = f"{name}/{ell}"
    if key in pred:
        return float(pred[key])
    if depth is not None and ell == depth:
        if quantity in ("dh", "dh_rms"):
            return float(pred["df"])
        if quantity == "h_rms":
            return float(pred["f0"] if step == 0 else max(pred["f0"], pred["df"]))
    if any(k.startswith(f"{name}/") for k in pred):
        return math.nan
    return float(pred.get(name, math.nan))


def layer_index(layers: list[str], layer: str) -> int | None:
    """ℓ = position + 1 of ``layer`` in the config's ``layers`` list; None at model level."""
    if layer == "" or layer is None:
        return None
    try:
        return layers.index(layer) + 1
    except ValueError:
        return None


def varying_config_keys(runs: pd.DataFrame) -> dict[str, list[str]]:
    """Config keys that differ between runs fitted together (beyond width and seed).

    Fits pool every done run of one parameterization (`GROUP_KEYS`) across width and seed; a
    run config that also varies, say, the base learning rate inside such a group mixes two
    experiments. Returns ``{label: [keys]}`` for the groups where this happens.
    """
    table = run_table(runs)
    done = table["status"] == "done"
    out: dict[str, list[str]] = {}
    ignore = {"width", "seed", "model.width", "layers"}
    for _, members in table[done].groupby(table[done].apply(group_key, axis=1), sort=False):
        configs = [
            flatten_config(_config(row))
            for row in runs[runs["run_id"].astype(str).isin(members["run_id"])].to_dict("records")
        ]
        keys = sorted({k for c in configs for k in c} - ignore)
        varying = [
            k
            for k in keys
            if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs}) > 1
        ]
        if varying:
            out[str(members["label"].iloc[0])] = varying
    return out


def last_step_rows(fits: pd.DataFrame, step: int | None = None) -> pd.DataFrame:
    """The rows of `fit_exponents` output at ``step``, or each parameterization's last step."""
    if fits.empty:
        return fits
    if step is not None:
        return fits[fits["step"] == step]
    keys = pd.Series([group_key(row) for row in fits.to_dict("records")], index=fits.index)
    last = fits["step"].groupby(keys).transform("max")
    return fits[fits["step"] == last]


def tidy(runs: pd.DataFrame, metrics: pd.DataFrame, *, status: str | None = "done") -> pd.DataFrame:
    """Joins metrics with the normalized run fields; adds ``ell`` (ℓ, or -1 at model level).

    Args:
      runs: the store's runs frame.
      metrics: the store's metrics frame.
      status: keep only runs with this status (None: all).

    Returns:
      The metrics rows of the kept runs with `run_table` columns, ``ell`` and ``group`` (the
      `group_key` text).
    """
    for column in ("run_id", "step", "layer", "quantity", "value"):
        if column not in metrics.columns:
            raise ValueError(
                f"metrics has no {column!r} column; columns found: {list(metrics.columns)}"
            )
    table = run_table(runs)
    if status is not None:
        table = table[table["status"] == status]
    table = table.assign(group=[group_key(row) for row in table.to_dict("records")])
    m = metrics[["run_id", "step", "layer", "quantity", "value"]].copy()
    m["run_id"] = m["run_id"].astype(str)
    m["layer"] = m["layer"].fillna("").astype(str)
    m["value"] = pd.to_numeric(m["value"], errors="coerce").astype("float64")
    m["step"] = m["step"].astype("int64")
    joined = m.merge(table.drop(columns=["error", "diverged_step"]), on="run_id", how="inner")
    ell = [
        layer_index(layers, layer)
        for layers, layer in zip(joined["layers"], joined["layer"], strict=True)
    ]
    joined["ell"] = np.array([-1 if e is None else e for e in ell], dtype=np.int64)
    return joined
