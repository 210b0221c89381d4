"""`MeterCallback`: the Meter inside a Hugging Face `transformers.Trainer`, logged by its loggers.

    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.add_callback(MeterCallback(trainer, probe_ids, every=50))
    trainer.train()            # "richness/dh/<layer>", "richness/df", ... every 50 steps

How the numbers reach the Trainer's loggers: a callback's `on_log` runs after the reporting
integrations (TensorBoard, W&B, MLflow, ...; the Trainer puts them before user callbacks) and
after the entry of `state.log_history` has been copied, so adding keys to its `logs` reaches
neither. The callback therefore holds the trainer and calls `trainer.log(metrics)`, as TRL's
callbacks do: one entry `{"richness/...": ..., "epoch": ..., "step": k}` in
`trainer.state.log_history`, and the same dict through every integration's `on_log`.

When it measures: the Meter is built at `on_train_begin` (θ0 = the weights when training
starts, after the Trainer has placed and wrapped the model; a resumed run's θ0 is its
checkpoint). Step k's numbers are measured at `on_optimizer_step` of step k (after
`optimizer.step()`, before the Trainer zeroes the gradients, so `grad/ℓ` is the gradient of
step k as in a custom loop) and logged at `on_step_end`, when `state.global_step` = k. The
model is put in eval mode for the probe forward (dropout off: Δh measures the weights' change,
not a dropout mask) and back in its mode after.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from richness.measure.meter import Meter, expand_metrics

__all__ = ["PREFIX", "MeterCallback"]

PREFIX = "richness/"


class _ProbeForward(nn.Module):
    """A model as a function of one probe tensor to one output tensor per example, for the Meter.

    forward(x (N, ...)) → (N, O): `model(x)` (no `input_key`) or
    `model(**{input_key: x}, **fixed)`, its output's `logits` (N, ..., V) when it has them
    (Hugging Face models), flattened to one vector per example. `use_cache=False` is passed
    when the model's forward takes it (no key-value cache is built for a probe forward).
    `fixed` tensors (an attention mask) are cut to the first N rows, so that the Meter's
    sub-batches (its NTK on the first `ntk_probes` probes) keep their rows.

    Args:
      model: the module measured (its layers are `_ProbeForward.model.<name>`).
      input_key: the keyword of the measured input, or None to pass it positionally.
      fixed: other keyword inputs (N, ...), the same at every measurement.
    """

    def __init__(
        self,
        model: nn.Module,
        input_key: str | None = None,
        fixed: Mapping[str, torch.Tensor] | None = None,
    ):
        super().__init__()
        self.model = model
        self.input_key = input_key
        self.fixed = dict(fixed or {})
        self._no_cache = _takes_use_cache(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kwargs = {k: v[: x.shape[0]] for k, v in self.fixed.items()}
        if self._no_cache:
            kwargs["use_cache"] = False
        out = (
            self.model(x, **kwargs)
            if self.input_key is None
            else self.model(**{self.input_key: x}, **kwargs)
        )
        if isinstance(out, Mapping) and "logits" in out:  # a ModelOutput or a dict
            out = out["logits"]
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"the model returned a {type(out).__name__}; the Meter measures a tensor "
                "output or one with 'logits' (a Hugging Face ModelOutput)"
            )
        return out.flatten(1)  # (N, O)


def _takes_use_cache(model: nn.Module) -> bool:
    """Whether `model.forward` has a `use_cache` parameter (HF language models)."""
    return "use_cache" in inspect.signature(model.forward).parameters


@contextmanager
def _eval_mode(model: nn.Module):
    """The model in eval mode inside the block, in its previous mode after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


