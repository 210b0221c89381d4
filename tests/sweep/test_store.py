"""Tests of richness.sweep.store: hashing, the run lifecycle, crash safety, concurrent writers."""

from __future__ import annotations

import hashlib
import json
import pickle
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from richness.sweep import Store, config_hash
from richness.sweep.store import METRIC_COLUMNS, RUN_COLUMNS, canonical_json, metric_rows

CONFIG = {
    "width": 1024,
    "r": 0.25,
    "gauge": "stp",
    "seed": 0,
    "model": {"kind": "mlp", "depth": 3},
    "widths": [1, 2],
}


def _config(width: int = 64, r: float = 0.0, seed: int = 0, **extra) -> dict:
    return {
        "width": width,
        "r": r,
        "gauge": "stp",
        "seed": seed,
        "model": {"kind": "mlp", "depth": 3},
        "optimizer": {"kind": "sgd", "lr": 0.05},
        **extra,
    }


def _rows(n_steps: int = 3) -> list[tuple[int, str, str, float]]:
    return [
        row
        for step in range(n_steps)
        for row in [(step, "", "f0", 1.0 + step), (step, "h.1", "dh", 0.1 * step)]
    ]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "runs.sqlite")


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------


def test_config_hash_is_canonical_and_stable() -> None:
    text = canonical_json(CONFIG)
    assert text == (
        '{"gauge":"stp","model":{"depth":3,"kind":"mlp"},"r":0.25,"seed":0,"width":1024,'
        '"widths":[1,2]}'
    )
    # A fixed value: changing the canonical form would orphan every existing store.
    assert config_hash(CONFIG) == "27cbcdd28575f1b2"
    assert config_hash(CONFIG) == hashlib.sha256(text.encode()).hexdigest()[:16]
    reordered = {
        "widths": (1, 2),
        "model": {"depth": 3, "kind": "mlp"},
        "seed": np.int64(0),
        "gauge": "stp",
        "r": np.float64(0.25),
        "width": 1024,
    }
    assert config_hash(reordered) == config_hash(CONFIG)
    assert config_hash({**CONFIG, "seed": 1}) != config_hash(CONFIG)
    assert config_hash({**CONFIG, "model": {"kind": "mlp", "depth": 4}}) != config_hash(CONFIG)
    assert config_hash({"gamma": 1}) != config_hash({"gamma": 1.0})  # documented: types count
    assert config_hash({"name": "é"}) == config_hash({"name": "\u00e9"})


def test_config_hash_rejects_non_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.r=nan is not finite"):
        config_hash({"r": float("nan")})
    with pytest.raises(TypeError, match=r"config\.model has key 3"):
        config_hash({"model": {3: "x"}})
    with pytest.raises(TypeError, match=r"config\.widths=\{1\}.*not JSON-like"):
        config_hash({"widths": {1}})
    with pytest.raises(TypeError, match=r"config\.path=.*PosixPath|config\.path=.*WindowsPath"):
        config_hash({"path": tmp_path})


def test_metric_rows_splits_keys() -> None:
    rows = metric_rows(
        3,
        {
            "dh/blocks.0": torch.tensor(0.5),
            "f0": np.float32(2.0),
            "align/a/b": 1,
            "lin_gap": float("nan"),
        },
    )
    assert rows == [
        (3, "blocks.0", "dh", 0.5),
        (3, "", "f0", 2.0),
        (3, "a/b", "align", 1.0),
        (3, "", "lin_gap", None),
    ]


# --------------------------------------------------------------------------------------------
# lifecycle
# --------------------------------------------------------------------------------------------


