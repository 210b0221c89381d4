"""MetricLogger: tidy CSV read back with pandas, keys appearing later, resuming, TensorBoard."""

import doctest
import importlib.util
import math
import subprocess
import sys

import pandas as pd
import pytest
import torch

import richness.callbacks._logger as logger_module
from richness.callbacks import MetricLogger
from richness.callbacks._logger import CSV_HEADER

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
NO_TENSORBOARD = (
    "tensorboard is not installed (pip install tensorboard, extra richness[tensorboard])"
)


def test_csv_round_trip_with_late_keys(tmp_path):
    with MetricLogger(tmp_path / "run", tensorboard=False) as log:
        assert not log.tensorboard
        log.log(0, {"df": 0.0, "dh/layers.1": 0.0})
        log.log(10, {"df": 0.5, "dh/layers.1": 1.25, "dW_op/layers.1": 0.125})  # a new key
        log.log(20, {"df": torch.tensor(0.75), "dh/layers.1": float("nan"), "x,y": math.inf})
    frame = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert tuple(frame.columns) == CSV_HEADER
    wide = frame.pivot(index="step", columns="key", values="value")
    assert list(wide.index) == [0, 10, 20]
    assert wide.loc[10, "dh/layers.1"] == 1.25
    assert wide.loc[20, "df"] == 0.75
    assert math.isnan(wide.loc[0, "dW_op/layers.1"])  # absent before it appeared
    assert wide.loc[10, "dW_op/layers.1"] == 0.125
    assert math.isnan(wide.loc[20, "dh/layers.1"])
    assert wide.loc[20, "x,y"] == math.inf  # a comma in a key is quoted


def test_resume_appends_and_foreign_file_refused(tmp_path):
    with MetricLogger(tmp_path, tensorboard=False) as log:
        log.log(0, {"df": 1.0})
    with MetricLogger(tmp_path, tensorboard=False) as log:
        log.log(1, {"df": 2.0})
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert frame["step"].tolist() == [0, 1]
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="metrics.csv"):
        MetricLogger(other, tensorboard=False)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="tensorboard"):
        MetricLogger(tmp_path, tensorboard="yes")
    log = MetricLogger(tmp_path, tensorboard=False)
    for step in (-1, 1.0, True):
        with pytest.raises(ValueError, match="step"):
            log.log(step, {"df": 1.0})
    with pytest.raises(TypeError, match="df"):
        log.log(0, {"df": "high"})
    with pytest.raises(TypeError, match="df"):
        log.log(0, {"df": torch.ones(2)})
    log.close()
    log.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        log.log(0, {"df": 1.0})
    assert pd.read_csv(tmp_path / "metrics.csv").empty  # nothing half-written


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed: the error cannot occur")
def test_tensorboard_requested_but_missing_names_the_package(tmp_path):
    with pytest.raises(ImportError, match="pip install tensorboard"):
        MetricLogger(tmp_path, tensorboard=True)
    with MetricLogger(tmp_path) as log:
        assert not log.tensorboard  # "auto": CSV alone


@pytest.mark.skipif(not HAS_TENSORBOARD, reason=NO_TENSORBOARD)
def test_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricLogger(tmp_path) as log:  # "auto" picks it up
        assert log.tensorboard
        log.log(0, {"df": 0.0, "dh/layers.1": 0.0})
        log.log(5, {"df": 0.5, "dh/layers.1": 2.0})
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"df", "dh/layers.1"}
    assert [(e.step, e.value) for e in events.Scalars("dh/layers.1")] == [(0, 0.0), (5, 2.0)]


def test_logger_needs_neither_transformers_nor_tensorboard():
    code = (
        "import sys, richness as rn; rn.callbacks.MetricLogger; "
        "print(sorted(m for m in ('transformers', 'tensorboard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_example():
    assert doctest.testmod(logger_module).failed == 0
