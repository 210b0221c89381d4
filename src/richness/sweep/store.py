"""The run store: one SQLite file holding every run of a sweep and its metrics.

Two tables (DESIGN.md, "Store"):

``runs``: one row per run, keyed by ``run_id = config_hash(config)``::

    run_id TEXT PRIMARY KEY   16 hex digits of sha256(canonical JSON of the full config)
    status TEXT               pending | running | done | diverged | failed
    sweep TEXT                the sweep's name (None when run alone)
    config TEXT               the config JSON the run is keyed by
    started, finished TEXT    ISO-8601 UTC timestamps
    seconds REAL              wall time of the run as reported to finish()
    diverged_step INTEGER     first step whose loss was not finite (diverged runs)
    error TEXT                traceback text (failed runs)
    host, worker TEXT         where it last ran (hostname; pid or Ray worker id)
    attempts INTEGER          how many times it was marked running
    path TEXT                 the loop's backend that trained it: alone | ensemble
    path_reason TEXT          why it trained alone where it could have joined an ensemble
    identity TEXT             JSON: its measured layers, roles, ℓ, predicted exponents
                              (`richness.build.identity`), recorded at run time

A file written before these three columns existed (schema version 1) gains them on open,
empty for its old runs.

``metrics``: tidy rows ``(run_id, step, layer, quantity, value)``; ``layer`` is ``''`` for
model-level quantities (``f0``, ``df``, ``loss``...), so ``"dh/blocks.0"`` is stored as
quantity ``"dh"``, layer ``"blocks.0"`` (see :func:`metric_rows`).

Crash safety: ``finish`` writes a run's metrics and its final status in one transaction, after
deleting any metrics the run already had, and ``mark_running`` deletes stale metrics too. A
process killed at any point therefore leaves either a finished run with all its metrics, or a
run that is not finished (``pending`` or ``running``) and has no metrics; only ``done``,
``diverged`` and ``failed`` count as finished, so a restarted sweep redoes the rest.

Concurrency: the database is in WAL mode, every write is a ``BEGIN IMMEDIATE`` transaction,
and every connection waits up to ``timeout`` seconds for a lock, so several processes on one
machine (local worker processes, Ray tasks on a single node) can write to the same file. Each
method opens and closes its own connection, so a Store can be pickled to a subprocess or Ray
task. SQLite locking is unreliable on network file systems: on a multi-node Ray cluster, have
the tasks return their rows and let the driver write them.

Example:
    >>> import tempfile, os
    >>> store = Store(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
    >>> config = {"width": 128, "r": 0.25, "gauge": "stp", "seed": 0}
    >>> run_id = config_hash(config)
    >>> store.mark_running(run_id, config, sweep="demo")
    True
    >>> store.finish(run_id, "done", [(0, "", "f0", 1.5), (0, "h.0", "dh", 0.1)], seconds=0.2)
    >>> store.pending([run_id])
    []
    >>> store.metrics()[["step", "layer", "quantity", "value"]].values.tolist()
    [[0, '', 'f0', 1.5], [0, 'h.0', 'dh', 0.1]]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd

__all__ = [
    "FINISHED",
    "METRIC_COLUMNS",
    "RUN_COLUMNS",
    "STATUSES",
    "FinalStatus",
    "MetricRow",
    "Status",
    "Store",
    "canonical_json",
    "config_hash",
    "flatten_config",
    "metric_rows",
]

Status = Literal["pending", "running", "done", "diverged", "failed"]
FinalStatus = Literal["done", "diverged", "failed"]
STATUSES: tuple[str, ...] = get_args(Status)
FINISHED: frozenset[str] = frozenset(get_args(FinalStatus))
MetricRow = tuple[int, str, str, float | None]  # (step, layer, quantity, value)

RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "status",
    "sweep",
    "config",
    "started",
    "finished",
    "seconds",
    "diverged_step",
    "error",
    "host",
    "worker",
    "attempts",
    "path",
    "path_reason",
    "identity",
)

METRIC_COLUMNS: tuple[str, ...] = ("run_id", "step", "layer", "quantity", "value")

_SCHEMA_VERSION = 2
_ADDED_IN_2 = ("path TEXT", "path_reason TEXT", "identity TEXT")  # columns a version-1 file lacks
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
    sweep TEXT,
    config TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    seconds REAL,
    diverged_step INTEGER,
    error TEXT,
    host TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    path TEXT,
    path_reason TEXT,
    identity TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    layer TEXT NOT NULL DEFAULT '',
    quantity TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, step, layer, quantity)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metrics_quantity ON metrics (quantity, layer);
PRAGMA user_version = {_SCHEMA_VERSION};
"""