class MeterCallback(TrainerCallback):
    """A `TrainerCallback` that measures the model with a `Meter` every `every` steps.

    Each measurement is logged with `trainer.log` (module docstring): keys are the Meter's
    with the prefix "richness/" and the layer named as in the Trainer's model, e.g.
    "richness/dh/transformer.h.0.mlp.c_fc", "richness/df". They appear in
    `trainer.state.log_history` at steps every, 2·every, … and go to every integration in
    `args.report_to` (TensorBoard and W&B file them, like the loss, under "train/") and to the
    progress printer.

    Args:
      trainer: the `transformers.Trainer` (or a subclass, e.g. TRL's) this callback is added
        to with `trainer.add_callback`; its `log` is how the numbers reach its loggers.
      probe_inputs: the probe batch: an (N, ...) tensor passed as `model(x)` (token ids for a
        Hugging Face model, whose first argument is `input_ids`), or a dict of (N, ...)
        tensors passed as keywords (a tokenizer's output): `probe_inputs[input_key]` is the
        measured input, the others (attention_mask, ...) are passed unchanged. Moved to the
        model's device at train begin.
      every: measure at the steps that are multiples of `every`, an int ≥ 1. Cost per
        measurement: the Meter's (one probe forward for "default"; see `richness.measure.meter`).
      metrics: the Meter's metrics, names or groups ("default", "weights", "all").
      at_start: also measure at the step training starts (Δ = 0 there; h_rms and f0 at θ0).
      input_key: the measured input's key when `probe_inputs` is a dict.

    Raises:
      TypeError: `trainer` is not a `transformers.Trainer`; `probe_inputs` is not a tensor or
        a dict of tensors.
      ValueError: `every` is not an int ≥ 1; an unknown metric; `input_key` not in the dict.

    Layers are those the Meter measures: modules with a weight layout (Linear, Conv,
    Embedding, Hugging Face's Conv1D; `richness.measure.meter.measured_layers`). "grad/ℓ" is
    the gradient of the measured step (read before the Trainer zeroes it). Under DDP every
    process measures its (identical) replica and only the main process's integrations write.
    """

    def __init__(
        self,
        trainer: Trainer,
        probe_inputs: torch.Tensor | Mapping[str, torch.Tensor],
        *,
        every: int,
        metrics: str | Sequence[str] = "default",
        at_start: bool = False,
        input_key: str = "input_ids",
    ):
        if not isinstance(trainer, Trainer):
            raise TypeError(
                f"trainer is a {type(trainer).__name__}, not a transformers.Trainer: "
                "MeterCallback logs through trainer.log"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be an int >= 1 (steps between measurements)")
        if isinstance(probe_inputs, Mapping):
            if input_key not in probe_inputs:
                raise ValueError(
                    f"input_key={input_key!r} is not a key of probe_inputs "
                    f"{sorted(probe_inputs)}: pass input_key=<the measured input's key>"
                )
            bad = [k for k, v in probe_inputs.items() if not isinstance(v, torch.Tensor)]
        else:
            bad = [] if isinstance(probe_inputs, torch.Tensor) else ["probe_inputs"]
        if bad:
            raise TypeError(
                f"probe_inputs must be a tensor or a dict of tensors; not tensors: {bad}"
            )
        self.trainer = trainer
        self.probe_inputs = probe_inputs
        self.every = every
        self.metrics = expand_metrics(metrics)
        self.at_start = at_start
        self.input_key = input_key
        self.meter: Meter | None = None
        self._model: nn.Module | None = None  # the unwrapped model the Meter measures
        self._pending: dict[str, float] | None = None

    def _build(self) -> Meter:
        """The Meter of the trainer's model now (unwrapped), the probes on its device."""
        model = self.trainer.accelerator.unwrap_model(self.trainer.model, keep_torch_compile=False)
        self._model = model
        device = next(model.parameters()).device
        if isinstance(self.probe_inputs, Mapping):
            inputs = {k: v.to(device) for k, v in self.probe_inputs.items()}
            x = inputs.pop(self.input_key)
            forward = _ProbeForward(model, self.input_key, inputs)
        else:
            x = self.probe_inputs.to(device)
            forward = _ProbeForward(model)
        with _eval_mode(model):
            return Meter(forward, x, metrics=self.metrics)

    def _measure(self) -> dict[str, float]:
        """{"richness/quantity/layer": value} of the model now, layers named as in the model."""
        with _eval_mode(self._model):
            values = self.meter.measure()
        out = {}
        for key, value in values.items():
            quantity, _, layer = key.partition("/")
            name = f"{quantity}/{layer.removeprefix('model.')}" if layer else quantity
            out[PREFIX + name] = value
        return out

    def _log(self, control, metrics: dict[str, float]):
        """`trainer.log(metrics)`, keeping `control.should_log` (which `on_log` resets) for the
        Trainer's own log at this step."""
        should_log = control.should_log
        self.trainer.log(metrics)
        control.should_log = should_log
        return control

    def on_train_begin(self, args, state, control, **kwargs):
        self.meter = self._build()
        self._pending = None
        if self.at_start:
            return self._log(control, self._measure())
        return control

    def on_optimizer_step(self, args, state, control, **kwargs):
        if (state.global_step + 1) % self.every == 0:  # global_step counts the finished steps
            self._pending = self._measure()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._pending is None:
            return control
        metrics, self._pending = self._pending, None
        return self._log(control, metrics)
