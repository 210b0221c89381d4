"""The richness meter: what THEORY.md §4 talks about, measured on any training loop.

    meter = rn.Meter(model, probe_inputs)      # snapshots θ0, every h_ℓ and f at creation
    for step in range(steps):
        train_step(model)                      # your loop, your optimizer
        metrics = meter.measure()              # {"dh/layers.1": ..., "df": ..., ...}

Keys are `quantity/layer` (layer = the module's name) for per-layer quantities and bare names
for model-level ones. Layers are the modules whose weight carries width (every Linear, Conv,
Embedding, Hugging Face Conv1D: `measured_layers`); h_ℓ is a layer's output (the tutorial's
h_ℓ = g_ℓ W_ℓ h_{ℓ−1}) and x_ℓ its input.
Norms are Euclidean per probe input (a conv map is flattened), averaged over probe inputs.

Quantities (claim of THEORY.md §4 in brackets):
  h_rms/ℓ      RMS coordinate of h_ℓ now                                       [C1]
  dh/ℓ         ‖h_ℓ − h_ℓ(θ0)‖                                                 [C2]
  dh_rms/ℓ     RMS coordinate of Δh_ℓ                                          [C2]
  f0           ‖f(θ0)‖, the output at creation (uncentered)                    [C3]
  df           ‖f − f(θ0)‖                                                      [C4]
  dW_fro/ℓ     ‖ΔW_ℓ‖_F of the effective weight g·W
  dW_op/ℓ      ‖ΔW_ℓ‖_op, by warm-started power iteration                      [C6]
  max_ratio/ℓ  mean ‖ΔW_ℓ x_ℓ‖ / mean ‖W_ℓ(θ0) Δx_ℓ‖ (own update over passthrough) [C5]
  align/ℓ      ‖ΔW_ℓ x_ℓ‖ / (‖ΔW_ℓ‖_op ‖x_ℓ‖), per input patch                  [C6]
  align_w0/ℓ   ‖W_ℓ(θ0) Δx_ℓ‖ / (‖W_ℓ(θ0)‖_op ‖Δx_ℓ‖): the init is not aligned  [C6]
  grad/ℓ       ‖∇L‖_F of the layer's weight, from the .grad your loop left     [C7]
  grad_h/ℓ     ‖∂(u·f)/∂h_ℓ‖ for a fixed random unit u: the backward signal     [C7]
  lin_gap      ‖f − f_lin‖ / ‖Δf‖, f_lin the first-order Taylor model at θ0      [C8]
  ntk_dist     1 − ⟨K0, K⟩/(‖K0‖‖K‖), the empirical NTK's movement on the first
               `ntk_probes` probe inputs (LR-weighted when an optimizer is given)
Exact decomposition used by max_ratio: W x − W0 x0 = ΔW x + W0 Δx.

Cost: "default" metrics need one forward pass on the probe batch (hooks record every h_ℓ) and
elementwise work; "weights" adds one power-iteration sweep per layer; "lin_gap" one jvp
(about three forward passes), "grad_h" one backward, "ntk_dist" an empirical NTK on
`ntk_probes` inputs (by far the most expensive). `measure()` syncs with the device once,
when it builds the dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call

from richness.measure._common import jvp
from richness.measure.ntk import empirical_ntk, kernel_distance, lr_weights_from_optimizer
from richness.nn.layers import layout_of, weight_matrix

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "SINGLE_MODEL_METRICS",
    "WEIGHT_METRICS",
    "MemberView",
    "Meter",
    "capture_layers",
    "expand_metrics",
    "measured_layers",
    "op_norms",
    "patches",
    "power_iteration_start",
    "representation_metrics",
]

DEFAULT_METRICS = ("h_rms", "dh", "dh_rms", "f0", "df")
WEIGHT_METRICS = ("dW_fro", "dW_op", "max_ratio", "align", "align_w0", "grad")
ALL_METRICS = (*DEFAULT_METRICS, *WEIGHT_METRICS, "grad_h", "lin_gap", "ntk_dist")
SINGLE_MODEL_METRICS = ("grad_h", "ntk_dist")
"""Metrics that need one torch module (a backward pass through hooks, an empirical NTK): a
Meter over a stack of models (`Meter.over`) does not measure them."""
_GROUPS = {"default": DEFAULT_METRICS, "weights": WEIGHT_METRICS, "all": ALL_METRICS}


def expand_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Metric names with groups ("default", "weights", "all") expanded, in order, deduplicated."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for name in names:
        for m in _GROUPS.get(name, (name,)):
            if m not in ALL_METRICS:
                raise ValueError(
                    f"metric {m!r} is not one of {ALL_METRICS} or a group {tuple(_GROUPS)}"
                )
            if m not in out:
                out.append(m)
    return tuple(out)


def _per_example_norm(t: torch.Tensor, lead: int = 0) -> torch.Tensor:
    """(*L, N) Euclidean norms of the N examples of t (*L, N, ...), `lead` = len(L)."""
    return t.flatten(lead + 1).norm(dim=-1)


def measured_layers(model: nn.Module) -> list[str]:
    """Names of the modules whose weight carries width: every module with a registered weight
    layout (Linear, Conv, Embedding, Hugging Face's Conv1D; see `richness.nn.layers`)."""
    return [name for name, m in model.named_modules() if layout_of(m) is not None]


def representation_metrics(
    h: dict[str, torch.Tensor],
    h0: dict[str, torch.Tensor],
    f: torch.Tensor,
    f_init: torch.Tensor,
    wanted: Iterable[str],
    lead: int = 0,
) -> dict[str, torch.Tensor]:
    """The default metrics (h_rms, dh, dh_rms, df) from layer outputs now and at creation.

    Every tensor may carry `lead` leading dims (an ensemble's members) before the probe dim N;
    each returned value then has those dims. Per member, with h_ℓ of N probes and numel
    coordinates: h_rms = ‖h_ℓ‖/√numel, dh = mean_i ‖h_ℓ,i − h0_ℓ,i‖, dh_rms = ‖(‖Δh_ℓ,i‖)_i‖/√numel,
    df = mean_i ‖f_i − f0_i‖ (THEORY.md C1, C2, C4). f0 is not here: it is a constant of the run.
    """
    wanted = set(wanted)
    out: dict[str, torch.Tensor] = {}
    for name, now in h.items():
        numel = now[(0,) * lead].numel()
        if "h_rms" in wanted:
            out[f"h_rms/{name}"] = now.flatten(lead).norm(dim=-1) / numel**0.5
        if "dh" in wanted or "dh_rms" in wanted:
            norms = _per_example_norm(now - h0[name], lead)  # (*L, N)
            if "dh" in wanted:
                out[f"dh/{name}"] = norms.mean(-1)
            if "dh_rms" in wanted:
                out[f"dh_rms/{name}"] = norms.norm(dim=-1) / numel**0.5
    if "df" in wanted:
        out["df"] = _per_example_norm(f - f_init, lead).mean(-1)
    return out


def patches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A layer's inputs (M, N, ...) as the rows its weight matrix multiplies: (M, N, P, fan_in).

    Dense layers (Linear, Conv1D): P = prod of the leading dims; Conv1d/2d: one row per output
    position (im2col), over all C_in channels (a grouped conv's rows hold every group's
    channels in order: `grouped_apply` multiplies them block by block).
    """
    m, n = x.shape[:2]
    if layout_of(module).applied == "dense":
        return x.reshape(m, n, -1, x.shape[-1])
    x = x.flatten(0, 1)
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(-2)
        kernel, stride = (1, *module.kernel_size), (1, *module.stride)
        padding, dilation = (0, *module.padding), (1, *module.dilation)
    else:
        kernel, stride = module.kernel_size, module.stride
        padding, dilation = module.padding, module.dilation
    if isinstance(padding, str) or isinstance(module, nn.Conv3d):
        raise ValueError("unsupported conv for weight metrics (Conv3d or string padding)")
    cols = nn.functional.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return cols.transpose(1, 2).reshape(m, n, -1, cols.shape[1])  # (M, N, P, C_in·k·k)


def groups_of(module: nn.Module) -> int:
    """A conv's `groups` (a depthwise conv: C_in); 1 for every other layer."""
    return int(getattr(module, "groups", 1)) if layout_of(module).applied == "conv" else 1


def grouped_apply(rows: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """W x for every row: rows (M, N, P, G·F) from `patches`, w (M, out, F) a `weight_matrix`
    of a conv with G groups (F = C_in/G · prod(kernel)); output channel o reads group
    o // (out/G) only (the block-diagonal matrix the conv applies). Returns (M, N, P, out)."""
    if groups == 1:
        return torch.einsum("mnpi,moi->mnpo", rows, w)
    m, n, p, _ = rows.shape
    blocks = w.reshape(w.shape[0], groups, -1, w.shape[-1])  # (M, G, out/G, F)
    out = torch.einsum("mnpgf,mgof->mnpgo", rows.reshape(m, n, p, groups, -1), blocks)
    return out.reshape(m, n, p, -1)


def grouped_op_norms(
    a: torch.Tensor, v: torch.Tensor | None, iters: int, groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`op_norms` of the block-diagonal operator a conv with `groups` groups applies: the
    largest of its blocks' (a depthwise conv's: the largest channel's kernel norm)."""
    if groups == 1:
        return op_norms(a, v, iters)
    m = a.shape[0]
    blocks = a.reshape(m * groups, -1, a.shape[-1])  # (M·G, out/G, F)
    norms, v = op_norms(blocks, v, iters)
    return norms.reshape(m, groups).amax(dim=-1), v


def power_iteration_start(k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The fixed random start vector (k,) of every power iteration: results are reproducible."""
    generator = torch.Generator(device=device).manual_seed(0)
    return torch.randn(k, generator=generator, device=device).to(dtype)


def op_norms(
    a: torch.Tensor, v: torch.Tensor | None, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest singular values (M,) of a (M, m, k), by power iteration on aᵀa warm-started at v.

    Starts from the fixed `power_iteration_start`; a member whose matrix is zero (before the
    first step) gets 0 and the start again, for the next call to warm-start from.
    """
    start = power_iteration_start(a.shape[2], a.dtype, a.device).expand(a.shape[0], -1)
    v = start if v is None else v
    zero = torch.zeros(a.shape[0], 1, dtype=torch.bool, device=a.device)
    for _ in range(iters):
        w = torch.einsum("mok,mo->mk", a, torch.einsum("mok,mk->mo", a, v))
        norm = w.norm(dim=-1, keepdim=True)
        zero = norm == 0
        v = torch.where(zero, start, w / torch.where(zero, 1.0, norm))
    return torch.einsum("mok,mk->mo", a, v).norm(dim=-1) * (~zero[:, 0]), v


class MemberView(Protocol):
    """What a Meter reads of the M models it measures (M = 1 for a user's model).

    `richness.train` implements it for a vectorized stack of models; `_ModuleView` for one.
    """

    layers: list[str]
    modules: dict[str, nn.Module]  # per layer, a module of its type (for layouts and patches)

    def capture(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """Per layer its outputs h and inputs x on the probes (M, N, ...), and f (M, N, ...)."""

    def weights(self) -> dict[str, torch.Tensor]:
        """Per layer its effective weight g·W as (M, out, fan_in) (`weight_matrix`)."""

    def grads(self) -> dict[str, list[torch.Tensor]]:
        """Per layer the (M, ...) gradients of its parameters from the last step (may be [])."""

    def linearized(self) -> torch.Tensor:
        """f_lin = f(θ0) + J(θ0)(θ − θ0) on the probes, (M, N, ...) (THEORY.md C8)."""


def capture_layers(modules: dict[str, nn.Module], forward) -> tuple[dict, dict, torch.Tensor]:
    """Runs `forward()` with hooks that keep each layer's input and output: (h, x, f)."""
    outs: dict[str, torch.Tensor] = {}
    ins: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, args, output):
            ins[name] = args[0]
            outs[name] = output

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        f = forward()
    finally:
        for handle in handles:
            handle.remove()
    return outs, ins, f


class _ModuleView:
    """One torch module seen as a stack of M = 1 (`MemberView`), optionally passive."""

    def __init__(
        self, model: nn.Module, x: torch.Tensor, layers: list[str], passive: bool, linear: bool
    ):
        self.model, self.x, self.layers = model, x, layers
        named = dict(model.named_modules())
        self.modules = {name: named[name] for name in layers}
        # θ0 for the linearization (lin_gap) only: a copy of every parameter
        self._params0 = (
            {k: v.detach().clone() for k, v in model.named_parameters()} if linear else {}
        )
        self._param_list = list(model.parameters())
        self._seen: tuple[dict, dict, torch.Tensor] | None = None
        self._seen_version: tuple[int, ...] = ()
        self.handles = self._watch() if passive else []

    def _watch(self) -> list:
        """Hooks that record every forward pass called with the probe tensor itself."""
        state = {"on": False}
        outs: dict[str, torch.Tensor] = {}
        ins: dict[str, torch.Tensor] = {}

        def start(module, args):
            state["on"] = bool(args) and args[0] is self.x

        def finish(module, args, output):
            if state["on"]:
                self._seen = (dict(outs), dict(ins), output.detach())
                self._seen_version = self._weights_version()
            state["on"] = False

        def layer(name):
            def record(module, args, output):
                if state["on"]:
                    ins[name] = args[0].detach()
                    outs[name] = output.detach()

            return record

        handles = [self.model.register_forward_pre_hook(start)]
        handles += [m.register_forward_hook(layer(n)) for n, m in self.modules.items()]
        handles.append(self.model.register_forward_hook(finish))
        return handles

    def _weights_version(self) -> tuple[int, ...]:
        """In-place update counters of the parameters: an optimizer step changes them."""
        return tuple(p._version for p in self._param_list)

    def capture(self):
        seen, self._seen = self._seen, None
        if seen is not None and self._seen_version == self._weights_version():
            h, x, f = seen  # passive: the representations the training forward saw
        else:
            h, x, f = capture_layers(self.modules, lambda: self.model(self.x))
        one = {k: v.detach().unsqueeze(0) for k, v in h.items()}
        return one, {k: v.detach().unsqueeze(0) for k, v in x.items()}, f.detach().unsqueeze(0)

    def weights(self):
        return {n: weight_matrix(m).detach().unsqueeze(0) for n, m in self.modules.items()}

    def grads(self):
        return {
            name: [p.grad.unsqueeze(0) for p in module.parameters() if p.grad is not None]
            for name, module in self.modules.items()
        }

    def linearized(self):
        params = dict(self.model.named_parameters())
        tangent = {k: params[k].detach() - self._params0[k] for k in self._params0}

        def f(p):
            return functional_call(self.model, p, (self.x,))

        with torch.enable_grad():
            f0, jvp_out = jvp(f, (self._params0,), (tangent,))
        return (f0 + jvp_out).detach().unsqueeze(0)


class Meter:
    """Measures h, Δh, f, Δf, ΔW and friends relative to the model at creation.

    Args:
      model: any torch module (parameterized by `rn.parameterize` or not).
      probe_inputs: (N, ...) inputs on which representations are measured.
      metrics: names or groups ("default", "weights", "all"); see the module docstring.
      layers: module names to hook; defaults to `measured_layers(model)`.
      power_iters: power-iteration steps per `measure()` for operator norms (warm-started).
      optimizer: the run's optimizer, whose per-layer LRs weight the NTK ("ntk_dist"): the
        kernel gradient descent actually follows, the same in every gauge.
      ntk_probes: probe inputs used for "ntk_dist".
      passive: measure on your own forward passes instead of running one: every forward called
        with the `probe_inputs` tensor itself is recorded, and the next `measure()` uses it.
        For full-batch loops that pass the same tensor each step (probe_inputs = the training
        batch) the default metrics then cost no extra forward. Call `measure()` after the
        forward and before `optimizer.step()`, so every metric describes the weights that
        forward saw (a record older than the last in-place update of the weights is dropped
        and the meter runs its own forward). `close()` removes the hooks.

    The arithmetic runs over a leading member axis M: `Meter.over(view)` measures a stack of M
    models at once (`richness.train` trains vectorized ensembles so), and `measure_members()`
    returns (M,) tensors; a Meter of one model has M = 1.

    Example:
      >>> import torch, richness as rn
      >>> model = rn.parameterize(rn.models.MLP(8, 64, 1), rn.preset("mup"))
      >>> meter = rn.Meter(model, torch.randn(16, 8))
      >>> sorted(meter.measure())[:3]
      ['df', 'dh/layers.0', 'dh/layers.1']
    """

    def __init__(
        self,
        model: nn.Module,
        probe_inputs: torch.Tensor,
        *,
        metrics: str | Sequence[str] = "default",
        layers: Sequence[str] | None = None,
        power_iters: int = 8,
        optimizer: torch.optim.Optimizer | None = None,
        ntk_probes: int = 16,
        passive: bool = False,
    ):
        modules = dict(model.named_modules())
        if layers is None:
            layers = measured_layers(model)
        unknown = [name for name in layers if name not in modules]
        if unknown:
            raise ValueError(f"layers {unknown} are not modules of the model")
        if not layers:
            raise ValueError("the model has no Linear, Conv or Embedding layer to measure")
        self.model = model
        self.x = probe_inputs
        linear = "lin_gap" in expand_metrics(metrics)
        self._view: MemberView = _ModuleView(model, probe_inputs, list(layers), passive, linear)
        self._start(metrics, power_iters)
        unit = torch.randn(self._f0.shape[2:], generator=torch.Generator().manual_seed(0))
        self._u = (unit / unit.norm()).to(dtype=self._f0.dtype, device=self._f0.device)
        self._lr_weights = (
            None if optimizer is None else lr_weights_from_optimizer(model, optimizer)
        )
        self._x_ntk = self.x[:ntk_probes]
        self._k0 = self._ntk() if "ntk_dist" in self.metrics else None

    @classmethod
    def over(
        cls, view: MemberView, metrics: str | Sequence[str] = "default", power_iters: int = 8
    ) -> Meter:
        """A Meter of a stack of M models (`MemberView`), snapshotting them now.

        Raises:
          ValueError: a metric that needs one module ("grad_h", "ntk_dist") is asked for.
        """
        meter = cls.__new__(cls)
        meter.model = None
        meter._view = view
        meter._start(metrics, power_iters)
        single = [m for m in meter.metrics if m in SINGLE_MODEL_METRICS]
        if single:
            raise ValueError(f"metrics {single} are measured on one module, not a stack")
        return meter

    def _start(self, metrics: str | Sequence[str], power_iters: int) -> None:
        """Snapshots θ0's weights and the probes' h, x and f at creation."""
        self.metrics = expand_metrics(metrics)
        self.layers = list(self._view.layers)
        self.power_iters = power_iters
        self._vectors: dict[str, torch.Tensor] = {}
        self._w0 = {k: v.clone() for k, v in self._view.weights().items()}
        self._w0_op: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self._h0, self._x0, self._f0 = self._view.capture()
        self._f0_norm = _per_example_norm(self._f0, 1).mean(-1)

    def close(self) -> None:
        """Removes the passive hooks."""
        for handle in getattr(self._view, "handles", []):
            handle.remove()
        self._view.handles = []

    @property
    def layer_index(self) -> dict[str, int]:
        """{layer name: ℓ}, the representation index that `Parameterization.predict` uses."""
        return {name: i + 1 for i, name in enumerate(self.layers)}

    @torch.no_grad()
    def measure(self, metrics: str | Sequence[str] | None = None) -> dict[str, float]:
        """Measures the model now against the model at creation.

        Args:
          metrics: overrides the metrics given at creation for this call.

        Returns:
          A flat {key: float} dict (keys in the module docstring).
        """
        values = self.measure_members(metrics)
        if not values:
            return {}
        table = torch.stack([v.to(self._f0.dtype) for v in values.values()])[:, 0].tolist()
        return dict(zip(values, table, strict=True))  # one device sync, here

    @torch.no_grad()
    def measure_members(
        self, metrics: str | Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Like `measure`, with each value an (M,) tensor over the members (no device sync)."""
        wanted = self.metrics if metrics is None else expand_metrics(metrics)
        h, xin, f = self._view.capture()
        out = representation_metrics(
            {n: h[n] for n in self.layers}, self._h0, f, self._f0, wanted, lead=1
        )
        if "f0" in wanted:
            out["f0"] = self._f0_norm
        if any(m in wanted for m in WEIGHT_METRICS):
            self._weight_metrics(wanted, xin, out)
        if "lin_gap" in wanted:
            if "lin_gap" not in self.metrics:
                raise ValueError("lin_gap needs θ0: pass it in metrics= at creation")
            df = _per_example_norm(f - self._f0, 1).mean(-1)
            out["lin_gap"] = _per_example_norm(f - self._view.linearized(), 1).mean(-1) / df
        if "grad_h" in wanted:
            out.update(self._backward_signals())
        if "ntk_dist" in wanted:
            if self._k0 is None:
                raise ValueError(
                    "ntk_dist needs the initial kernel: pass it in metrics= at creation"
                )
            out["ntk_dist"] = torch.tensor([kernel_distance(self._k0, self._ntk())])
        return out

    def _weight_metrics(self, wanted, xin, out) -> None:
        """dW_fro, dW_op, grad, align, max_ratio, align_w0 per layer (C5, C6, C7), each (M,)."""
        weights = self._view.weights()
        grads = self._view.grads() if "grad" in wanted else {}
        for name in self.layers:
            module = self._view.modules[name]
            groups = groups_of(module)  # a grouped conv's matrix is block-diagonal
            dw = weights[name] - self._w0[name]  # (M, out, fan_in)
            if "dW_fro" in wanted:
                out[f"dW_fro/{name}"] = dw.flatten(1).norm(dim=-1)
            if "dW_op" in wanted or "align" in wanted:
                op, self._vectors[name] = grouped_op_norms(
                    dw, self._vectors.get(name), self.power_iters, groups
                )
                if "dW_op" in wanted:
                    out[f"dW_op/{name}"] = op
            if grads.get(name):
                norms = [g.flatten(1).norm(dim=-1) for g in grads[name]]
                out[f"grad/{name}"] = torch.stack(norms).norm(dim=0)
            if layout_of(module).applied == "lookup" or not any(
                m in wanted for m in ("max_ratio", "align", "align_w0")
            ):
                continue
            rows = patches(module, xin[name])  # (M, N, P, fan_in)
            own = grouped_apply(rows, dw, groups)  # ΔW x
            if "align" in wanted:
                row_norm = rows.norm(dim=-1).clamp_min(torch.finfo(rows.dtype).tiny)
                ratio = own.norm(dim=-1) / (op[:, None, None] * row_norm)
                out[f"align/{name}"] = ratio.mean((1, 2))
            if name == self.layers[0]:
                continue  # the first layer's input does not move: no passthrough
            dx_rows = patches(module, xin[name] - self._x0[name])
            passthrough = grouped_apply(dx_rows, self._w0[name], groups)  # W0 Δx
            if "max_ratio" in wanted:
                own_norm = own.flatten(2).norm(dim=-1).mean(-1)
                out[f"max_ratio/{name}"] = own_norm / passthrough.flatten(2).norm(dim=-1).mean(-1)
            if "align_w0" in wanted:
                if name not in self._w0_op:  # once per meter; an SVD at n = 8192 takes minutes
                    self._w0_op[name], _ = grouped_op_norms(
                        self._w0[name], None, 4 * self.power_iters, groups
                    )
                dx_norm = dx_rows.norm(dim=-1).clamp_min(torch.finfo(rows.dtype).tiny)
                ratio = passthrough.norm(dim=-1) / (self._w0_op[name][:, None, None] * dx_norm)
                out[f"align_w0/{name}"] = ratio.mean((1, 2))

    def _ntk(self) -> torch.Tensor:
        """(M, M) trace-mode empirical NTK on the first `ntk_probes` probe inputs."""
        with torch.enable_grad():
            return empirical_ntk(
                self.model, self._x_ntk, trace=True, lr_weights=self._lr_weights, method="gram"
            )

    def _backward_signals(self) -> dict[str, torch.Tensor]:
        """‖∂(u·f)/∂h_ℓ‖ per layer, mean over probe inputs: one backward pass (C7)."""
        with torch.enable_grad():
            h, _, f = capture_layers(self._view.modules, lambda: self.model(self.x))
            grads = torch.autograd.grad((f * self._u).sum(), [h[n] for n in self.layers])
        return {
            f"grad_h/{name}": _per_example_norm(g).mean().reshape(1)
            for name, g in zip(self.layers, grads, strict=True)
        }
