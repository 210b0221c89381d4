"""MeterCallback in a real `transformers.Trainer` run: a tiny GPT-2 from a config, random tokens.

No download, no saving, CPU, `report_to=[]`: the richness keys must reach
`trainer.state.log_history` and every callback's `on_log` (which is how TensorBoard, W&B and the
other integrations receive them) at the expected steps, finite. Skipped without `transformers`
and `accelerate` (the optional extra `hf`).
"""

import importlib.util
import math

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from richness.callbacks import MeterCallback  # noqa: E402

VOCAB, SEQ, WIDTH = 32, 8, 16


def tiny_gpt2(seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_embd=WIDTH,
        n_layer=2,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=SEQ,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )  # dropout left at GPT-2's 0.1: the callback measures in eval mode
    return transformers.GPT2LMHeadModel(config)


class TokenData(torch.utils.data.Dataset):
    def __init__(self, n=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Recorder(transformers.TrainerCallback):
    """Stands in for a reporting integration: keeps every `logs` dict its `on_log` gets."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append((state.global_step, dict(logs)))


def make_trainer(tmp_path, max_steps=6, logging_steps=2, recorder=None, report_to=()):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=max_steps,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to=list(report_to),
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    callbacks = [recorder] if recorder is not None else None
    return transformers.Trainer(
        model=tiny_gpt2(), args=args, train_dataset=TokenData(), callbacks=callbacks
    )


def richness_entries(history):
    return {e["step"]: e for e in history if any(k.startswith("richness/") for k in e)}


def test_metrics_reach_log_history_and_loggers(tmp_path):
    recorder = Recorder()  # added before the MeterCallback, as integrations are
    trainer = make_trainer(tmp_path, recorder=recorder)
    probe = TokenData(n=4, seed=1).ids
    trainer.add_callback(MeterCallback(trainer, probe, every=3, at_start=True))
    trainer.train()

    entries = richness_entries(trainer.state.log_history)
    assert sorted(entries) == [0, 3, 6]
    keys = {k for k in entries[3] if k.startswith("richness/")}
    assert {"richness/df", "richness/f0", "richness/dh/lm_head"} <= keys
    assert "richness/dh/transformer.h.0.mlp.c_fc" in keys  # layers named as in the model
    assert not any("/model." in k for k in keys)
    for step in (3, 6):
        assert all(math.isfinite(entries[step][k]) for k in keys)
        assert entries[step]["richness/df"] > 0
    assert entries[0]["richness/df"] == 0.0  # eval mode: no dropout noise at θ0
    assert entries[0]["richness/dh/lm_head"] == 0.0

    # the Trainer's own loss logs at steps 2, 4, 6 are kept (6 coincides with a measurement)
    loss_steps = [e["step"] for e in trainer.state.log_history if "loss" in e]
    assert loss_steps == [2, 4, 6]
    # every on_log listener, integrations included, saw the same dicts
    seen = {step: logs for step, logs in recorder.seen if "richness/df" in logs}
    assert sorted(seen) == [0, 3, 6]
    assert seen[3]["richness/df"] == entries[3]["richness/df"]


def test_dict_probe_and_weight_metrics(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2, logging_steps=10)
    ids = TokenData(n=4, seed=1).ids
    probe = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    callback = MeterCallback(trainer, probe, every=1, metrics=["default", "weights"])
    trainer.add_callback(callback)
    trainer.train()

    entries = richness_entries(trainer.state.log_history)
    assert sorted(entries) == [1, 2]
    # the gradient of the step is read before the Trainer zeroes it
    assert entries[2]["richness/grad/transformer.h.1.mlp.c_proj"] > 0
    assert entries[2]["richness/dW_op/lm_head"] > 0
    assert callback.meter is not None


def test_bad_input(tmp_path):
    trainer = make_trainer(tmp_path)
    ids = TokenData(n=4).ids
    with pytest.raises(TypeError, match="trainer"):
        MeterCallback(object(), ids, every=1)
    for every in (0, 1.5, True):
        with pytest.raises(ValueError, match="every"):
            MeterCallback(trainer, ids, every=every)
    with pytest.raises(ValueError, match="metric"):
        MeterCallback(trainer, ids, every=1, metrics="nope")
    with pytest.raises(ValueError, match="input_key"):
        MeterCallback(trainer, {"ids": ids}, every=1)
    with pytest.raises(TypeError, match="probe_inputs"):
        MeterCallback(trainer, ids.tolist(), every=1)
    with pytest.raises(TypeError, match="attention_mask"):
        MeterCallback(trainer, {"input_ids": ids, "attention_mask": [1]}, every=1)


def test_output_without_logits_is_named(tmp_path):
    class Tupled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x, labels=None):
            return (self.lin(x),)

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, save_strategy="no", report_to=[], use_cpu=True
    )
    trainer = transformers.Trainer(model=Tupled(), args=args)
    callback = MeterCallback(trainer, torch.randn(3, 4), every=1)
    with pytest.raises(TypeError, match="tuple"):
        callback.on_train_begin(args, trainer.state, trainer.control)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None,
    reason="tensorboard is not installed: the Trainer's TensorBoard integration cannot run",
)
def test_metrics_reach_the_tensorboard_integration(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tmp_path, max_steps=4, report_to=["tensorboard"])
    trainer.add_callback(MeterCallback(trainer, TokenData(n=4, seed=1).ids, every=2))
    trainer.train()
    (run,) = [p.parent for p in tmp_path.rglob("events.out.tfevents.*")]
    events = EventAccumulator(str(run))
    events.Reload()
    # the integration files every training log under "train/"
    assert [e.step for e in events.Scalars("train/richness/df")] == [2, 4]
