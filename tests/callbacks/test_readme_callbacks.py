"""The README's two examples of "Log the meter from a Trainer or your own loop" run as written.

The Trainer block names a user's `model`, `data` and `probe_ids`: this test supplies a tiny GPT-2
built from a config and random token ids (no download), as tests/callbacks/test_trainer.py does.
"""

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

HEADING = "### Log the meter from a Trainer or your own loop"


def blocks():
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    trainer_block, loop_block = re.findall(r"```python\n(.*?)```", section, re.S)
    return trainer_block, loop_block


def test_custom_loop_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    exec(compile(blocks()[1], "README.md", "exec"), {})
    frame = pd.read_csv(tmp_path / "runs" / "mlp" / "metrics.csv")
    wide = frame.pivot(index="step", columns="key", values="value")
    assert list(wide.index) == [10, 20, 30]
    assert {"loss", "df", "dh/layers.1"} <= set(wide.columns)
    assert (wide["df"] > 0).all()


# The README's TrainingArguments are a GPU user's (pin_memory on); on a CPU torch warns once.
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")
def test_trainer_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from test_trainer import TokenData, tiny_gpt2

    monkeypatch.chdir(tmp_path)
    namespace = {"model": tiny_gpt2(), "data": TokenData(), "probe_ids": TokenData(4, 1).ids}
    exec(compile(blocks()[0], "README.md", "exec"), namespace)
    history = namespace["trainer"].state.log_history
    steps = [e["step"] for e in history if "richness/df" in e]
    assert steps == [10, 20]
