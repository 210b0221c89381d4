"""The empirical neural tangent kernel of any torch.nn.Module, and how far it moved.

K(x1, x2) = Σ_p η_p J_p(x1) J_p(x2)ᵀ, with J_p = ∂f/∂θ_p the Jacobian of the outputs in the
parameter tensor θ_p and η_p its learning rate (1 by default). Under SGD with per-tensor learning
rates η_p, the function moves by Δf(x) = −K(x, X) ∇_f L to first order, so this weighted kernel is
the one gradient descent uses: it is invariant under the gauge (g, σ, η) → (θ·g, σ/θ, η/θ²), while
the unweighted J Jᵀ is not.

Implements: THEORY.md §3 (r = 0 is kernel regression with the NTK), §4 C8/C12 (kernel movement).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from richness.measure import _gram, _jacobian
from richness.measure._common import (
    ParamDict,
    check_chunk_size,
    check_same_features,
    coerce_inputs,
    param_dict,
    parameter_aliases,
    parameter_names,
)

__all__ = [
    "NtkMethod",
    "empirical_ntk",
    "kernel_alignment",
    "kernel_distance",
    "lr_weights_from_optimizer",
]


class NtkMethod(str, enum.Enum):  # noqa: UP042 (members compare equal to their strings)
    """How `empirical_ntk` computes the kernel. All give the same K (tested in float64).

    Attributes:
        JACOBIAN: per-example Jacobians (``vmap`` of ``jacrev``) contracted parameter by
            parameter. The simple, safe default for any module; memory about 2·chunk·O·P.
        NTK_VP: NTK-vector products: the η-weighted Jacobian rows of a chunk of x2 (reverse
            mode) pushed through all of x1 by forward mode (``vmap`` of ``jvp``); J(x1) is never
            held. For models whose Jacobian does not fit; one forward-mode pass per row.
        GRAM: structured derivatives (arXiv:2206.08720). For each nn.Linear applied once per
            example to (N, in) inputs, K factorizes into (input Gram) ⊙ (output-gradient Gram)
            and no Jacobian is formed; nn.Conv2d (and nn.Linear on (N, T.., in)) get their
            per-example Jacobians from one batched product of input patches and output
            gradients, without vmap. Every other parameter (norms, embeddings, custom layers,
            tied or reused weights, non-scalar parametrizations) falls back to JACOBIAN.
            Fastest by far for wide MLPs and readouts. Scalar parametrizations (multipliers)
            are detected by probing their derivative.

    Example:
        >>> NtkMethod("gram") is NtkMethod.GRAM and NtkMethod.GRAM == "gram"
        True
    """

    JACOBIAN = "jacobian"
    NTK_VP = "ntk_vp"
    GRAM = "gram"


def _parse_method(method: NtkMethod | str) -> NtkMethod:
    try:
        return NtkMethod(method)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in NtkMethod)
        raise ValueError(f"method={method!r} is unknown; allowed: {allowed}") from None


def _resolve_lr_weights(
    model: nn.Module, lr_weights: Mapping[str, float] | None
) -> dict[str, float]:
    """Returns {name: η_p} for every parameter: given values, 1.0 for the others."""
    names = parameter_names(model)
    weights = dict.fromkeys(names, 1.0)
    if lr_weights is None:
        return weights
    if not isinstance(lr_weights, Mapping):
        raise TypeError(
            f"lr_weights must be None or a mapping name -> float, got {type(lr_weights).__name__}"
        )
    aliases = parameter_aliases(model)
    for key, value in lr_weights.items():
        name = key if key in weights else aliases.get(key)
        if name is None:
            raise ValueError(
                f"lr_weights has an unknown parameter name {key!r}; "
                f"valid names (model.named_parameters()): {names}"
            )
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"lr_weights[{key!r}]={value} must be finite and >= 0")
        weights[name] = value
    return weights


def lr_weights_from_optimizer(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, float]:
    """Returns {name: lr} for every parameter of ``model``, read off the optimizer's groups.

    Parameters the optimizer does not hold get 0 (they do not move). Pass the result as
    ``empirical_ntk(..., lr_weights=...)`` to get the kernel that SGD with these groups uses.

    Raises:
        ValueError: if a parameter appears in several groups with different learning rates.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    weights = dict.fromkeys(names.values(), 0.0)
    assigned: dict[str, float] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names.get(id(p))
            if name is None:
                continue
            lr = float(group["lr"])
            if name in assigned and assigned[name] != lr:
                raise ValueError(f"parameter {name!r} is in two optimizer groups with different lr")
            assigned[name] = lr
            weights[name] = lr
    return weights


