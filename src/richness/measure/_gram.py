"""Internal: structured derivatives of linear layers (the "gram" NTK method).

For a layer applied once per example whose output is linear in its weight, the Jacobians follow
from two cheap tensors: its input, and G_o = ∂f_o/∂y, the gradient of output o in the layer's
output y, obtained with a zero "tap" added to y and O backward passes over the whole batch.

- nn.Linear on (N, in) inputs, y = x Wᵀ + b: the Jacobian in W is G_o ⊗ x, so its NTK term
  factorizes and the Jacobian is never formed:
      K_W(x1, x2)[o, o'] = (x1 · x2) · (G_o(x1) · G_o'(x2)),
      K_b(x1, x2)[o, o'] = G_o(x1) · G_o'(x2).
- nn.Conv2d, and nn.Linear on (N, T..., in) inputs: y_s = W p_s + b at each position s (p_s the
  input patch), so the per-example Jacobian J_W[o] = Σ_s G_o,s ⊗ p_s is one batched matrix
  product (no vmap, no per-example backward), then contracted like any Jacobian.

These are the dense and convolution rules of "Fast Finite Width Neural Tangent Kernel"
(arXiv:2206.08720, "structured derivatives"). Layers the rules cannot prove safe (called twice,
tied weights, grouped or non-zero-padded convolutions, non-scalar parametrizations, subclasses
with their own forward) are left to the generic Jacobian contraction.

Shapes: c (examples in a chunk), O (outputs), in / out (fan-in / fan-out), L (positions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils import parametrize

from richness.measure._common import ParamDict, jvp, outputs_2d
from richness.measure._jacobian import contract

# A parametrization counts as a scalar multiplier if its Jacobian maps a random direction v to
# c·v up to this relative error (float32 round-off is ~1e-7).
_SCALAR_TOL = 1e-5

Kind = Literal["dense", "positions", "conv2d"]


@dataclass(frozen=True)
class GramLayer:
    """One layer handled by a structured rule.

    Attributes:
        module: the layer's name in ``model.named_modules()``.
        kind: "dense" (nn.Linear on (N, in): factorized), "positions" (nn.Linear on
            (N, T..., in)) or "conv2d" (nn.Conv2d): per-example Jacobians by one product.
        weight: the weight's name in ``named_parameters()``, or None if not handled here.
        weight_scale: c_W² · η_W, with c_W the parametrization's scalar derivative.
        bias: the bias's name, or None.
        bias_scale: c_b² · η_b.
    """

    module: str
    kind: Kind
    weight: str | None
    weight_scale: float
    bias: str | None
    bias_scale: float


@dataclass(frozen=True)
class GramPlan:
    """Which parameters the structured rules cover; ``covered`` are excluded from the Jacobian."""

    layers: tuple[GramLayer, ...]
    covered: frozenset[str]


def _is_plain(module: nn.Module, cls: type[nn.Module]) -> bool:
    """True for ``cls`` itself or its parametrized twin (subclasses may change forward)."""
    if type(module) is cls:
        return True
    return parametrize.is_parametrized(module) and type(module).__bases__ == (cls,)


def _conv_padding(module: nn.Conv2d) -> tuple[int, int] | None:
    """Returns the explicit symmetric padding of a Conv2d, or None if unfold cannot express it."""
    if module.padding_mode != "zeros" or module.groups != 1:
        return None
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":
        total = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size, strict=True)]
        if any(t % 2 for t in total):
            return None  # asymmetric padding
        return (total[0] // 2, total[1] // 2)
    return (int(module.padding[0]), int(module.padding[1]))


def _scalar_derivative(plist: nn.Module, original: Tensor) -> float | None:
    """Returns c if the parametrization's derivative at ``original`` is c·identity, else None."""
    original = original.detach()
    generator = torch.Generator(device=original.device).manual_seed(0)
    # a generic direction (uniform: cheaper than randn for big weights)
    v = torch.rand(
        original.shape, generator=generator, dtype=original.dtype, device=original.device
    )
    v = v - 0.5

    def chain(t: Tensor) -> Tensor:
        for p in plist:
            t = p(t)
        return t

    try:
        _, tangent = jvp(chain, (original,), (v,))
    except RuntimeError:
        return None
    if tangent.shape != v.shape:
        return None
    t, u = tangent.reshape(-1), v.reshape(-1)
    c = float(torch.dot(t, u) / torch.dot(u, u))
    residual = float(torch.linalg.vector_norm(t - c * u))
    if residual > _SCALAR_TOL * max(float(torch.linalg.vector_norm(t)), 1e-30):
        return None
    return c


