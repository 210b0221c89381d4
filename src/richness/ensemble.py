"""Members of a sweep that share a width, trained together as one vectorized ensemble.

A sweep's runs at one width differ only in their seed, their table (r, preset, gauge, γ, base
width) and η0; the architecture, data, steps and measurements are the same. Their parameters
and multiplier buffers stack (`torch.func.stack_module_state`) into one leading member axis,
and one `vmap(grad_and_value(loss))` of `functional_call` trains them all: every matmul becomes
one batched matmul, so the per-op Python and dispatch overhead that dominates small widths is
paid once per ensemble instead of once per member (DESIGN.md, "A design note").

Each member's own optimizer (`rn.optimizer`, built as for a lone run) supplies its per-layer
hyperparameters (lr = η0·lr_factor, weight decay, ε), so the update below is exactly torch's
SGD / Adam / AdamW step applied to every member at once; in float64 the ensemble reproduces
training each member alone to ~1e-15 relative (tests/test_ensemble.py). Mini-batches are drawn
from each member's own seed, divergence is detected per member (a diverged member stops
recording, the others go on). The Meter's metrics are computed for every member from one
vmapped probe forward with one device sync per measurement: the default ones
(`representation_metrics`), the weight metrics of Linear layers (`measure.batched`, the same
power-iteration start as the Meter) and the linearization gap (one vmapped jvp).

What cannot be vectorized is trained member by member (`vectorizable` and `run_ensemble`):
other metrics (grad_h, ntk_dist), weight metrics of conv or embedding layers, an op that vmap
cannot batch, members that disagree on a shared hyperparameter, or bf16 on the CPU above width
`BF16_CPU_MAX_WIDTH`, where training alone is faster (measured).
"""

from __future__ import annotations

import copy
import json
import math
import time
import types
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from torch.nn import functional as F
from torch.nn.utils import parametrize

from richness.data import Dataset
from richness.measure._common import jvp
from richness.measure.batched import LinearWeightMeter
from richness.measure.meter import (
    DEFAULT_METRICS,
    WEIGHT_METRICS,
    expand_metrics,
    measured_layers,
    representation_metrics,
)
from richness.nn.multiplier import Multiplier
from richness.train import (
    RunOutcome,
    autocast,
    build_optimizer,
    build_parameterized,
    class_accuracy,
    flattens,
    load_data,
    run,
)

__all__ = [
    "BATCHED_METRICS",
    "BF16_CPU_MAX_WIDTH",
    "MEMBER_FIELDS",
    "ensemble_key",
    "run_ensemble",
    "train_ensemble",
    "vectorizable",
]

MEMBER_FIELDS = ("seed", "r", "preset", "gauge", "gamma", "base_width")
"""Config keys in which the members of one ensemble may differ (and train.lr, η0)."""


def ensemble_key(config: dict[str, Any]) -> str:
    """Runs with equal keys can train as one ensemble: everything but the member fields."""
    shared = {k: v for k, v in config.items() if k not in MEMBER_FIELDS}
    shared["train"] = {k: v for k, v in config["train"].items() if k != "lr"}
    return json.dumps(shared, sort_keys=True, default=str)


BF16_CPU_MAX_WIDTH = 256
"""Widest bf16 CPU ensemble: measured per member (1 thread, MLP, batch 256), the bf16 ensemble
is 2.3x / 1.55x faster than training alone at widths 128 / 256, even at 512 and 0.8x at 1024
and 2048, where per-op overhead no longer matters and bmm's slower weight gradient does."""

BATCHED_METRICS = (*DEFAULT_METRICS, *WEIGHT_METRICS, "lin_gap")
"""Meter metrics an ensemble measures for all members at once (weight metrics: Linear layers)."""


def vectorizable(config: dict[str, Any]) -> str | None:
    """None when the run can join an ensemble, else the reason it trains alone."""
    metrics = expand_metrics(config.get("measure", {}).get("metrics", ["default"]))
    extra = [m for m in metrics if m not in BATCHED_METRICS]
    if extra:
        return f"metrics {extra} are measured per member (only {BATCHED_METRICS} are batched)"
    if config["train"].get("kind", "sgd") not in ("sgd", "adam", "adamw"):
        return f"optimizer {config['train'].get('kind')!r} has no batched update"
    wide = int(config["width"]) > BF16_CPU_MAX_WIDTH
    if config.get("precision") == "bf16" and config.get("device", "cpu") == "cpu" and wide:
        return (
            f"bf16 on the CPU above width {BF16_CPU_MAX_WIDTH}: a batched bf16 matmul with the "
            "batch as its contraction (the weight gradient) runs at ~60% of a single one"
        )
    return None