def _block_loop(
    feat: Callable[[Tensor], object],
    block: Callable[[object, object], Tensor],
    x1: Tensor,
    x2: Tensor | None,
    chunk_size: int | None,
    trace: bool,
    dtype: torch.dtype,
) -> Tensor:
    """Fills K block by block over chunks of x1 and x2; symmetric blocks are copied when x2 is None.

    ``feat`` turns a chunk of inputs into whatever ``block(f1, f2)`` contracts; the features of a
    row block are computed once, those of a column block once per row block.
    """
    symmetric = x2 is None
    xb = x1 if symmetric else x2
    n1, n2 = x1.shape[0], xb.shape[0]
    step1 = n1 if chunk_size is None else chunk_size
    step2 = n2 if chunk_size is None else chunk_size
    out: Tensor | None = None
    for a in range(0, n1, step1):
        rows = slice(a, min(a + step1, n1))
        f1 = feat(x1[rows])
        for b in range(0, n2, step2):
            cols = slice(b, min(b + step2, n2))
            if out is not None and symmetric and b < a:  # the mirror block is already there
                done = out[cols, rows]
                out[rows, cols] = done.T if trace else done.permute(1, 0, 3, 2)
                continue
            k = block(f1, f1 if symmetric and a == b else feat(xb[cols]))
            if out is None:
                shape = (n1, n2) if trace else (n1, n2, k.shape[2], k.shape[3])
                out = torch.empty(shape, dtype=dtype, device=k.device)
            out[rows, cols] = k
    if out is None:
        raise RuntimeError("no block was computed")  # unreachable: N >= 1 is checked
    return out


def _column_loop(
    block: Callable[[Tensor, Tensor], Tensor],
    x1: Tensor,
    x2: Tensor | None,
    chunk_size: int | None,
    trace: bool,
    dtype: torch.dtype,
) -> Tensor:
    """Fills K one block of columns (chunk of x2) at a time, each against all rows (x1) at once.

    For forward-mode products the cost of a column block is one pass of its tangents through
    the rows, so rows are never split. When x2 is None only rows up to the block's end are
    computed and the rest is copied from the symmetric half.
    """
    symmetric = x2 is None
    xb = x1 if symmetric else x2
    n1, n2 = x1.shape[0], xb.shape[0]
    step = n2 if chunk_size is None else chunk_size
    out: Tensor | None = None
    for b in range(0, n2, step):
        cols = slice(b, min(b + step, n2))
        end = cols.stop if symmetric else n1
        k = block(x1[:end], xb[cols])  # (end, c2, O, O) or (end, c2)
        if out is None:
            shape = (n1, n2) if trace else (n1, n2, k.shape[2], k.shape[3])
            out = torch.empty(shape, dtype=dtype, device=k.device)
        out[:end, cols] = k
        if symmetric and b > 0:
            upper = out[:b, cols]
            out[cols, :b] = upper.T if trace else upper.permute(1, 0, 3, 2)
    if out is None:
        raise RuntimeError("no block was computed")  # unreachable: N >= 1 is checked
    return out


