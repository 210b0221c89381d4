"""Store-shaped tables: reading a store's two tables into what the fits need, and building them.

Internal to `richness.analysis` (floor 3; no torch). The runner stores (DESIGN.md, "Store"):

- ``runs``: ``run_id``, ``status``, ``config`` (JSON text) and the config flattened into columns
  (``width``, ``r``, ``preset``, ``gauge``, ``gamma``, ``seed``, ``base_width``, ``optimizer``,
  ``center``...), and ``identity``: what the run is, recorded when it ran
  (`richness.build.identity`), a dict

      {"depth": 3,
       "layers": [{"name": "layers.0", "role": "input", "ell": 1}, ...],
       "predicted": {"dh/layers.0": 0.25, "f0": -0.25, ...},
       "predicted_init": {"h_rms/layers.2": -0.25}}

  whose "predicted" holds theory's width exponent of each Meter key after one or more steps
  and "predicted_init" the keys whose exponent differs at step 0
  (`richness.scaling.series.predicted_series`); a key in neither has no prediction.
- ``metrics``: ``run_id``, ``step``, ``layer`` (module name, ``""`` at model level),
  ``quantity``, ``value``.

Config fields are read from the config JSON first, then from the flattened column, so both a
store's frames and hand-built ones work; frames of runs that never went through a store are
built with `run_frames`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from richness.scaling.tables import preset_point
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


def run_frames(records: Iterable[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns ``(runs, metrics)`` shaped like a store's, for runs that never went through one.

    The one constructor of store-shaped tables (a coordinate check, the richness meter on a
    user's loop, a claim that draws initializations itself): `fit_exponents`, `local_slopes`,
    the report and the meter read its output exactly as they read `Store.runs()` and
    `Store.metrics()`.

    Args:
      records: one mapping per run with keys
        ``run_id`` (str);
        ``config`` (dict): ``width``, ``seed`` and what the fits group runs by (``r`` or
        ``preset``, ``gauge``, ``gamma``, ``optimizer``, ``base_width``; absent ones read as
        a custom recipe), any other JSON-able fields kept;
        ``identity`` (dict): what the run is, as `richness.build.identity` records it;
        ``rows``: ``(step, layer, quantity, value)`` tuples (layer ``""`` at model level), as
        `richness.train.RunOutcome.rows`;
        optionally ``status`` (default "done"), ``diverged_step`` and ``error``.

    Returns:
      ``runs`` (run_id, status, config JSON text, identity, diverged_step, error, then the
      flattened config columns) and ``metrics`` (run_id, step, layer, quantity, value).

    Raises:
      ValueError: a record without run_id, config or identity.
    """
    run_rows, metric_rows = [], []
    for i, record in enumerate(records):
        missing = [k for k in ("run_id", "config", "identity") if record.get(k) is None]
        if missing:
            raise ValueError(f"record {i} lacks {missing}: a run needs run_id, config, identity")
        run_id, config = str(record["run_id"]), dict(record["config"])
        run_rows.append(
            {
                "run_id": run_id,
                "status": record.get("status", "done"),
                "config": json.dumps(config, sort_keys=True),
                "identity": dict(record["identity"]),
                "diverged_step": record.get("diverged_step"),
                "error": record.get("error"),
                **{k: v for k, v in flatten_config(config).items() if k not in _RUN_FIELDS},
            }
        )
        metric_rows += [
            (run_id, int(step), str(layer), str(q), float(v))
            for step, layer, q, v in record.get("rows", ())
        ]
    runs = pd.DataFrame.from_records(run_rows)
    metrics = pd.DataFrame(metric_rows, columns=["run_id", "step", "layer", "quantity", "value"])
    return runs, metrics


def plain_identity(layers: Sequence[str]) -> dict[str, Any]:
    """The identity of a run no table parameterized: its measured layers in order (ℓ =
    position + 1; depth = their number), roles unrecorded (None) and no predictions."""
    return {
        "depth": len(layers),
        "layers": [{"name": name, "role": None, "ell": i} for i, name in enumerate(layers, 1)],
        "predicted": {},
        "predicted_init": {},
    }


_RUN_FIELDS = ("run_id", "status", "config", "identity", "diverged_step", "error")