def canonical_json(config: Mapping[str, Any]) -> str:
    """Returns the canonical JSON text of a config: sorted keys, no spaces, UTF-8 as is.

    Tuples are written as lists and numpy scalars as Python numbers, so a config built from
    numpy values hashes like the same config typed by hand. ``1`` and ``1.0`` stay different.

    Args:
        config: a JSON-like mapping with str keys (nested dicts, lists, str, numbers, bools,
            None).

    Returns:
        The JSON text.

    Raises:
        TypeError: a key is not a str or a value is not JSON-like (the message names the path).
        ValueError: a float is NaN or infinite (JSON has no spelling for them).
    """
    if hasattr(config, "as_json"):  # a typed RunConfig: its JSON form
        config = config.as_json()
    return json.dumps(
        _plain(config, "config"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def config_hash(config: Mapping[str, Any]) -> str:
    """Returns the run id of a config: the first 16 hex digits of sha256(canonical JSON).

    Key order never matters (``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` hash alike);
    everything else does, so put every field that changes a run's result in its config.

    Args:
        config: a JSON-like mapping (see :func:`canonical_json`).

    Returns:
        16 lowercase hex characters.

    Example:
        >>> config_hash({"width": 64, "r": 0.0}) == config_hash({"r": 0.0, "width": 64})
        True
    """
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:16]


def metric_rows(step: int, metrics: Mapping[str, Any]) -> list[MetricRow]:
    """Returns tidy rows from a flat metrics dict such as ``Meter.measure()``'s.

    A key ``"quantity/layer"`` splits at its first ``/``; a key without ``/`` is a model-level
    quantity and gets layer ``''``.

    Args:
        step: the training step the metrics were measured at.
        metrics: ``{"dh/blocks.0": 0.1, "f0": 1.2, ...}``; values are numbers or 0-dim tensors.

    Returns:
        ``[(step, layer, quantity, value), ...]`` in the dict's order.

    Example:
        >>> metric_rows(5, {"dh/h.1": 0.5, "f0": 2.0})
        [(5, 'h.1', 'dh', 0.5), (5, '', 'f0', 2.0)]
    """
    rows: list[MetricRow] = []
    for key, value in metrics.items():
        quantity, _, layer = key.partition("/")
        rows.append((int(step), layer, quantity, _float(value)))
    return rows


class Store:
    """A SQLite run store that several processes can write to at once.

    Args:
        path: the database file; created (with its parent directory) if missing.
        timeout: seconds a connection waits for another writer's lock before failing.

    Raises:
        ValueError: ``path`` is ``":memory:"`` or empty (each call opens its own connection,
            so an in-memory database would vanish between calls).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        if str(path) in ("", ":memory:"):
            raise ValueError(
                f"path={str(path)!r} is not allowed: the Store opens one connection per call, so "
                "it needs a file; use a temporary file for a throwaway store"
            )
        self.path = Path(path).expanduser()
        self.timeout = float(timeout)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            # WAL lets readers proceed while one process writes; the mode is stored in the file.
            # Some file systems refuse it; the default rollback journal is still correct.
            con.execute("PRAGMA journal_mode = WAL")
            columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            missing = [c for c in _ADDED_IN_2 if columns and c.split()[0] not in columns]
            added = "".join(f"ALTER TABLE runs ADD COLUMN {c};\n" for c in missing)
            con.executescript(f"BEGIN IMMEDIATE;\n{added}{_SCHEMA}\nCOMMIT;")
        if missing:
            self._record_identities()

    def _record_identities(self) -> None:
        """Migrates a version-1 file: each finished run's identity, from its config.

        Imports the training floor (torch) for this one migration; a run whose model can't be
        built here (its data or factory is missing) keeps no identity, with a warning.
        """
        from richness.build import identity_of

        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id, config FROM runs WHERE identity IS NULL"
                " AND status IN ('done', 'diverged', 'failed')"
            ).fetchall()
        cache: dict[str, str | None] = {}
        found: list[tuple[str | None, str]] = []
        for run_id, text in rows:
            config = json.loads(text)
            key = canonical_json({k: v for k, v in config.items() if k not in ("seed", "width")})
            if key not in cache:
                try:
                    cache[key] = canonical_json(identity_of(config))
                except Exception as err:
                    warnings.warn(
                        f"{self.path}: run {run_id} gets no identity ({type(err).__name__}: "
                        f"{err}); its exponents have no prediction",
                        stacklevel=3,
                    )
                    cache[key] = None
            found.append((cache[key], run_id))
        with self._transaction() as con:
            con.executemany("UPDATE runs SET identity = ? WHERE run_id = ?", found)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @classmethod
    def open_existing(cls, path: str | os.PathLike[str], *, timeout: float = 60.0) -> Store:
        """Returns the store already at `path`, for reading; never creates one.

        ``Store(path)`` makes a missing file a new empty store, which a reader (report, meter)
        must not: it would report on nothing. The file is read-only until it is known to be one.

        Raises:
            ValueError: `path` is missing, a directory, not SQLite, or SQLite without a
                ``runs`` table (the message names the file).
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise ValueError(f"store {path} does not exist (write it with `richness sweep`)")
        if not path.is_file():
            raise ValueError(f"store {path} is a directory, not a store file (runs.sqlite)")
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
            try:
                found = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
                ).fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError as err:  # "file is not a database"
            raise ValueError(f"store {path} is not an SQLite file ({err})") from None
        if found is None:
            raise ValueError(
                f"store {path} is an SQLite file without a runs table (not written by "
                "`richness sweep`)"
            )
        return cls(path, timeout=timeout)

    # ---------------------------------------------------------------------------- writing

    def add_pending(
        self, configs: Iterable[Mapping[str, Any]], *, sweep: str | None = None
    ) -> list[str]:
        """Registers configs as ``pending`` runs (runs already present are left as they are).

        Args:
            configs: the full configs of the runs, one per run.
            sweep: the sweep's name.

        Returns:
            Their run ids, in order.
        """
        rows = [(config_hash(c), canonical_json(c)) for c in configs]
        with self._transaction() as con:
            con.executemany(
                "INSERT INTO runs (run_id, status, sweep, config) VALUES (?, 'pending', ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                [(run_id, sweep, text) for run_id, text in rows],
            )
        return [run_id for run_id, _ in rows]

    def mark_running(
        self,
        run_id: str,
        config: Mapping[str, Any],
        *,
        sweep: str | None = None,
        host: str | None = None,
        worker: str | None = None,
    ) -> bool:
        """Claims a run: sets it ``running`` and deletes any metrics left by an earlier attempt.

        A run that is already finished is left alone, so a restarted sweep never redoes it.

        Args:
            run_id: ``config_hash(config)``.
            config: the run's full config, stored as JSON.
            sweep: the sweep's name.
            host: where it runs (default: this machine's hostname).
            worker: which worker runs it (default: this process's pid).

        Returns:
            True if the run is now ``running``; False if it was already finished.

        Raises:
            ValueError: ``run_id`` is not ``config_hash(config)``.
        """
        self._check_id(run_id, config)
        host = socket.gethostname() if host is None else host
        worker = f"pid{os.getpid()}" if worker is None else worker
        with self._transaction() as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and row[0] in FINISHED:
                return False
            con.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            con.execute(
                "INSERT INTO runs (run_id, status, sweep, config, started, host, worker, attempts)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (run_id) DO UPDATE SET status = 'running',"
                " sweep = COALESCE(excluded.sweep, runs.sweep), config = excluded.config,"
                " started = excluded.started, finished = NULL, seconds = NULL,"
                " diverged_step = NULL, error = NULL, host = excluded.host,"
                " worker = excluded.worker, attempts = runs.attempts + 1",
                (run_id, sweep, canonical_json(config), _now(), host, worker),
            )
        return True

    def finish(
        self,
        run_id: str,
        status: FinalStatus,
        metrics_rows: Iterable[MetricRow | Mapping[str, Any]] | pd.DataFrame,
        seconds: float,
        diverged_step: int | None = None,
        error: str | None = None,
        path: str | None = None,
        path_reason: str | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        """Writes a run's metrics and final status in one transaction.

        Metrics the run already had are replaced, so finishing twice keeps the second result
        and never mixes the two. If anything fails before the commit (an exception, a killed
        process) nothing of this call is stored and the run stays unfinished.

        Args:
            run_id: a run previously passed to :meth:`mark_running` (or :meth:`add_pending`).
            status: ``"done"``, ``"diverged"`` or ``"failed"``.
            metrics_rows: ``(step, layer, quantity, value)`` tuples, mappings with those keys, or
                a DataFrame with those columns. ``layer`` None or ``''`` means model-level;
                ``value`` None, NaN or a 0-dim tensor is accepted (NaN is stored as NULL).
            seconds: wall time of the run.
            diverged_step: first non-finite step of a diverged run.
            error: traceback text of a failed run.
            path: which backend trained it, ``"alone"`` or ``"ensemble"`` (`richness.train`).
            path_reason: why it trained alone where it could have joined an ensemble.
            identity: what the run is (`richness.build.identity`: layers, roles, ℓ,
                predicted exponents), stored as JSON.

        Raises:
            ValueError: ``status`` is not final, ``run_id`` is unknown, or two rows share
                ``(step, layer, quantity)``.
        """
        if status not in FINISHED:
            raise ValueError(
                f"status={status!r} is not a final status; allowed: 'done', 'diverged', 'failed' "
                "(use mark_running for 'running')"
            )
        with self._transaction() as con:
            if con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise ValueError(
                    f"run_id={run_id!r} is not in {self.path}: call "
                    "store.mark_running(run_id, config) before store.finish"
                )
            con.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            try:
                con.executemany(
                    "INSERT INTO metrics (run_id, step, layer, quantity, value)"
                    " VALUES (?, ?, ?, ?, ?)",
                    ((run_id, *row) for row in _rows(metrics_rows)),
                )
            except sqlite3.IntegrityError as e:
                raise ValueError(
                    f"metrics_rows of run {run_id!r} repeat a (step, layer, quantity): {e}"
                ) from e
            con.execute(
                "UPDATE runs SET status = ?, finished = ?, seconds = ?, diverged_step = ?,"
                " error = ?, path = ?, path_reason = ?, identity = ? WHERE run_id = ?",
                (
                    status,
                    _now(),
                    float(seconds),
                    None if diverged_step is None else int(diverged_step),
                    error,
                    path,
                    path_reason,
                    None if identity is None else canonical_json(identity),
                    run_id,
                ),
            )

    # ---------------------------------------------------------------------------- reading

    def finished_ids(self) -> set[str]:
        """Returns the ids of runs whose status is ``done``, ``diverged`` or ``failed``."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE status IN ('done', 'diverged', 'failed')"
            ).fetchall()
        return {r[0] for r in rows}

    def pending(self, run_ids: Iterable[str]) -> list[str]:
        """Returns the run ids that still need running: every id not finished, in order.

        ``running`` counts as not finished: a row left ``running`` by a killed process is
        redone. Repeated ids are returned once.

        Args:
            run_ids: the ids a sweep wants finished.

        Returns:
            The unfinished ones, in first-seen order.
        """
        finished = self.finished_ids()
        return [r for r in dict.fromkeys(run_ids) if r not in finished]

    def status(self, run_id: str) -> Status | None:
        """Returns a run's status, or None when the store has no such run."""
        with self._connect() as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def config(self, run_id: str) -> dict[str, Any]:
        """Returns the config a run is keyed by.

        Raises:
            KeyError: the store has no such run.
        """
        with self._connect() as con:
            row = con.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run_id={run_id!r} is not in {self.path}")
        return json.loads(row[0])

    def runs(self, *, sweep: str | None = None) -> pd.DataFrame:
        """Returns one row per run, with its config fields flattened into columns.

        Columns: :data:`RUN_COLUMNS` (``config`` holds the JSON text; ``started`` and
        ``finished`` are UTC datetimes; ``identity`` a dict, or None for a run stored before
        identities were recorded), then one column per config leaf, nested keys joined
        by ``.`` (``width``, ``r``, ``gauge``, ``seed``, ``model.depth``, ``optimizer.lr``...).
        A config key that collides with a run column is prefixed ``config.``.

        Args:
            sweep: keep only this sweep's runs (None: all).

        Returns:
            A DataFrame ordered by start time, then run id.
        """
        query = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        params: tuple[Any, ...] = ()
        if sweep is not None:
            query += " WHERE sweep = ?"
            params = (sweep,)
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY started, run_id", params).fetchall()
        df = pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
        for column in ("started", "finished"):
            df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
        df["seconds"] = df["seconds"].astype("float64")
        df["diverged_step"] = df["diverged_step"].astype("Int64")
        df["attempts"] = df["attempts"].astype("int64")
        df["identity"] = [json.loads(t) if isinstance(t, str) else None for t in df["identity"]]
        flat = [flatten_config(json.loads(text)) for text in df["config"]]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        extra = {(f"config.{k}" if k in RUN_COLUMNS else k): [f.get(k) for f in flat] for k in keys}
        if extra:
            df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
        return df

    def metrics(
        self,
        *,
        quantity: str | Sequence[str] | None = None,
        run_ids: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Returns the tidy metrics table.

        Args:
            quantity: keep only these quantities (``"dh"`` or ``["dh", "f0"]``; None: all).
            run_ids: keep only these runs (None: all).

        Returns:
            Columns ``run_id`` (str), ``step`` (int64), ``layer`` (str, ``''`` at model level),
            ``quantity`` (str), ``value`` (float64, NaN where NULL); ordered by run, step,
            layer, quantity. Join with :meth:`runs` on ``run_id`` for the configs.
        """
        where: list[str] = []
        params: list[Any] = []
        if quantity is not None:
            names = [quantity] if isinstance(quantity, str) else list(quantity)
            where.append(f"quantity IN ({', '.join('?' * len(names))})")
            params += names
        if run_ids is not None:
            ids = list(run_ids)
            where.append(f"run_id IN ({', '.join('?' * len(ids))})")
            params += ids
        query = f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics"
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY run_id, step, layer, quantity", params).fetchall()
        df = pd.DataFrame.from_records(rows, columns=list(METRIC_COLUMNS))
        df["step"] = df["step"].astype("int64")
        df["value"] = pd.to_numeric(df["value"]).astype("float64")
        return df

    # ---------------------------------------------------------------------------- internals

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: no implicit transactions; writes use explicit BEGIN IMMEDIATE.
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front (waiting up to `timeout`), so a
        # transaction never fails half way for lack of a lock.
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                if con.in_transaction:  # SQLite rolls back by itself after some errors
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @staticmethod
    def _check_id(run_id: str, config: Mapping[str, Any]) -> None:
        expected = config_hash(config)
        if run_id != expected:
            raise ValueError(
                f"run_id={run_id!r} is not the hash of its config:\n"
                f"  run_id:              {run_id}\n"
                f"  config_hash(config): {expected}\n"
                "pass run_id=config_hash(config) with the full config"
            )


# -------------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "item"):  # 0-dim torch tensors and numpy scalars
        value = value.item()
    value = float(value)
    return None if math.isnan(value) else value


def _rows(
    metrics_rows: Iterable[MetricRow | Mapping[str, Any]] | pd.DataFrame,
) -> Iterator[tuple[int, str, str, float | None]]:
    if isinstance(metrics_rows, pd.DataFrame):
        metrics_rows = metrics_rows[["step", "layer", "quantity", "value"]].itertuples(
            index=False, name=None
        )
    for row in metrics_rows:
        if isinstance(row, Mapping):
            step, layer, quantity, value = (
                row["step"],
                row.get("layer", ""),
                row["quantity"],
                row["value"],
            )
        elif len(row) == 4:
            step, layer, quantity, value = row
        else:
            raise ValueError(
                f"metrics row {row!r} has {len(row)} fields; expected (step, layer, quantity, "
                "value) or a mapping with those keys"
            )
        if layer is None or (not isinstance(layer, str) and pd.isna(layer)):
            layer = ""  # model-level; a DataFrame turns None into NaN
        yield int(step), str(layer), str(quantity), _float(value)


def _plain(obj: Any, path: str) -> Any:
    """Returns obj with tuples as lists and numpy scalars as Python scalars; checks keys."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path} has key {k!r} of type {type(k).__name__}; config keys must be str"
                )
            out[k] = _plain(v, f"{path}.{k}")
        return out
    if isinstance(obj, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"{path}={obj} is not finite; JSON, and so a config, cannot hold it")
        return obj
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _plain(obj.item(), path)
    raise TypeError(
        f"{path}={obj!r} of type {type(obj).__name__} is not JSON-like; configs hold dicts, "
        "lists, str, int, float, bool and None"
    )


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config keys joined by '.': {"model": {"depth": 3}} → {"model.depth": 3}."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