def run_ensemble(configs: Sequence[dict[str, Any]]) -> list[RunOutcome]:
    """Outcomes of `configs` (one ensemble key), in order; never raises.

    Trains them as one ensemble when there are several and all are vectorizable; a failure of
    the ensemble itself (an op vmap cannot batch in a user's model, say) falls back to training
    each member alone, so the outcomes are those `train.run` would give.
    """
    configs = list(configs)
    if len(configs) == 1 or any(vectorizable(c) for c in configs):
        return [run(c) for c in configs]
    try:
        return train_ensemble(configs)
    except Exception:  # a model vmap cannot batch trains member by member
        return [run(c) for c in configs]


def _hyper(group: dict[str, Any], name: str) -> Any:
    """A group's setting, hashable (betas as a tuple), None when the optimizer has none."""
    value = group.get(name)
    return tuple(value) if isinstance(value, list | tuple) else value


class _Update:
    """torch's SGD / Adam / AdamW step (single-tensor form) on stacked member tensors.

    Per member and parameter: lr, weight_decay and eps (tensors broadcast over the member
    axis); shared by the ensemble: momentum, dampening, nesterov, betas, decoupled decay.
    """

    def __init__(self, optimizers: list[torch.optim.Optimizer], models: list[nn.Module], names):
        first = optimizers[0]
        self.kind = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adam"}[
            type(first)
        ]
        shared = ("momentum", "dampening", "nesterov", "betas", "decoupled_weight_decay")
        self.per_param: dict[str, dict[str, torch.Tensor]] = {}
        self.shared: dict[str, Any] = {}
        for name in names:
            groups = []
            for opt, model in zip(optimizers, models, strict=True):
                param = dict(model.named_parameters())[name]
                groups.append(
                    next(g for g in opt.param_groups if any(q is param for q in g["params"]))
                )
            for key in shared:
                values = {_hyper(g, key) for g in groups}
                if len(values) > 1:
                    raise ValueError(f"members disagree on {key} of {name}: {values}")
                self.shared.setdefault(key, values.pop())
            like = dict(models[0].named_parameters())[name]
            shape = (len(groups),) + (1,) * like.dim()
            self.per_param[name] = {
                key: torch.tensor(
                    [float(g.get(key, 0.0)) for g in groups], dtype=like.dtype, device=like.device
                ).reshape(shape)
                for key in ("lr", "weight_decay", "eps")
            }
        self.decoupled = isinstance(first, torch.optim.AdamW) or bool(
            self.shared.get("decoupled_weight_decay")
        )
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
        self.steps = 0

    def rename(self, renames: dict[str, str]) -> None:
        """Follows the skeleton's parameter names."""
        self.per_param = {renames.get(k, k): v for k, v in self.per_param.items()}
        self.state = {renames.get(k, k): v for k, v in self.state.items()}

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for name, p in params.items():
            hp, state, grad = self.per_param[name], self.state[name], grads[name]
            if self.kind == "sgd":
                self._sgd(p, grad, hp, state)
            else:
                self._adam(p, grad, hp, state)

    def _sgd(self, p, grad, hp, state) -> None:
        # a bf16 grad (the bf16 ensemble's weight matrices) is read in float32 by each op below
        momentum = self.shared["momentum"] or 0.0
        if bool((hp["weight_decay"] != 0).any()):
            grad = grad + hp["weight_decay"] * p
        if momentum != 0:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = grad.to(p.dtype, copy=True)
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - (self.shared["dampening"] or 0.0))
            grad = grad + momentum * buf if self.shared["nesterov"] else buf
        p.addcmul_(hp["lr"], grad, value=-1)

    def _adam(self, p, grad, hp, state) -> None:
        beta1, beta2 = self.shared["betas"]
        grad = grad.to(p.dtype)
        if bool((hp["weight_decay"] != 0).any()):
            if self.decoupled:
                p.mul_(1 - hp["lr"] * hp["weight_decay"])
            else:
                grad = grad + hp["weight_decay"] * p
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = hp["lr"] / (1 - beta1**self.steps)
        denom = (v.sqrt() / math.sqrt(1 - beta2**self.steps)).add_(hp["eps"])
        p.sub_(step_size * m / denom)