def empirical_ntk(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    method: NtkMethod | str = NtkMethod.JACOBIAN,
    trace: bool = False,
    lr_weights: Mapping[str, float] | None = None,
    chunk_size: int | None = None,
    params: Mapping[str, Tensor] | nn.Module | None = None,
) -> Tensor:
    """Returns the empirical NTK K(x1, x2): (N1, N2, O, O), or (N1, N2) with ``trace=True``.

    K[i, j, o, o'] = Σ_p η_p ∂f_o(x1_i)/∂θ_p · ∂f_o'(x2_j)/∂θ_p, summed over every parameter
    tensor of ``model`` (``named_parameters()``; for a weight parametrized with
    ``torch.nn.utils.parametrize`` that is its stored ``original``, so a multiplier g enters
    as g² in K). Works through parametrizations and on any module whose outputs are (N, O);
    an (N,) output counts as O = 1 and (N, *dims) is flattened to O = prod(dims).

    Examples must not interact inside a batch (no batch statistics, e.g. BatchNorm in train
    mode): the kernel is that of the per-example function.

    Args:
        model: any ``torch.nn.Module`` mapping a batch (N, ...) to outputs (N, O).
        x1: (N1, ...) inputs; floating inputs are cast to the model's dtype and device.
        x2: (N2, ...) inputs with the same trailing shape; ``None`` means x1 (then K is
            symmetric and only the upper blocks are computed).
        method: an `NtkMethod` or its value: "jacobian" (default), "ntk_vp" or "gram".
        trace: return the mean over o of K[:, :, o, o], shape (N1, N2) — the NTK-parameterization
            limit is δ_oo' times it (as neural-tangents' ``trace_axes=(-1,)``).
        lr_weights: {parameter name: η_p ≥ 0}; missing names get 1. Names as in
            ``model.named_parameters()``; for a parametrized tensor "<layer>.weight" is accepted
            for "<layer>.parametrizations.weight.original". See `lr_weights_from_optimizer`.
        chunk_size: number of examples per block (``None``: one block). For "jacobian" and
            "gram", blocks of x1 and of x2, and peak memory is about 2·chunk_size·O·P entries
            (the Jacobians of two blocks; "gram" needs none for nn.Linear). For "ntk_vp", blocks
            of x2 only, each pushed through all of x1 at once: about chunk_size·O·P entries of
            tangents plus chunk_size·O·N1 forward-mode activations.
        params: evaluate the kernel at these parameters instead of the model's current ones: a
            mapping with the names of ``named_parameters()`` or a module of the same
            architecture (e.g. a ``copy.deepcopy`` snapshot at initialization).

    Returns:
        (N1, N2, O, O) tensor in the model's dtype and device, or (N1, N2) if ``trace``. It does
        not require grad.

    Raises:
        ValueError: unknown ``method``, mismatched feature shapes of x1 and x2, bad
            ``chunk_size``, unknown or negative ``lr_weights``, ``params`` with wrong names.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(3, 2, bias=False).double()
        >>> x = torch.randn(4, 3, dtype=torch.float64)
        >>> K = empirical_ntk(model, x)
        >>> K.shape
        torch.Size([4, 4, 2, 2])
        >>> torch.allclose(K[:, :, 0, 0], x @ x.T)
        True

    Implements: THEORY.md §3 (NTK of the r = 0 endpoint) and §4 C8/C12, following the kernel
    shape conventions of neural-tangents' ``empirical_ntk_fn`` (arXiv:2206.08720).
    """
    method = _parse_method(method)
    check_chunk_size(chunk_size)
    weights = _resolve_lr_weights(model, lr_weights)
    theta = param_dict(model, params)
    x1 = coerce_inputs(x1, model, "x1")
    if x2 is not None:
        x2 = coerce_inputs(x2, model, "x2")
        check_same_features(x1, x2)
    if x1.shape[0] == 0 or (x2 is not None and x2.shape[0] == 0):
        raise ValueError("x1 and x2 must hold at least one example (N >= 1)")
    dtype = theta[next(iter(theta))].dtype

    active = [name for name in theta if weights[name] > 0]
    if method is NtkMethod.GRAM:
        plan = _gram.make_plan(model, theta, weights, x1[: min(2, x1.shape[0])])
    else:
        plan = _gram.GramPlan(layers=(), covered=frozenset())
    jac_names = [name for name in active if name not in plan.covered]
    diff: ParamDict = {name: theta[name] for name in jac_names}
    frozen: ParamDict = {name: t for name, t in theta.items() if name not in diff}
    sqrt_w = {name: math.sqrt(weights[name]) for name in jac_names}
    eta = {name: weights[name] for name in jac_names}

    n_out: list[int] = []  # O, recorded by the features (needed to average the trace)

    def jacobians(x: Tensor, scale: Mapping[str, float]) -> dict[str, Tensor]:
        if not diff:
            return {}
        jac = _jacobian.jacobian_features(model, frozen, diff, x)
        n_out.append(next(iter(jac.values())).shape[1])
        return {name: j if scale[name] == 1.0 else j * scale[name] for name, j in jac.items()}

    def contract_all(a: dict[str, Tensor], b: dict[str, Tensor]) -> Tensor | None:
        total = None
        for name in a:
            term = _jacobian.contract(a[name], b[name], trace)
            total = term if total is None else total + term
        return total

    if method is NtkMethod.JACOBIAN:
        feat = lambda x: jacobians(x, sqrt_w)  # noqa: E731
        kernel = _block_loop(feat, _require(contract_all), x1, x2, chunk_size, trace, dtype)
    elif method is NtkMethod.NTK_VP:
        if not diff:
            raise ValueError("every lr_weights entry is 0: the kernel is identically zero")

        def block(x_rows: Tensor, x_cols: Tensor) -> Tensor:
            tangents = jacobians(x_cols, eta)  # (c2, O, p): η-weighted Jacobian rows of x2
            return _jacobian.jvp_contract(model, frozen, diff, x_rows, tangents, trace)

        kernel = _column_loop(block, x1, x2, chunk_size, trace, dtype)
    else:

        def feat(x: Tensor) -> tuple[_gram.Features, dict[str, Tensor]]:
            structured = _gram.gram_features(model, theta, plan, x)
            # every feature but a dense layer's input X is (c, O, ...)
            n_out.extend((b if b is not None else a).shape[1] for _, a, b in structured[:1])
            return structured, jacobians(x, sqrt_w)

        def block(f1: tuple, f2: tuple) -> Tensor:
            parts = [_gram.gram_contract(plan, f1[0], f2[0], trace), contract_all(f1[1], f2[1])]
            parts = [p for p in parts if p is not None]
            if not parts:
                raise ValueError("every lr_weights entry is 0: the kernel is identically zero")
            return parts[0] if len(parts) == 1 else parts[0] + parts[1]

        kernel = _block_loop(feat, block, x1, x2, chunk_size, trace, dtype)

    if trace:
        kernel = kernel / n_out[0]
    return kernel.detach()


