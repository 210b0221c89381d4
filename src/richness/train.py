"""The training loop of richness: every run, alone or in a vectorized ensemble, goes through it.

A run's parts (data, model, optimizer, schedule, identity) come from `richness.build`.
One loop (`_train_members`) owns what makes a run a run: the loss, the mini-batch draw from each
run's seed, centering, divergence, and the rows it records (Meter metrics, loss, test loss and
accuracy). It drives M models at once through one of two backends, chosen explicitly and
recorded in each run's outcome (`RunOutcome.path`, `path_reason`):

- "alone": one torch module and its own torch optimizer (M = 1). Any model, any optimizer,
  every Meter metric. `train(model, data, opt, ...)` is this path for a user's own model.
- "ensemble": the runs of one ensemble key (`RunConfig.ensemble_key`: equal in all but seed,
  table and η0) stacked into one leading member axis (`torch.func.stack_module_state`) and
  trained by one `vmap(grad_and_value(loss))` of `functional_call`, every matmul a batched
  matmul, so the per-op overhead of small widths is paid once per ensemble. The multipliers
  act on layer outputs (`nn.multiplier.output_scaled`), each member's `rn.optimizer` supplies
  its per-layer hyperparameters to `nn.stacked_optim.StackedUpdate`, and the Meter measures the
  stack over its member axis (`Meter.over`). In float64 it reproduces the alone path to ~1e-15
  relative (tests/test_train.py).

`run_many(configs)` picks the path: the ensemble when the runs can share one, else alone, each
run's outcome saying why (`unbatchable`), and when the ensemble itself fails (an op vmap cannot
batch in a user's model) the runs train alone with the error as their reason: a sweep counts
them on its last line, nothing falls back silently.

Centering (research/notes.md): with `center` the loss sees f(x) − f(x; θ0), the initial output
cached per training point, so the random f0 ~ n^{−r} does not drive the updates; the Meter's f0
and df are the same with or without it (C3 is measured on the uncentered output).
Losses (`loss_function`): `mse`, ½·mean over the batch of ‖f − f0 − y‖² (sum over outputs),
or `cross_entropy` on one-hot class rows, per position for token models (docs/losses.md).
A learning-rate schedule is torch's LambdaLR on each run's optimizer (`build_scheduler`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from richness.build import (
    build_optimizer,
    build_parameterized,
    build_scheduler,
    flattens,
    identity,
    load_data,
    setup,
)
from richness.config import RunConfig
from richness.data import Dataset
from richness.measure._common import jvp
from richness.measure.meter import (
    SINGLE_MODEL_METRICS,
    Meter,
    capture_layers,
    expand_metrics,
    measured_layers,
)
from richness.nn.layers import layout_of
from richness.nn.multiplier import output_scaled
from richness.nn.stacked_optim import StackedUpdate
from richness.scaling import Parameterization

__all__ = [
    "BF16_CPU_MAX_WIDTH",
    "LOSSES",
    "RunOutcome",
    "autocast",
    "class_accuracy",
    "cross_entropy",
    "loss_function",
    "mse",
    "run",
    "run_many",
    "train",
    "unbatchable",
]

Path = Literal["alone", "ensemble"]


@dataclass
class RunOutcome:
    """What a run produced: its status, metric rows (step, layer, quantity, value), timing, the
    path that trained it (and why it trained alone, when it could have joined an ensemble) and
    what it is (`identity`: its measured layers, roles, ℓ and predicted exponents)."""

    status: str  # "done" | "diverged" | "failed"
    rows: list[tuple[int, str, str, float]] = field(default_factory=list)
    seconds: float = 0.0
    diverged_step: int | None = None
    error: str | None = None
    path: Path = "alone"
    path_reason: str | None = None
    identity: dict[str, Any] | None = None


# ------------------------------------------------------------------------------ the one loop


def mse(f: torch.Tensor, f0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """½·mean_i ‖f_i − f0_i − y_i‖² over the examples i (dim −2); leading dims are kept.

    In y's dtype (float32 when the forward ran in bf16).
    """
    return 0.5 * (f.to(y.dtype) - f0 - y).pow(2).sum(-1).mean(-1)


def cross_entropy(
    f: torch.Tensor, f0: torch.Tensor, y: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """mean over examples i and positions t of −log softmax(f_it − f0_it)[c_it], c_it the class
    of the one-hot row y_it; f, y are (..., N, positions·classes), leading dims kept.

    Its gradient in the logits, softmax − y, is Θ(1) at initialization like MSE's residual
    when f − f0 is small (centered, or r > 0 uncentered), so the one-step derivation of the
    width exponents is unchanged (docs/losses.md).
    """
    logits = (f.to(y.dtype) - f0).unflatten(-1, (-1, n_classes))  # (..., N, T, C)
    target = y.unflatten(-1, (-1, n_classes)).argmax(-1)  # (N, T)
    logp = logits.log_softmax(-1)
    picked = logp.gather(-1, target.expand(logp.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return -picked.mean((-1, -2))


LOSSES = ("mse", "cross_entropy")
"""The training losses: `mse` (regression and one-hot targets) and `cross_entropy` (classes)."""


def loss_function(loss: str, data: Dataset):
    """The loss L(f, f0, y) of a run, checked against its targets before any training.

    Raises:
      ValueError: an unknown loss, or cross-entropy on targets that are not one-hot rows of
        `data.n_classes` classes (the message gives the shape received).
    """
    if loss == "mse":
        return mse
    if loss != "cross_entropy":
        raise ValueError(f"loss={loss!r} is not one of {LOSSES}")
    c, y = data.n_classes, data.y_train
    rows = y.reshape(len(y), -1, c) if c and y.shape[-1] % c == 0 else None
    if rows is None or not bool(((rows == 0) | (rows == 1)).all() and (rows.sum(-1) == 1).all()):
        raise ValueError(
            f"loss 'cross_entropy' needs one-hot targets of n_classes={c} classes per position; "
            f"got targets of shape {tuple(y.shape)} (centered or regression targets?)"
        )
    return functools.partial(cross_entropy, n_classes=c)


def class_accuracy(prediction: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Fraction of argmax hits against one-hot targets y (N, positions·classes).

    `prediction` is (..., N, positions·classes): leading dims (an ensemble's members) are kept.
    A sequence model is scored at every position.
    """
    per_class = (len(y), -1, n_classes)  # (N, positions, classes)
    guess = prediction.reshape(*prediction.shape[:-2], *per_class).argmax(-1)
    hits = guess == y.reshape(per_class).argmax(-1)
    return hits.to(prediction.dtype).flatten(-2).mean(-1)


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The training forward's precision: "full" (the model's dtype) or "bf16".

    bf16 runs the matmuls and convolutions of the training forward and backward in bfloat16
    (torch.autocast), keeping float32 master weights, optimizer state and loss; measurements
    run outside it, in float32. Not for equivalence checks or linearization gaps below bf16's
    resolution (2^-8 relative).
    """
    if precision == "full":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    raise ValueError(f"precision={precision!r} is not one of 'full', 'bf16'")


def _train_members(
    backend: _Alone | _Stacked,
    data: Dataset,
    *,
    steps: int,
    measure_steps: Sequence[int],
    batch_size: int | None,
    center: bool,
    loss_bound: float,
    seeds: Sequence[int],
    flatten: bool,
) -> list[RunOutcome]:
    """Trains the backend's M members for `steps` steps; one outcome per member.

    Each member draws its mini-batches from its own seed; a member whose loss turns non-finite
    or exceeds `loss_bound` is marked diverged at that step and stops recording (the others go
    on). Measured steps record the Meter's metrics, "loss", and on test data "test_loss" and
    (classes) "test_acc", with one device sync per measurement.
    """
    x_train = data.x_train.flatten(1) if flatten else data.x_train
    x_test = data.x_test.flatten(1) if flatten else data.x_test
    y_train, y_test = data.y_train, data.y_test
    m = backend.members
    with torch.no_grad():
        f0_train = backend.outputs(x_train) if center else torch.zeros(m, *y_train.shape)
        f0_test = (
            backend.outputs(x_test) if center and len(x_test) else torch.zeros(m, *y_test.shape)
        )
    f0_train, f0_test = f0_train.to(y_train), f0_test.to(y_test)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    outcomes = [RunOutcome(status="done") for _ in range(m)]
    live = [True] * m
    wanted = set(measure_steps)

    def record(step: int, losses: torch.Tensor) -> None:
        values = dict(backend.meter.measure_members())
        values["loss"] = losses
        if len(x_test):
            prediction = backend.outputs(x_test) - f0_test
            values["test_loss"] = backend.loss(prediction, 0.0, y_test)
            if data.n_classes:
                values["test_acc"] = class_accuracy(prediction, y_test, data.n_classes)
        table = torch.stack([v.to(losses.dtype) for v in values.values()]).tolist()  # one sync
        for member, alive in enumerate(live):
            if alive:
                for key, column in zip(values, table, strict=True):
                    quantity, _, layer = key.partition("/")
                    outcomes[member].rows.append((step, layer, quantity, column[member]))

    if 0 in wanted:
        with torch.no_grad():
            record(0, backend.loss(backend.outputs(x_train), f0_train, y_train))
    n_train = len(x_train)
    for step in range(1, steps + 1):
        index = None
        if batch_size is not None and batch_size < n_train:
            index = torch.stack(
                [torch.randperm(n_train, generator=g)[:batch_size] for g in generators]
            )
        losses = backend.step(x_train, f0_train, y_train, index)
        values = losses.tolist()  # one sync per step: divergence is checked per member
        for member, value in enumerate(values):
            if live[member] and (not math.isfinite(value) or value > loss_bound):
                live[member] = False
                outcomes[member].status, outcomes[member].diverged_step = "diverged", step
        if not any(live):
            break
        if step in wanted:
            record(step, losses.detach())
    return outcomes


class _Alone:
    """One torch module, its own torch optimizer (any) and scheduler (or None): M = 1."""

    members = 1

    def __init__(self, model: nn.Module, opt, scheduler, meter, loss, precision: str):
        self.model, self.opt, self.scheduler, self.meter, self.loss = (
            model,
            opt,
            scheduler,
            meter,
            loss,
        )
        self.mixed = autocast(precision, next(model.parameters()).device)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x).unsqueeze(0)

    def step(self, x, f0, y, index) -> torch.Tensor:
        if index is not None:
            x, f0, y = x[index[0]], f0[:, index[0]], y[index[0]]
        self.opt.zero_grad(set_to_none=True)
        with self.mixed:
            f = self.model(x)
        loss = self.loss(f.unsqueeze(0), f0, y)
        loss.sum().backward()
        self.opt.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()


def train(
    model: nn.Module,
    data: Dataset,
    opt: torch.optim.Optimizer,
    *,
    steps: int,
    meter: Meter | None = None,
    measure_steps: Sequence[int] = (),
    batch_size: int | None = None,
    center: bool = True,
    loss_bound: float = 1e6,
    seed: int = 0,
    flatten: bool = False,
    precision: str = "full",
    loss: str = "mse",
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> RunOutcome:
    """Trains `model` by `opt` for `steps` steps, measuring with `meter` at `measure_steps`:
    the loop's alone path, for any model, torch optimizer and scheduler (stepped after each
    optimizer step). `loss` is "mse" or "cross_entropy" (`loss_function`). `meter` is a
    `Meter`, or any object whose ``measure_members()`` returns {key: (1,) tensor}: the loop's
    one measurement hook, called after the step's update (the gradients still in `.grad`).

    Returns:
      A RunOutcome with rows for every measured step (meter metrics, "loss", "test_loss",
      "test_acc" for classification data), status "diverged" (and the step) when the loss turns
      non-finite or exceeds `loss_bound`.
    """
    if meter is None:
        meter = _NoMeter()
    backend = _Alone(model, opt, scheduler, meter, loss_function(loss, data), precision)
    (outcome,) = _train_members(
        backend,
        data,
        steps=steps,
        measure_steps=measure_steps,
        batch_size=batch_size,
        center=center,
        loss_bound=loss_bound,
        seeds=[seed],
        flatten=flatten,
    )
    return outcome


class _NoMeter:
    """A meter that measures nothing (train() without one records losses only)."""

    @staticmethod
    def measure_members() -> dict[str, torch.Tensor]:
        return {}


# ---------------------------------------------------------------- the vectorized backend


class _Stacked:
    """M models of one ensemble key as stacked tensors, trained and measured over a member axis.

    Also the Meter's `MemberView` of the stack (capture, weights, grads, linearized).
    """

    def __init__(self, config: RunConfig, data: Dataset, models_: list[nn.Module], optimizers):
        self.members = len(models_)
        self.loss = loss_function(config.loss, data)
        self.schedulers = [s for s in (build_scheduler(config, o) for o in optimizers) if s]
        params, buffers = stack_module_state(models_)
        self.update = StackedUpdate(optimizers, models_, list(params))
        self.skeleton, self.renames = output_scaled(models_[0])
        self.params = {self.renames.get(k, k): v.detach() for k, v in params.items()}
        kept = dict(self.skeleton.named_buffers())
        self.buffers = {
            self.renames.get(k, k): v for k, v in buffers.items() if self.renames.get(k, k) in kept
        }
        self.update.rename(self.renames)
        self.layers = measured_layers(models_[0])
        named = dict(self.skeleton.named_modules())
        self.modules = {name: named[name] for name in self.layers}
        self.mixed = autocast(config.precision, config.device)
        # bf16: the weight matrices also live as bfloat16 copies that the training forward reads,
        # refreshed from the float32 masters after each update; autocast then casts nothing
        # n²-sized, and their gradients come back in bf16 without a cast to float32
        self.shadow = (
            {k: v.to(torch.bfloat16) for k, v in self.params.items() if v.dim() >= 3}
            if config.precision == "bf16"
            else {}
        )
        self._grad_batch = vmap(grad_and_value(self._loss), in_dims=(0, 0, 0, 0, 0))
        self._grad_full = vmap(grad_and_value(self._loss), in_dims=(0, 0, None, 0, None))
        self._apply = vmap(self._forward, in_dims=(0, 0, None))
        x_probe = data.x_probe.flatten(1) if flattens(config) else data.x_probe
        self._probe = x_probe
        self.last_grads: dict[str, torch.Tensor] = {}
        linear = "lin_gap" in expand_metrics(config.measure.metrics)  # θ0 for lin_gap only
        self.params0 = {k: v.clone() for k, v in self.params.items()} if linear else {}
        self.meter = Meter.over(self, config.measure.metrics)

    def _forward(self, params, buffers, x):
        return functional_call(self.skeleton, (params, buffers), (x,))

    def _loss(self, params, buffers, x, f0, y):
        """One member's loss (float32 even when the forward runs in bf16)."""
        with self.mixed:
            f = functional_call(self.skeleton, (params, buffers), (x,))
        return self.loss(f, f0, y)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._apply(self.params, self.buffers, x)

    def step(self, x, f0, y, index) -> torch.Tensor:
        state = self.params | self.shadow
        if index is None:
            grads, losses = self._grad_full(state, self.buffers, x, f0, y)
        else:
            f0 = torch.gather(f0, 1, index[..., None].expand(-1, -1, y.shape[-1]))
            grads, losses = self._grad_batch(state, self.buffers, x[index], f0, y[index])
        self.update(self.params, grads)
        if self.schedulers:  # torch's schedulers set the members' group lrs; read them back
            with warnings.catch_warnings():  # the members' optimizers hold lrs, never step
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
                for scheduler in self.schedulers:
                    scheduler.step()
            self.update.refresh_lr()
        for key, low in self.shadow.items():
            low.copy_(self.params[key])
        self.last_grads = grads
        return losses

    # MemberView

    def capture(self):
        def member(params, buffers):
            return capture_layers(self.modules, lambda: self._forward(params, buffers, self._probe))

        with torch.no_grad():
            return vmap(member)(self.params, self.buffers)

    def _tensor(self, layer: str, name: str) -> tuple[str, torch.Tensor]:
        """(key, stacked effective tensor g·X) of a layer's `name` ("weight"), any naming."""
        if f"{layer}.{name}_g" in self.buffers:  # output-scaled: X and g side by side
            key = f"{layer}.{name}"
            g = self.buffers[f"{layer}.{name}_g"]
        elif f"{layer}.parametrizations.{name}.original" in self.params:
            key = f"{layer}.parametrizations.{name}.original"
            g = self.buffers[f"{layer}.parametrizations.{name}.0.multiplier"]
        else:
            return f"{layer}.{name}", self.params[f"{layer}.{name}"]
        value = self.params[key]
        return key, value * g.reshape(-1, *([1] * (value.dim() - 1)))

    def weights(self):
        out = {}
        for name, module in self.modules.items():
            fan_out = layout_of(module).fan_out_dim
            out[name] = self._tensor(name, "weight")[1].movedim(fan_out + 1, 1).flatten(2)
        return out

    def grads(self):
        out: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        for key, grad in self.last_grads.items():
            if ".parametrizations." in key:  # <layer>.parametrizations.<tensor>.original
                layer = key.split(".parametrizations.")[0]
            else:  # <layer>.<tensor>
                layer = key.rpartition(".")[0]
            if layer in out:
                out[layer].append(grad)
        return out

    def linearized(self):
        tangent = {k: self.params[k] - self.params0[k] for k in self.params}

        def member(p0, t, b):
            return jvp(lambda p: self._forward(p, b, self._probe), (p0,), (t,))

        f0, out = vmap(member)(self.params0, tangent, self.buffers)
        return f0 + out