def train_ensemble(configs: Sequence[dict[str, Any]]) -> list[RunOutcome]:
    """Trains runs of one ensemble key together; the outcomes of `train.run`, member by member.

    Raises:
      ValueError: the configs do not share an ensemble key, or a run is not vectorizable.
    """
    start = time.perf_counter()
    keys = {ensemble_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("configs of one ensemble must differ only in " + str(MEMBER_FIELDS))
    reasons = [r for r in map(vectorizable, configs) if r]
    if reasons:
        raise ValueError(reasons[0])
    config = configs[0]
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    data = load_data(config)
    models = [build_parameterized(c, data) for c in configs]
    optimizers = [build_optimizer(c, m) for c, m in zip(configs, models, strict=True)]
    with warnings.catch_warnings():
        # ops without a batching rule (SDPA on CPU) run member by member inside vmap: correct,
        # and still cheaper than a whole run per member, so the warning says nothing to act on
        warnings.filterwarnings("ignore", message="There is a performance drop because")
        trainer = _Ensemble(config, data, models, optimizers)
        outcomes = trainer.train([int(c["seed"]) for c in configs])
    seconds = (time.perf_counter() - start) / len(configs)
    for outcome in outcomes:
        outcome.seconds = seconds  # the ensemble's time, shared equally
    return outcomes


_SCALED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


def _scaled_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer with its multipliers on the output: g·(W x) + g_b·b, equal to (g·W) x + g_b·b."""
    if isinstance(module, nn.Linear):
        out = F.linear(x, module.weight)
    elif isinstance(module, nn.Embedding):
        out = F.embedding(x, module.weight, module.padding_idx, module.max_norm)
    else:
        out = module._conv_forward(x, module.weight, None)
    out = out * module.weight_g.to(out.dtype)
    bias = getattr(module, "bias", None)
    if bias is None:
        return out
    if hasattr(module, "bias_g"):
        bias = bias * module.bias_g.to(out.dtype)
    if not isinstance(module, nn.Linear):  # conv: one bias per channel, dim 1
        bias = bias.reshape(-1, *([1] * (out.dim() - 2)))
    return out + bias


def _output_scaled_skeleton(model: nn.Module) -> tuple[nn.Module, dict[str, str]]:
    """A meta copy of `model` whose Linear/Conv/Embedding layers apply g to their output.

    The Multiplier parametrization forms g·W, n² numbers per layer per forward (and again in
    the backward); g·(W x) touches batch·n instead: at n = 2048, batch 256 that is 8x fewer, and
    in bf16 the weight product cost as much as the matmul itself. Same function, same
    gradients (up to rounding). Other parametrized modules keep their parametrization.

    Returns:
      The skeleton and {key in the original state: key in the skeleton's state}.
    """
    skeleton = copy.deepcopy(model).to("meta")
    renames: dict[str, str] = {}
    for name, module in skeleton.named_modules():
        if not (isinstance(module, _SCALED_TYPES) and parametrize.is_parametrized(module)):
            continue
        chains = module.parametrizations
        if set(chains) - {"weight", "bias"} or any(
            len(chains[t]) != 1 or not isinstance(chains[t][0], Multiplier) for t in chains
        ):
            continue
        prefix = f"{name}." if name else ""
        for tensor in list(chains):
            parametrize.remove_parametrizations(module, tensor, leave_parametrized=False)
            module.register_buffer(f"{tensor}_g", torch.empty((), device="meta"))
            old = f"{prefix}parametrizations.{tensor}"
            renames[f"{old}.original"] = f"{prefix}{tensor}"
            renames[f"{old}.0.multiplier"] = f"{prefix}{tensor}_g"
        module.forward = types.MethodType(_scaled_forward, module)
    return skeleton, renames


class _Ensemble:
    """The stacked state of an ensemble and its vmapped training step and measurement."""

    def __init__(self, config, data: Dataset, models: list[nn.Module], optimizers):
        self.config = config
        self.members = len(models)
        params, buffers = stack_module_state(models)
        self.update = _Update(optimizers, models, list(params))
        self.skeleton, renames = _output_scaled_skeleton(models[0])
        self.params = {renames.get(k, k): v.detach() for k, v in params.items()}
        skeleton_buffers = dict(self.skeleton.named_buffers())
        self.buffers = {
            renames.get(k, k): v
            for k, v in buffers.items()
            if renames.get(k, k) in skeleton_buffers
        }
        self.update.rename(renames)
        self.layers = measured_layers(models[0])
        flatten = flattens(config)
        self.x_train = data.x_train.flatten(1) if flatten else data.x_train
        self.x_test = data.x_test.flatten(1) if flatten else data.x_test
        self.x_probe = data.x_probe.flatten(1) if flatten else data.x_probe
        self.data = data
        self.metrics = expand_metrics(config.get("measure", {}).get("metrics", ["default"]))
        self.mixed = autocast(config.get("precision", "full"), self.x_train.device)
        # bf16: the weight matrices also live as bfloat16 copies that the training forward reads,
        # refreshed from the float32 masters after each update; autocast then casts nothing
        # n²-sized, and their gradients come back in bf16 without a cast to float32
        self.shadow = (
            {k: v.to(torch.bfloat16) for k, v in self.params.items() if v.dim() >= 3}
            if config.get("precision") == "bf16"
            else {}
        )
        self._grad_step = vmap(grad_and_value(self._loss), in_dims=(0, 0, 0, 0, 0))
        self._grad_step_full = vmap(grad_and_value(self._loss), in_dims=(0, 0, None, 0, None))
        self._probe = vmap(self._capture, in_dims=(0, 0, None))
        self._apply = vmap(self._forward, in_dims=(0, 0, None))
        with torch.no_grad():
            center = config.get("center", True)
            self.f0_train = (
                self._apply(self.params, self.buffers, self.x_train)
                if center
                else torch.zeros(self.members, *data.y_train.shape, dtype=data.y_train.dtype)
            )
            self.f0_test = (
                self._apply(self.params, self.buffers, self.x_test)
                if center and len(self.x_test)
                else torch.zeros(self.members, *data.y_test.shape, dtype=data.y_test.dtype)
            )
            self.h0, x0, self.f_init = self._probe(self.params, self.buffers, self.x_probe)
            self.f0_norm = self.f_init.flatten(2).norm(dim=-1).mean(-1)
        self.weight_meters = self._weight_meters(x0, renames)
        self.params0 = (
            {k: v.clone() for k, v in self.params.items()} if "lin_gap" in self.metrics else None
        )
        self.grads: dict[str, torch.Tensor] | None = None

    def _weight_meters(self, x0, renames) -> dict[str, LinearWeightMeter]:
        """One batched weight meter per layer, when weight metrics are asked for.

        Raises:
          ValueError: a measured layer is not a Linear with its multiplier on the output.
        """
        if not set(self.metrics) & set(WEIGHT_METRICS):
            return {}
        modules = dict(self.skeleton.named_modules())
        odd = [
            n
            for n in self.layers
            if not (isinstance(modules[n], nn.Linear) and f"{n}.weight" in renames.values())
        ]
        if odd:
            raise ValueError(f"weight metrics are batched for Linear layers only, not {odd}")
        return {
            name: LinearWeightMeter(self._weight(name), x0[name], first=i == 0)
            for i, name in enumerate(self.layers)
        }

    def _weight(self, name: str) -> torch.Tensor:
        """(M, out, in) effective weights g·W of a Linear layer."""
        return self.params[f"{name}.weight"] * self.buffers[f"{name}.weight_g"].reshape(-1, 1, 1)

    def _linearized(self) -> torch.Tensor:
        """f_lin = f(θ0) + J(θ0)(θ − θ0) on the probes, every member (THEORY.md C8)."""
        tangent = {k: self.params[k] - self.params0[k] for k in self.params}

        def member(p0, t, b):
            return jvp(
                lambda p: functional_call(self.skeleton, (p, b), (self.x_probe,)), (p0,), (t,)
            )[1]

        return self.f_init + vmap(member)(self.params0, tangent, self.buffers)

    def _forward(self, params, buffers, x):
        return functional_call(self.skeleton, (params, buffers), (x,))

    def _loss(self, params, buffers, x, f0, y):
        """One member's ½·mean ‖f − f0 − y‖² (float32 even when the forward runs in bf16)."""
        with self.mixed:
            f = functional_call(self.skeleton, (params, buffers), (x,))
        residual = f.to(y.dtype) - f0 - y
        return 0.5 * residual.pow(2).sum(1).mean()

    def _capture(self, params, buffers, x):
        """One member's output and every measured layer's output and input on x."""
        modules = dict(self.skeleton.named_modules())
        outs: dict[str, torch.Tensor] = {}
        ins: dict[str, torch.Tensor] = {}

        def hook(name):
            def record(module, args, output):
                ins[name] = args[0]
                outs[name] = output

            return record

        handles = [modules[n].register_forward_hook(hook(n)) for n in self.layers]
        try:
            f = functional_call(self.skeleton, (params, buffers), (x,))
        finally:
            for handle in handles:
                handle.remove()
        return outs, ins, f

    @torch.no_grad()
    def _measure(self, step: int, losses: torch.Tensor, live: list[bool], rows: list[list]):
        """Appends every live member's rows (meter metrics, loss, test loss and accuracy)."""
        values: dict[str, torch.Tensor] = {}
        if self.metrics:
            h, x, f = self._probe(self.params, self.buffers, self.x_probe)
            values = representation_metrics(h, self.h0, f, self.f_init, self.metrics, lead=1)
            if "f0" in self.metrics:
                values["f0"] = self.f0_norm
            wanted = set(self.metrics)
            for name, meter in self.weight_meters.items():
                grads = (
                    []
                    if self.grads is None
                    else [g for k, g in self.grads.items() if k.rpartition(".")[0] == name]
                )
                for quantity, value in meter(self._weight(name), x[name], grads, wanted).items():
                    values[f"{quantity}/{name}"] = value
            if "lin_gap" in wanted:
                df = (f - self.f_init).flatten(2).norm(dim=-1).mean(-1)
                gap = (f - self._linearized()).flatten(2).norm(dim=-1).mean(-1)
                values["lin_gap"] = gap / df
        values["loss"] = losses
        y_test = self.data.y_test
        if len(self.x_test):
            prediction = self._apply(self.params, self.buffers, self.x_test) - self.f0_test
            values["test_loss"] = 0.5 * (prediction - y_test).pow(2).sum(-1).mean(-1)
            if self.data.n_classes:
                values["test_acc"] = class_accuracy(prediction, y_test, self.data.n_classes)
        keys = list(values)
        table = torch.stack([values[k].to(losses.dtype) for k in keys]).tolist()  # one sync
        for member, alive in enumerate(live):
            if not alive:
                continue
            for key, column in zip(keys, table, strict=True):
                quantity, _, layer = key.partition("/")
                rows[member].append((step, layer, quantity, column[member]))

    def train(self, seeds: list[int]) -> list[RunOutcome]:
        """The loop of `train.train`, for every member at once."""
        train_spec = self.config["train"]
        steps = int(train_spec["steps"])
        batch_size = train_spec.get("batch_size")
        bound = train_spec.get("loss_bound", 1e6)
        wanted = set(self.config.get("measure", {}).get("steps", [steps]))
        n_train = len(self.x_train)
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        y = self.data.y_train
        outcomes = [RunOutcome(status="done") for _ in seeds]
        rows: list[list] = [o.rows for o in outcomes]
        live = [True] * self.members
        if 0 in wanted:
            with torch.no_grad():
                f = self._apply(self.params, self.buffers, self.x_train)
                losses = 0.5 * (f - self.f0_train - y).pow(2).sum(-1).mean(-1)
            self._measure(0, losses, live, rows)
        for step in range(1, steps + 1):
            if batch_size is not None and batch_size < n_train:
                index = torch.stack(
                    [torch.randperm(n_train, generator=g)[:batch_size] for g in generators]
                )
                f0 = torch.gather(self.f0_train, 1, index[..., None].expand(-1, -1, y.shape[-1]))
                grads, losses = self._grad_step(
                    self.params | self.shadow, self.buffers, self.x_train[index], f0, y[index]
                )
            else:
                grads, losses = self._grad_step_full(
                    self.params | self.shadow, self.buffers, self.x_train, self.f0_train, y
                )
            self.update(self.params, grads)
            for key, low in self.shadow.items():
                low.copy_(self.params[key])
            self.grads = grads
            values = losses.tolist()  # one sync per step: divergence is checked per member
            for member, value in enumerate(values):
                if live[member] and (not math.isfinite(value) or value > bound):
                    live[member] = False
                    outcomes[member].status = "diverged"
                    outcomes[member].diverged_step = step
            if not any(live):
                break
            if step in wanted:
                self._measure(step, losses.detach(), live, rows)
        return outcomes
