"""A killed sweep driver leaves no worker behind, and the resumed sweep runs each run once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from richness.sweep import Store, config_hash, expand, parse_spec

SPEC = {
    "name": "orphans",
    "model": {"kind": "mlp", "depth": 3},
    "data": {"kind": "digits", "n_train": 64, "n_probe": 32, "n_test": 32},
    "widths": [16, 32, 64, 128],
    "richness": [0.0, 0.5],
    "seeds": [0, 1],
    "optimizer": {"kind": "sgd", "lr": 0.05},
    "steps": 40,
}


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (/proc/PID/stat field 3 is the state)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _children(parent: int) -> list[int]:
    """Pids whose parent is `parent` (/proc/PID/stat field 4), alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_kill_9_of_the_driver_leaves_no_worker_and_resume_runs_each_run_once(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    db = tmp_path / "o.sqlite"
    cmd = [sys.executable, "-m", "richness", "sweep", str(spec_path), "--db", str(db)]
    cmd += ["--workers", "2", "--no-ensemble", "--quiet"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    driver = subprocess.Popen(cmd, start_new_session=True, **quiet)
    workers: list[int] = []
    try:

        def two_workers_and_a_finished_run() -> bool:
            workers[:] = [
                pid
                for pid in _children(driver.pid)
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            if len(workers) < 2 or not db.exists():
                return False
            return bool((Store(db).runs().status == "done").any())

        _wait(two_workers_and_a_finished_run, 120, "two workers and one finished run")
        descendants = _children(driver.pid)  # the workers and multiprocessing's resource tracker
        driver.kill()  # SIGKILL of the driver alone: its workers get no signal from us
        driver.wait()
        _wait(lambda: not any(map(_alive, descendants)), 5, f"workers {descendants} to exit")
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # cleanup if the test failed
        except ProcessLookupError:
            pass
    total = len(expand(parse_spec(SPEC)))
    assert len(Store(db).runs()) == total
    assert not (Store(db).runs().status == "done").all()  # killed half way
    subprocess.run(cmd, check=True, **quiet)
    runs = Store(db).runs()
    assert sorted(runs.run_id) == sorted(config_hash(c) for c in expand(parse_spec(SPEC)))
    assert set(runs.status) == {"done"}
    metrics = Store(db).metrics()
    assert not metrics.duplicated(["run_id", "step", "layer", "quantity"]).any()
    assert metrics.groupby("run_id").size().nunique() == 1  # every run has all its rows


def test_poll_parent_exits_an_orphan():
    """The portable fallback: a grandchild watching its parent exits when the parent is killed."""
    grandchild = (
        "import os, time\n"
        "from richness.sweep.runner import _poll_parent\n"
        "_poll_parent(os.getppid(), interval=0.05)\n"
        "print('watching', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        pid = int(parent.stdout.readline())
        assert parent.stdout.readline() == b"watching\n"  # the grandchild shares the pipe
        assert _alive(pid)
        parent.kill()
        parent.wait()
        _wait(lambda: not _alive(pid), 5, f"orphan {pid} to exit")
    finally:
        parent.stdout.close()
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