# ------------------------------------------------------------------------------ choosing the path

BF16_CPU_MAX_WIDTH = 256
"""Widest bf16 CPU ensemble: measured per member (1 thread, MLP, batch 256), the bf16 ensemble
is 2.3x / 1.55x faster than training alone at widths 128 / 256, even at 512 and 0.8x at 1024
and 2048, where per-op overhead no longer matters and bmm's slower weight gradient does."""


def unbatchable(config: RunConfig) -> str | None:
    """None when the run can join a vectorized ensemble, else why it trains alone."""
    single = [m for m in expand_metrics(config.measure.metrics) if m in SINGLE_MODEL_METRICS]
    if single:
        return f"metrics {single} are measured on one module (a backward or an NTK per model)"
    wide = config.width > BF16_CPU_MAX_WIDTH
    if config.precision == "bf16" and config.device == "cpu" and wide:
        return (
            f"bf16 on the CPU above width {BF16_CPU_MAX_WIDTH}: a batched bf16 matmul with the "
            "batch as its contraction (the weight gradient) runs at ~60% of a single one"
        )
    return None


def run(
    config: RunConfig | dict[str, Any],
    *,
    path_reason: str | None = None,
    table: Parameterization | None = None,
) -> RunOutcome:
    """Runs one config on the alone path; never raises (errors become status "failed").

    Args:
      config: a RunConfig or its JSON form.
      path_reason: why this run trains alone inside a sweep that ensembles (recorded).
      table: train the config's recipe under this table instead of the one it names (a table
        a config cannot name: r off the scale, for the claims that study it).
    """
    start = time.perf_counter()
    try:
        outcome = _run_alone(RunConfig.parse(config), table)
    except Exception:  # a failing run is recorded, the sweep goes on
        outcome = RunOutcome(status="failed", error=traceback.format_exc())
    outcome.seconds = time.perf_counter() - start
    outcome.path_reason = path_reason
    return outcome


