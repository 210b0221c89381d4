"""Sweeps end to end: resume after SIGKILL, divergence, failures, Ray = local."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from richness.sweep import Store, config_hash, expand, parse_spec, run_sweep
from richness.sweep.runner import WORKER_DIED

SMALL = {
    "name": "small",
    "model": {"kind": "mlp", "depth": 3},
    "data": {"kind": "digits", "n_train": 64, "n_probe": 32, "n_test": 32},
    "widths": [16, 32],
    "richness": [0.0, 0.5],
    "seeds": [0, 1],
    "optimizer": {"kind": "sgd", "lr": 0.05},
    "steps": 3,
}


def test_local_sweep_stores_every_run(tmp_path):
    spec = parse_spec(SMALL)
    counts = run_sweep(spec, tmp_path / "r.sqlite", workers=1, progress=False)
    assert counts == {
        "total": 8,
        "skipped": 0,
        "done": 8,
        "diverged": 0,
        "failed": 0,
        "ensemble": 8,
        "alone": 0,
    }
    runs = Store(tmp_path / "r.sqlite").runs()
    assert set(runs["path"]) == {"ensemble"}
    assert all(identity["depth"] == 3 for identity in runs["identity"])
    store = Store(tmp_path / "r.sqlite")
    runs = store.runs()
    assert set(runs.status) == {"done"}
    assert set(runs.width) == {16, 32}
    metrics = store.metrics()
    assert {"dh", "h_rms", "df", "f0", "loss", "max_ratio"} <= set(metrics.quantity)
    again = run_sweep(spec, tmp_path / "r.sqlite", workers=1, progress=False)
    assert again["skipped"] == 8 and again["done"] == 0


def test_diverging_run_is_stored_as_diverged_and_the_sweep_goes_on(tmp_path):
    spec = parse_spec(
        {
            **SMALL,
            "widths": [16],
            "seeds": [0],
            "presets": ["sp"],
            "richness": [0.25],
            "optimizer": {"kind": "sgd", "lr": 1e5},
            "loss_bound": 1e3,
        }
    )
    counts = run_sweep(spec, tmp_path / "d.sqlite", workers=1, progress=False)
    assert counts["diverged"] == 2
    runs = Store(tmp_path / "d.sqlite").runs()
    assert set(runs.status) == {"diverged"}
    assert (runs.diverged_step >= 1).all()


def test_failing_run_is_stored_with_its_traceback(tmp_path, monkeypatch):
    module = tmp_path / "badmodels.py"
    module.write_text(
        "import torch\n"
        "def make(width):\n"
        "    if width > 16:\n"
        "        raise RuntimeError('no model this wide')\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.Linear(width, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec(
        {
            **SMALL,
            "model": {"kind": "factory", "factory": "badmodels:make"},
            "seeds": [0],
            "richness": [0.5],
        }
    )
    counts = run_sweep(spec, tmp_path / "f.sqlite", workers=1, progress=False)
    assert counts["failed"] == 1 and counts["done"] == 1
    runs = Store(tmp_path / "f.sqlite").runs()
    failed = runs[runs.status == "failed"].iloc[0]
    assert "no model this wide" in failed.error


def _wait_for_done(db, at_least, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.exists():
            try:
                runs = Store(db).runs()
            except Exception:
                runs = None
            if runs is not None and (runs.status == "done").sum() >= at_least:
                return
        time.sleep(0.2)
    raise AssertionError("the sweep did not make progress")


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    spec_dict = {**SMALL, "widths": [16, 32, 64], "seeds": [0, 1, 2], "steps": 20}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict))
    db = tmp_path / "k.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "richness",
        "sweep",
        str(spec_path),
        "--db",
        str(db),
        "--workers",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_done(db, at_least=3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    store = Store(db)
    before = store.runs()
    done_before = set(before.run_id[before.status == "done"])
    total = len(expand(parse_spec(spec_dict)))
    assert 3 <= len(done_before) < total
    finished_at = dict(zip(before.run_id, before.finished, strict=True))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = store.runs()
    assert len(after) == total and set(after.status) == {"done"}
    for run_id in done_before:  # finished runs were not redone
        assert after.set_index("run_id").finished[run_id] == finished_at[run_id]
    metrics = store.metrics()
    assert not metrics.duplicated(["run_id", "step", "layer", "quantity"]).any()
    per_run = metrics.groupby("run_id").size()
    assert per_run.nunique() == 1  # every run has its complete set of rows
    expected_ids = {config_hash(c) for c in expand(parse_spec(spec_dict))}
    assert set(after.run_id) == expected_ids


def test_ray_backend_gives_the_same_rows_as_local(tmp_path):
    ray = pytest.importorskip("ray")
    spec = parse_spec({**SMALL, "widths": [16], "seeds": [0]})
    run_sweep(spec, tmp_path / "local.sqlite", workers=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        counts = run_sweep(spec, tmp_path / "ray.sqlite", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert counts["done"] == 2
    cols = ["run_id", "step", "layer", "quantity", "value"]
    local = Store(tmp_path / "local.sqlite").metrics()[cols].sort_values(cols[:4])
    remote = Store(tmp_path / "ray.sqlite").metrics()[cols].sort_values(cols[:4])
    assert local.reset_index(drop=True).equals(remote.reset_index(drop=True))


def test_a_run_that_kills_its_worker_is_failed_and_the_sweep_goes_on(tmp_path, monkeypatch):
    module = tmp_path / "killermodels.py"
    module.write_text(
        "import os, signal, torch\n"
        "def make(width):\n"
        "    if width > 16:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.Linear(width, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # spawned workers import the factory
    spec = parse_spec(
        {
            **SMALL,
            "model": {"kind": "factory", "factory": "killermodels:make"},
            "seeds": [0, 1],
            "richness": [0.5],
        }
    )
    counts = run_sweep(spec, tmp_path / "k.sqlite", workers=2, progress=False)
    assert counts["done"] == 2 and counts["failed"] == 2
    runs = Store(tmp_path / "k.sqlite").runs()
    assert set(runs[runs.width == 32].error) == {WORKER_DIED}