def test_lifecycle_and_dataframes(store: Store) -> None:
    configs = [_config(width=w, r=r) for w in (64, 128) for r in (0.0, 0.5)]
    ids = store.add_pending(configs, sweep="demo")
    assert ids == [config_hash(c) for c in configs]
    assert store.pending(ids) == ids and store.finished_ids() == set()
    assert store.status(ids[0]) == "pending" and store.status("nope") is None

    assert store.mark_running(ids[0], configs[0], sweep="demo", worker="w0")
    store.finish(ids[0], "done", _rows(), seconds=1.5)
    assert store.mark_running(ids[1], configs[1], sweep="demo")
    store.finish(ids[1], "diverged", [(0, "", "loss", float("inf"))], 0.5, diverged_step=7)
    assert store.mark_running(ids[2], configs[2])
    store.finish(ids[2], "failed", [], 0.1, error="Traceback ...\nRuntimeError: boom")
    assert store.mark_running(ids[3], configs[3])  # left running

    assert store.finished_ids() == set(ids[:3])
    assert store.pending(ids) == [ids[3]]
    assert store.pending([ids[3], ids[0], ids[3], "new"]) == [ids[3], "new"]
    assert not store.mark_running(ids[0], configs[0])  # finished runs are never redone
    assert store.status(ids[0]) == "done"
    assert store.config(ids[1]) == configs[1]

    runs = store.runs()
    assert list(runs.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert len(runs) == 4 and set(runs["run_id"]) == set(ids)
    by_id = runs.set_index("run_id")
    assert by_id.loc[ids[0], "status"] == "done" and by_id.loc[ids[0], "seconds"] == 1.5
    assert by_id.loc[ids[0], "worker"] == "w0" and by_id.loc[ids[0], "sweep"] == "demo"
    assert by_id.loc[ids[1], "diverged_step"] == 7
    assert by_id.loc[ids[2], "error"].endswith("boom")
    assert by_id.loc[ids[3], "status"] == "running" and pd.isna(by_id.loc[ids[3], "finished"])
    assert by_id.loc[ids[2], "sweep"] == "demo"  # kept from add_pending
    for column in ("width", "r", "gauge", "seed", "model.kind", "model.depth", "optimizer.lr"):
        assert column in runs.columns
    assert by_id.loc[ids[1], "width"] == 64 and by_id.loc[ids[1], "r"] == 0.5
    assert json.loads(by_id.loc[ids[0], "config"]) == configs[0]
    assert isinstance(runs["started"].dtype, pd.DatetimeTZDtype)
    assert by_id.loc[ids[0], "finished"] >= by_id.loc[ids[0], "started"]
    assert len(store.runs(sweep="demo")) == 4 and len(store.runs(sweep="other")) == 0

    metrics = store.metrics()
    assert list(metrics.columns) == list(METRIC_COLUMNS)
    assert metrics["step"].dtype == np.int64 and metrics["value"].dtype == np.float64
    assert len(metrics) == len(_rows()) + 1
    done = metrics[metrics["run_id"] == ids[0]]
    assert set(done.loc[done["quantity"] == "f0", "layer"]) == {""}
    assert done.loc[(done["quantity"] == "dh") & (done["step"] == 2), "value"].item() == 0.2
    assert metrics.loc[metrics["run_id"] == ids[1], "value"].item() == float("inf")
    assert set(store.metrics(quantity="dh")["quantity"]) == {"dh"}
    assert len(store.metrics(quantity=["dh", "f0"], run_ids=[ids[0]])) == len(_rows())
    assert store.metrics(run_ids=[]).empty


def test_empty_store_dataframes(store: Store) -> None:
    runs, metrics = store.runs(), store.metrics()
    assert runs.empty and list(runs.columns) == list(RUN_COLUMNS)
    assert metrics.empty and list(metrics.columns) == list(METRIC_COLUMNS)


def test_finish_accepts_mappings_dataframes_and_nan(store: Store) -> None:
    config = _config()
    run_id = config_hash(config)
    store.mark_running(run_id, config)
    frame = pd.DataFrame(
        {
            "step": [0, 1],
            "layer": ["h.0", None],
            "quantity": ["dh", "f0"],
            "value": [np.float32(0.5), np.nan],
        }
    )
    store.finish(run_id, "done", frame, seconds=1.0)
    got = store.metrics()
    assert got["layer"].tolist() == ["h.0", ""] and got["value"].iloc[0] == 0.5
    assert np.isnan(got["value"].iloc[1])
    store.finish(run_id, "done", [{"step": 4, "quantity": "loss", "value": torch.tensor(2.0)}], 1.0)
    assert store.metrics()[["step", "layer", "quantity", "value"]].values.tolist() == [
        [4, "", "loss", 2.0]
    ]  # finishing again replaces the metrics, never mixes them


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, rid, c: s.finish(rid, "running", [], 1.0), ValueError, "status='running'"),
        (lambda s, rid, c: s.finish("0" * 16, "done", [], 1.0), ValueError, "run_id='0{16}'"),
        (lambda s, rid, c: s.mark_running("abc", c), ValueError, "run_id='abc' is not the hash"),
        (
            lambda s, rid, c: s.finish(rid, "done", [(0, "", "f0", 1.0)] * 2, 1.0),
            ValueError,
            "repeat a",
        ),
        (
            lambda s, rid, c: s.finish(rid, "done", [(0, "f0", 1.0)], 1.0),
            ValueError,
            "has 3 fields",
        ),
    ],
)
def test_bad_calls(store: Store, call, error, match) -> None:
    config = _config()
    run_id = config_hash(config)
    store.mark_running(run_id, config)
    with pytest.raises(error, match=match):
        call(store, run_id, config)
    assert store.status(run_id) == "running" and store.metrics().empty