def _tensor_entry(
    module: nn.Module, prefix: str, tensor_name: str, theta: Mapping[str, Tensor]
) -> tuple[str, float] | None:
    """Returns (parameter name, c) for ``module.<tensor_name>``, or None if not structurable."""
    dot = f"{prefix}." if prefix else ""
    if parametrize.is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        name = f"{dot}parametrizations.{tensor_name}.original"
        if not hasattr(plist, "original") or name not in theta:
            return None
        c = _scalar_derivative(plist, theta[name])
        return None if c is None else (name, c)
    name = f"{dot}{tensor_name}"
    if getattr(module, tensor_name, None) is None or name not in theta:
        return None
    return name, 1.0


def _kind(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...], n: int):
    """Returns the rule for one recorded call, or None if no rule applies."""
    if len(in_shape) < 2 or len(out_shape) != len(in_shape) or in_shape[0] != n:
        return None
    if out_shape[0] != n:
        return None
    if isinstance(module, nn.Linear):
        return "dense" if len(in_shape) == 2 else "positions"
    if len(in_shape) == 4:
        return "conv2d"
    return None


def make_plan(
    model: nn.Module, theta: ParamDict, weights: Mapping[str, float], x_probe: Tensor
) -> GramPlan:
    """Returns the layers the structured rules handle, checked by one forward pass on x_probe.

    Args:
        model: the network.
        theta: all parameters (the point where the kernel is evaluated).
        weights: {name: η ≥ 0} for every parameter.
        x_probe: (c, ...) a few inputs; each candidate layer must be called exactly once, with
            a batched input whose first dim is c.
    """
    uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    by_name = dict(model.named_parameters())
    candidates: dict[str, tuple[tuple[str, float] | None, tuple[str, float] | None]] = {}
    for prefix, module in model.named_modules():
        is_conv = _is_plain(module, nn.Conv2d) and _conv_padding(module) is not None
        if not (_is_plain(module, nn.Linear) or is_conv):
            continue
        entries = []
        for tensor_name in ("weight", "bias"):
            entry = _tensor_entry(module, prefix, tensor_name, theta)
            if entry is not None and uses[id(by_name[entry[0]])] != 1:
                entry = None  # tied to another module: its Jacobian has two sources
            entries.append(entry)
        if entries[0] is not None or entries[1] is not None:
            candidates[prefix] = (entries[0], entries[1])
    if not candidates:
        return GramPlan(layers=(), covered=frozenset())

    seen = _probe(model, theta, list(candidates), x_probe)
    modules = dict(model.named_modules())
    layers = []
    for prefix, (w_entry, b_entry) in candidates.items():
        calls = seen.get(prefix, [])
        if len(calls) != 1:
            continue
        kind = _kind(modules[prefix], *calls[0], x_probe.shape[0])
        if kind is None:
            continue
        w_name, w_scale = (None, 0.0) if w_entry is None else (w_entry[0], w_entry[1] ** 2)
        b_name, b_scale = (None, 0.0) if b_entry is None else (b_entry[0], b_entry[1] ** 2)
        w_scale *= weights[w_name] if w_name else 0.0
        b_scale *= weights[b_name] if b_name else 0.0
        layers.append(GramLayer(prefix, kind, w_name, w_scale, b_name, b_scale))
    covered = frozenset(
        name for layer in layers for name in (layer.weight, layer.bias) if name is not None
    )
    return GramPlan(layers=tuple(layers), covered=covered)


