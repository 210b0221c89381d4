"""Internal: per-example Jacobians with torch.func and the contractions that build NTK blocks.

Shapes: c (examples in a chunk), O (outputs), p (entries of one parameter tensor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from richness.measure._common import ParamDict, jvp, outputs_2d


def single_example_fn(model: nn.Module, frozen: Mapping[str, Tensor]) -> Callable:
    """Returns fn(diff, x) -> (O,): the model on one example, differentiable in ``diff``.

    The example gets a batch dimension of 1 before the call, so models that expect (N, ...)
    inputs work unchanged; parameters not in ``diff`` are taken from ``frozen``.
    """

    def fn(diff: ParamDict, x: Tensor) -> Tensor:
        out = functional_call(model, {**frozen, **diff}, (x.unsqueeze(0),))
        return outputs_2d(out, 1)[0]  # (O,)

    return fn


def batch_fn(model: nn.Module, frozen: Mapping[str, Tensor], x: Tensor) -> Callable:
    """Returns fn(diff) -> (N, O): the model on the batch ``x``, differentiable in ``diff``."""

    def fn(diff: ParamDict) -> Tensor:
        return outputs_2d(functional_call(model, {**frozen, **diff}, (x,)), x.shape[0])

    return fn


def jacobian_features(
    model: nn.Module, frozen: Mapping[str, Tensor], diff: ParamDict, x: Tensor
) -> dict[str, Tensor]:
    """Returns {name: (c, O, p)}: per-example Jacobians of the outputs in each tensor of ``diff``.

    Implements: J_p(x) = ∂f(x)/∂θ_p, by ``vmap`` over examples of ``jacrev``.
    """
    jac = vmap(jacrev(single_example_fn(model, frozen)), in_dims=(None, 0))(diff, x)
    return {name: j.reshape(j.shape[0], j.shape[1], -1) for name, j in jac.items()}


def contract(a: Tensor, b: Tensor, trace: bool) -> Tensor:
    """Returns Σ_p a[i, o, p] b[j, o', p]: (c1, c2, O, O), or its O-trace (c1, c2) if ``trace``.

    Args:
        a: (c1, O, p).
        b: (c2, O, p).
        trace: sum over o = o' only (the caller divides by O).
    """
    if trace:
        return (a.transpose(0, 1) @ b.permute(1, 2, 0)).sum(0)  # (O, c1, c2) -> (c1, c2)
    c1, n_out, _ = a.shape
    c2 = b.shape[0]
    block = a.reshape(c1 * n_out, -1) @ b.reshape(c2 * n_out, -1).T  # (c1 O, c2 O)
    return block.reshape(c1, n_out, c2, n_out).permute(0, 2, 1, 3)


def jvp_contract(
    model: nn.Module,
    frozen: Mapping[str, Tensor],
    primal: ParamDict,
    x1: Tensor,
    tangents: Mapping[str, Tensor],
    trace: bool,
) -> Tensor:
    """Returns J(x1)·t for each tangent t: the NTK block (c1, c2, O, O) (or (c1, c2) if ``trace``).

    Args:
        model: the network.
        frozen: parameters held fixed.
        primal: parameters differentiated (same keys as ``tangents``).
        x1: (c1, ...) inputs.
        tangents: {name: (c2, O, p)}: rows of the (weighted) Jacobian on the other inputs.
        trace: return the O-trace (the caller divides by O).

    Implements: K(x1, x2) v = J(x1) (η ⊙ J(x2)ᵀ v), one forward-mode product per row.
    """
    first = next(iter(tangents.values()))
    c2, n_out = first.shape[0], first.shape[1]
    flat = {
        name: t.reshape(c2 * n_out, *primal[name].shape) for name, t in tangents.items()
    }  # (c2 O, *shape)
    fn = batch_fn(model, frozen, x1)

    def one(t: ParamDict) -> Tensor:
        return jvp(fn, (primal,), (t,))[1]  # (c1, O)

    out = vmap(one)(flat)  # (c2 O, c1, O)
    block = out.reshape(c2, n_out, out.shape[1], n_out).permute(2, 0, 3, 1)  # (c1, c2, O, O)
    if trace:
        return block.diagonal(dim1=2, dim2=3).sum(-1)
    return block