def _run_alone(config: RunConfig, table: Parameterization | None = None) -> RunOutcome:
    table = table or config.parameterization()
    model, data = setup(config, table)
    opt = build_optimizer(config, model)
    x_probe = data.x_probe.flatten(1) if flattens(config) else data.x_probe
    meter = Meter(model, x_probe, metrics=config.measure.metrics, optimizer=opt)
    outcome = train(
        model,
        data,
        opt,
        steps=config.train.steps,
        meter=meter,
        measure_steps=config.measure.steps,
        batch_size=config.train.batch_size,
        center=config.center,
        loss_bound=config.train.loss_bound,
        seed=config.seed,
        flatten=flattens(config),
        precision=config.precision,
        loss=config.loss,
        scheduler=build_scheduler(config, opt),
    )
    outcome.identity = identity(model, meter.layers, table)
    return outcome


def run_many(configs: Sequence[RunConfig | dict[str, Any]]) -> list[RunOutcome]:
    """Outcomes of the runs of one ensemble key, in order; never raises.

    Several runs that can share an ensemble train as one (path "ensemble"); otherwise, and when
    the ensemble fails, each trains alone with the reason in its outcome.
    """
    configs = [RunConfig.parse(c) for c in configs]
    if len(configs) == 1:
        return [run(configs[0])]
    reasons = [r for r in map(unbatchable, configs) if r]
    if len({c.ensemble_key() for c in configs}) != 1:
        reasons.append("the runs differ in more than seed, table and η0")
    if reasons:
        return [run(c, path_reason=reasons[0]) for c in configs]
    try:
        return _run_ensemble(configs)
    except Exception as err:  # e.g. an op vmap cannot batch in a user's model: say so per run
        reason = f"the vectorized ensemble failed: {type(err).__name__}: {err}"
        return [run(c, path_reason=reason[:500]) for c in configs]