def _probe(
    model: nn.Module, theta: ParamDict, prefixes: list[str], x: Tensor
) -> dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Runs the model once and records (input shape, output shape) of each call of each layer."""
    modules = dict(model.named_modules())
    seen: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    handles = []

    def make_hook(prefix: str):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            in_shape = tuple(args[0].shape) if args and isinstance(args[0], Tensor) else ()
            out_shape = tuple(out.shape) if isinstance(out, Tensor) else ()
            seen.setdefault(prefix, []).append((in_shape, out_shape))

        return hook

    for prefix in prefixes:
        handles.append(modules[prefix].register_forward_hook(make_hook(prefix)))
    try:
        with torch.no_grad():
            functional_call(model, theta, (x,))
    finally:
        for handle in handles:
            handle.remove()
    return seen


# Per layer: ("dense", X (c, in), G (c, O, out)) or ("jac", J_W (c, O, p) | None, J_b | None).
Features = list[tuple[str, Tensor | None, Tensor | None]]


def _positions_jacobians(
    layer: GramLayer, module: nn.Module, x: Tensor, g: Tensor
) -> tuple[str, Tensor | None, Tensor | None]:
    """Returns ("jac", J_W (c, O, out·in), J_b (c, O, out)) of a conv or per-position Linear."""
    c, n_out = g.shape[0], g.shape[1]
    if layer.kind == "conv2d":
        patches = F.unfold(
            x,
            module.kernel_size,
            dilation=module.dilation,
            padding=_conv_padding(module),
            stride=module.stride,
        )  # (c, C_in·kh·kw, L)
        g = g.reshape(c, n_out, g.shape[2], -1)  # (c, O, C_out, L)
        j_w = torch.einsum("nocl,ndl->nocd", g, patches) if layer.weight else None
    else:
        x = x.reshape(c, -1, x.shape[-1])  # (c, L, in)
        g = g.reshape(c, n_out, -1, g.shape[-1]).transpose(2, 3)  # (c, O, out, L)
        j_w = torch.einsum("nocl,nld->nocd", g, x) if layer.weight else None
    j_b = g.sum(-1) if layer.bias else None  # (c, O, out)
    return "jac", None if j_w is None else j_w.reshape(c, n_out, -1), j_b


def gram_features(model: nn.Module, theta: ParamDict, plan: GramPlan, x: Tensor) -> Features:
    """Returns the per-layer features of the inputs ``x`` (see ``Features``).

    One forward pass with a zero "tap" added to each layer output, then O backward passes.
    Assumes the examples of a batch do not interact (no batch statistics).
    """
    if not plan.layers:
        return []
    modules = dict(model.named_modules())
    inputs: dict[str, Tensor] = {}
    taps: dict[str, Tensor] = {}
    handles = []

    def make_hook(prefix: str):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
            if prefix in taps:
                raise RuntimeError(
                    f"layer {prefix!r} was called twice in one forward pass although it was "
                    "called once when the plan was made; use method='jacobian'"
                )
            inputs[prefix] = args[0].detach()
            taps[prefix] = torch.zeros_like(out, requires_grad=True)
            return out + taps[prefix]

        return hook

    for layer in plan.layers:
        handles.append(modules[layer.module].register_forward_hook(make_hook(layer.module)))
    try:
        with torch.enable_grad():
            f = outputs_2d(functional_call(model, theta, (x,)), x.shape[0])  # (c, O)
            order = [layer.module for layer in plan.layers]
            tap_list = [taps[name] for name in order]
            grads: list[list[Tensor]] = [[] for _ in order]
            n_out = f.shape[1]
            for o in range(n_out):
                g = torch.autograd.grad(
                    f[:, o].sum(), tap_list, retain_graph=o < n_out - 1, allow_unused=True
                )
                for k, gk in enumerate(g):
                    grads[k].append(torch.zeros_like(tap_list[k]) if gk is None else gk)
    finally:
        for handle in handles:
            handle.remove()
    features: Features = []
    for k, layer in enumerate(plan.layers):
        g_all = torch.stack(grads[k], dim=1)  # (c, O, *output dims)
        if layer.kind == "dense":
            features.append(("dense", inputs[layer.module], g_all))
        else:
            features.append(
                _positions_jacobians(layer, modules[layer.module], inputs[layer.module], g_all)
            )
    return features


def gram_contract(plan: GramPlan, feats1: Features, feats2: Features, trace: bool) -> Tensor | None:
    """Returns the structured layers' NTK block (c1, c2, O, O), or (c1, c2) O-summed if ``trace``.

    Returns None when the plan has no layers.
    """
    total = None
    for layer, (kind, a1, b1), (_, a2, b2) in zip(plan.layers, feats1, feats2, strict=True):
        if kind == "dense":  # a: X (c, in), b: G (c, O, out)
            gg = contract(b1, b2, trace)  # (c1, c2, O, O) or (c1, c2)
            factor = layer.weight_scale * (a1 @ a2.T) + layer.bias_scale  # (c1, c2)
            term = gg * (factor if trace else factor[:, :, None, None])
        else:  # a: J_W, b: J_b, each (c, O, p) or None
            term = None
            for j1, j2, scale in ((a1, a2, layer.weight_scale), (b1, b2, layer.bias_scale)):
                if j1 is not None and j2 is not None and scale != 0.0:
                    part = contract(j1, j2, trace) * scale
                    term = part if term is None else term + part
            if term is None:
                continue
        total = term if total is None else total + term
    return total