def test_memory_path_refused() -> None:
    with pytest.raises(ValueError, match="path=':memory:'"):
        Store(":memory:")


# --------------------------------------------------------------------------------------------
# crash safety
# --------------------------------------------------------------------------------------------


def test_failure_inside_finish_leaves_a_run_to_redo(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    config = _config()
    run_id = config_hash(config)
    Store(path).mark_running(run_id, config)

    def exploding_rows():
        yield from _rows()
        raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="half way"):
        Store(path).finish(run_id, "done", exploding_rows(), seconds=1.0)
    reopened = Store(path)  # as a restarted sweep would
    assert reopened.status(run_id) == "running" and reopened.metrics().empty
    assert reopened.pending([run_id]) == [run_id]
    assert reopened.mark_running(run_id, config)
    reopened.finish(run_id, "done", _rows(), seconds=1.0)
    assert reopened.pending([run_id]) == [] and len(reopened.metrics()) == len(_rows())
    assert reopened.runs()["attempts"].item() == 2


def test_stale_metrics_of_an_unfinished_run_are_cleared(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    store = Store(path)
    config = _config()
    run_id = config_hash(config)
    store.mark_running(run_id, config)
    with sqlite3.connect(path) as con:  # rows from some older, non-atomic writer
        con.execute("INSERT INTO metrics VALUES (?, 99, '', 'stale', 1.0)", (run_id,))
    con.close()
    assert store.mark_running(run_id, config)
    assert store.metrics().empty
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO metrics VALUES (?, 99, '', 'stale', 1.0)", (run_id,))
    con.close()
    store.finish(run_id, "done", _rows(), seconds=1.0)
    assert "stale" not in set(store.metrics()["quantity"])


_KILLED_WRITER = """
import os, signal, sys
from richness.sweep.store import Store, config_hash

store = Store(sys.argv[1])
config = {"width": 64, "seed": 0}
run_id = config_hash(config)
store.mark_running(run_id, config)

def rows():
    for step in range(1000):
        if step == 500:  # SIGKILL in the middle of finish's transaction
            os.kill(os.getpid(), signal.SIGKILL)
        yield (step, "", "loss", float(step))

store.finish(run_id, "done", rows(), seconds=1.0)
"""


def test_sigkill_during_finish_leaves_no_partial_metrics(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = Store(path)
    run_id = config_hash({"width": 64, "seed": 0})
    assert store.status(run_id) == "running"
    assert store.metrics().empty
    assert store.pending([run_id]) == [run_id]


# --------------------------------------------------------------------------------------------
# concurrent writers
# --------------------------------------------------------------------------------------------

_WRITER = """
import sys
from richness.sweep.store import Store, config_hash

path, worker, n_runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(path)  # both processes create the schema at once
for i in range(n_runs):
    config = {"worker": worker, "i": i}
    run_id = config_hash(config)
    assert store.mark_running(run_id, config, worker=worker)
    rows = [(step, f"h.{layer}", "dh", float(step + layer)) for step in range(5)
            for layer in range(5)]
    store.finish(run_id, "done", rows, seconds=0.0)
    store.runs()  # readers interleave with the other process's writes
"""


def test_two_processes_write_without_losing_rows(tmp_path: Path) -> None:
    path, n_runs = tmp_path / "shared" / "runs.sqlite", 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, str(n_runs)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = Store(path)
    runs = store.runs()
    assert len(runs) == 2 * n_runs and set(runs["status"]) == {"done"}
    # The config's own "worker" key collides with the run column, so it reads config.worker.
    assert runs.groupby("config.worker").size().tolist() == [n_runs, n_runs]
    assert (runs["worker"] == runs["config.worker"]).all()
    metrics = store.metrics()
    assert len(metrics) == 2 * n_runs * 25
    assert metrics.groupby("run_id").size().eq(25).all()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_store_pickles_for_worker_processes(store: Store) -> None:
    config = _config()
    run_id = config_hash(config)
    store.mark_running(run_id, config)
    clone = pickle.loads(pickle.dumps(store))  # what a process pool or Ray task receives
    clone.finish(run_id, "done", _rows(), seconds=1.0)
    assert store.status(run_id) == "done" and repr(clone) == repr(store)


def test_a_store_written_before_identities_gains_them_on_open(tmp_path):
    """A version-1 file (no path/identity columns, dict configs with derived keys) opens, and
    its finished runs get the identity the loop would have recorded."""
    import sqlite3

    from richness.train import run

    config = {
        "model": {"kind": "mlp", "depth": 3},
        "data": {"kind": "digits", "n_train": 32, "n_test": 8, "n_probe": 8, "seed": 0},
        "width": 32,
        "r": 0.25,
        "preset": None,
        "gauge": "stp",
        "gamma": 1.0,
        "base_width": 16,
        "optimizer": "sgd",
        "depth": 3,
        "layers": ["layers.0", "layers.1", "layers.2"],
        "seed": 0,
        "center": True,
        "train": {
            "kind": "sgd",
            "lr": 0.1,
            "momentum": 0.0,
            "weight_decay": 0.0,
            "steps": 1,
            "batch_size": None,
            "loss_bound": 1e6,
        },
        "measure": {"steps": [1], "metrics": ["default"]},
        "dtype": "float32",
        "device": "cpu",
    }
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, sweep TEXT,"
        " config TEXT NOT NULL, started TEXT, finished TEXT, seconds REAL, diverged_step INTEGER,"
        " error TEXT, host TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE metrics (run_id TEXT NOT NULL, step INTEGER NOT NULL, layer TEXT NOT NULL"
        " DEFAULT '', quantity TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, step, layer,"
        " quantity)) WITHOUT ROWID; PRAGMA user_version = 1;"
    )
    con.execute(
        "INSERT INTO runs (run_id, status, config, attempts) VALUES (?, 'done', ?, 1)",
        (config_hash(config), canonical_json(config)),
    )
    con.commit()
    con.close()
    runs = Store(path).runs()
    assert runs.loc[0, "identity"] == run(config).identity
    assert runs.loc[0, "path"] is None


def test_open_existing_refuses_what_is_not_a_store_naming_the_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    cases = {
        notes: "is not an SQLite file",
        tmp_path / "missing.sqlite": "does not exist",
        tmp_path: "is a directory",
        other: "without a runs table",
    }
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=reason) as err:
            Store.open_existing(path)
        assert str(path) in str(err.value)
    assert not (tmp_path / "missing.sqlite").exists()
    assert notes.read_text() == "not a database\n" * 50  # opened read-only
    Store(tmp_path / "real.sqlite")
    assert Store.open_existing(tmp_path / "real.sqlite").runs().empty