def _run_ensemble(configs: list[RunConfig]) -> list[RunOutcome]:
    start = time.perf_counter()
    config = configs[0]
    if config.threads:
        torch.set_num_threads(config.threads)
    data = load_data(config)
    members = [build_parameterized(c, data) for c in configs]
    optimizers = [build_optimizer(c, m) for c, m in zip(configs, members, strict=True)]
    with warnings.catch_warnings():
        # ops without a batching rule (SDPA on CPU) run member by member inside vmap: correct,
        # and still cheaper than a whole run per member, so the warning says nothing to act on
        warnings.filterwarnings("ignore", message="There is a performance drop because")
        backend = _Stacked(config, data, members, optimizers)
        outcomes = _train_members(
            backend,
            data,
            steps=config.train.steps,
            measure_steps=config.measure.steps,
            batch_size=config.train.batch_size,
            center=config.center,
            loss_bound=config.train.loss_bound,
            seeds=[c.seed for c in configs],
            flatten=flattens(config),
        )
    seconds = (time.perf_counter() - start) / len(configs)
    for c, model, outcome in zip(configs, members, outcomes, strict=True):
        outcome.seconds = seconds  # the ensemble's time, shared equally
        outcome.path = "ensemble"
        outcome.identity = identity(model, backend.layers, c.parameterization())
    return outcomes