def _identity(row: Mapping[str, Any]) -> dict[str, Any] | None:
    value = row.get("identity")
    if isinstance(value, str) and value:
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else None


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Returns one normalized row per run: the fields the fits group and label by.

    Columns: ``run_id``, ``status``, ``width`` (int), ``seed``, ``label`` (the preset name, else
    ``f"r={r:g}"``, else "custom"), ``r`` (the richness the config names or its preset sits
    at, NaN for SP and custom recipes), ``preset`` (str or None), ``gauge`` (str, ``""`` when
    undefined as for SP), ``gamma``, ``optimizer``, ``base_width`` (NaN when absolute),
    ``depth`` and ``layers`` (from the identity; NaN and [] without one), ``identity`` (dict or
    None), ``center`` (bool or None), ``diverged_step``, ``error``.

    Raises:
      ValueError: ``runs`` lacks ``run_id`` or ``status``.
    """
    for column in ("run_id", "status"):
        if column not in runs.columns:
            raise ValueError(f"runs has no {column!r} column; columns found: {list(runs.columns)}")
    records = []
    for row in runs.to_dict("records"):
        config = _config(row)
        identity = _identity(row)
        preset_name = _field(config, row, "preset")
        preset_name = None if _missing(preset_name) or preset_name == "" else str(preset_name)
        r = _as_float(_field(config, row, "r"))
        gauge = _field(config, row, "gauge")
        gauge = "" if _missing(gauge) else str(gauge)
        if preset_name is not None:
            r_preset, gauge_preset = preset_point(preset_name)
            r = math.nan if r_preset is None else r_preset
            gauge = gauge or gauge_preset or ""
        gamma = _as_float(_field(config, row, "gamma"))
        optimizer = _field(config, row, "optimizer", "optimizer.kind")
        if isinstance(optimizer, Mapping):
            optimizer = optimizer.get("kind")
        center = _field(config, row, "center")
        seed = _field(config, row, "seed")
        error = row.get("error")
        if preset_name is not None:
            label = preset_name
        elif not math.isnan(r):
            label = f"r={r:g}"
        else:
            label = "custom"
        records.append(
            {
                "run_id": str(row["run_id"]),
                "status": str(row["status"]),
                "width": _as_float(_field(config, row, "width", "model.width")),
                "seed": -1 if _missing(seed) else seed,
                "label": label,
                "r": r,
                "preset": preset_name,
                "gauge": gauge,
                "gamma": 1.0 if math.isnan(gamma) else gamma,
                "optimizer": "sgd" if _missing(optimizer) else str(optimizer),
                "base_width": _as_float(_field(config, row, "base_width")),
                "depth": math.nan if identity is None else float(identity["depth"]),
                "layers": [] if identity is None else [e["name"] for e in identity["layers"]],
                "identity": identity,
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
        "identity",
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


def meter_key(quantity: str, layer: str) -> str:
    """The Meter's key of a stored series: ``"quantity/layer"``, or ``quantity`` at model level."""
    return f"{quantity}/{layer}" if layer else quantity


def predicted_exponent(identity: Mapping[str, Any] | None, key: str, step: int) -> float:
    """The predicted width exponent of one measured series of a run (NaN when theory has none).

    ``identity["predicted_init"][key]`` at step 0 when it is there, else
    ``identity["predicted"][key]``, else NaN (module docstring; THEORY.md §4).

    Args:
      identity: the run's identity (or a dict with its "predicted" and "predicted_init").
      key: the Meter key (`meter_key`).
      step: optimizer steps taken (0 = init).
    """
    if identity is None:
        return math.nan
    if step == 0 and key in identity.get("predicted_init", {}):
        return float(identity["predicted_init"][key])
    return float(identity.get("predicted", {}).get(key, math.nan))


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
    """Joins metrics with the normalized run fields; adds ``ell`` and ``role`` from the identity.

    Args:
      runs: the store's runs frame.
      metrics: the store's metrics frame.
      status: keep only runs with this status (None: all).

    Returns:
      The metrics rows of the kept runs with `run_table` columns, ``ell`` (the layer's
      representation index ℓ from the run's identity, -1 at model level), ``role`` ("input",
      "hidden", "output" as the run recorded it; None at model level or unrecorded) and
      ``group`` (the `group_key` text).

    Raises:
      ValueError: a frame lacks a needed column, a kept run has no identity record, or a
        stored layer is not in its run's identity.
    """
    for column in ("run_id", "step", "layer", "quantity", "value"):
        if column not in metrics.columns:
            raise ValueError(
                f"metrics has no {column!r} column; columns found: {list(metrics.columns)}"
            )
    table = run_table(runs)
    if status is not None:
        table = table[table["status"] == status]
    unknown = table.loc[table["identity"].isna(), "run_id"].tolist()
    if unknown:
        raise ValueError(
            f"{len(unknown)} run(s) have no identity record (e.g. run_id={unknown[0]!r}): "
            "they were stored before richness recorded what each run is; rerun them into a "
            "new store, or build hand-made frames with richness.analysis.run_frames"
        )
    table = table.assign(group=[group_key(row) for row in table.to_dict("records")])
    m = metrics[["run_id", "step", "layer", "quantity", "value"]].copy()
    m["run_id"] = m["run_id"].astype(str)
    m["layer"] = m["layer"].fillna("").astype(str)
    m["value"] = pd.to_numeric(m["value"], errors="coerce").astype("float64")
    m["step"] = m["step"].astype("int64")
    joined = m.merge(table.drop(columns=["error", "diverged_step"]), on="run_id", how="inner")
    layers = pd.DataFrame.from_records(
        [
            (run_id, entry["name"], int(entry["ell"]), entry.get("role"))
            for run_id, identity in zip(table["run_id"], table["identity"], strict=True)
            for entry in identity["layers"]
        ],
        columns=["run_id", "layer", "ell", "role"],
    )
    joined = joined.merge(layers, on=["run_id", "layer"], how="left")
    absent = joined[(joined["layer"] != "") & joined["ell"].isna()]
    if len(absent):
        first = absent.iloc[0]
        raise ValueError(
            f"run {first['run_id']!r} stored metrics of layer={first['layer']!r}, which its "
            "identity does not list; the identity must name every measured layer"
        )
    joined["ell"] = joined["ell"].fillna(-1).astype(np.int64)
    joined["role"] = joined["role"].where(joined["layer"] != "", None)
    return joined