def _require(fn: Callable[[dict, dict], Tensor | None]) -> Callable[[dict, dict], Tensor]:
    """Wraps a contraction so that an all-zero weighting is a clear error, not a None."""

    def wrapped(a: dict, b: dict) -> Tensor:
        out = fn(a, b)
        if out is None:
            raise ValueError("every lr_weights entry is 0: the kernel is identically zero")
        return out

    return wrapped


def _as_float64(k: Tensor, field: str) -> Tensor:
    if not isinstance(k, Tensor):
        k = torch.as_tensor(k)
    if not (k.is_floating_point() or k.is_complex()):
        raise TypeError(f"{field} must be a floating tensor, got dtype {k.dtype}")
    return k.detach().to(torch.float64)


def kernel_alignment(k0: Tensor, k1: Tensor) -> float:
    """Returns the kernel alignment <K0, K1>_F / (‖K0‖_F ‖K1‖_F), in [-1, 1] (1: same up to scale).

    Args:
        k0: a kernel of any shape, e.g. (N, N, O, O) or (N, N).
        k1: a kernel of the same shape.

    Raises:
        ValueError: if the shapes differ or a kernel is zero.

    Measures: C8 (kernel movement during training); Cristianini et al. 2001.
    """
    a, b = _as_float64(k0, "k0"), _as_float64(k1, "k1")
    if a.shape != b.shape:
        raise ValueError(
            f"k0 and k1 must have the same shape\nk0.shape: {tuple(a.shape)}\n"
            f"k1.shape: {tuple(b.shape)}"
        )
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        raise ValueError("kernel_alignment is undefined for a zero kernel (k0 or k1 is all zeros)")
    return float((a * b).sum() / (na * nb))


def kernel_distance(k0: Tensor, k1: Tensor) -> float:
    """Returns 1 − kernel_alignment(k0, k1): 0 if the kernel did not move (up to scale).

    Args:
        k0: a kernel, e.g. the NTK at initialization, (N, N, O, O) or (N, N).
        k1: the same kernel later in training, same shape.

    Measures: C8 (lazy training keeps the NTK fixed; rich training moves it), as the kernel
    distance of Fort et al. 2020 (arXiv:2010.15110).
    """
    return 1.0 - kernel_alignment(k0, k1)
