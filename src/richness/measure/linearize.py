"""The first-order Taylor model of a network in its parameters, and what it misses.

f_lin(x; θ) = f(x; θ0) + J(x; θ0)(θ − θ0), with J = ∂f/∂θ at the reference point θ0. A network is
lazy exactly when training keeps it close to f_lin (THEORY.md §4 C8: the gap relative to ‖Δf‖
vanishes as width grows iff r < 1/2); its leading correction is the second-order Taylor term
½ Δθᵀ ∇²f(θ0) Δθ.

Implements: THEORY.md §4 C8 ("lazy iff linearized"), with ``torch.func.jvp`` (one forward-mode
pass, the Jacobian is never formed), as neural-tangents' ``linearize``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from richness.measure._common import ParamDict, jvp, param_dict

__all__ = ["LinearizedModel", "linearization_gap", "linearize", "second_order_term"]

ParamsLike = Mapping[str, Tensor] | nn.Module


def _snapshot(model: nn.Module, params0: ParamsLike | None) -> ParamDict:
    """Returns a detached copy of θ0 (the model's current parameters when params0 is None)."""
    return {name: t.clone() for name, t in param_dict(model, params0, field="params0").items()}


def _taylor1(
    model: nn.Module, theta0: ParamDict, theta: ParamDict, args: tuple, kwargs: dict
) -> Tensor:
    """Returns f(θ0) + J(θ0)(θ − θ0) on the inputs ``args``; differentiable in ``theta``."""
    delta = {name: theta[name] - theta0[name] for name in theta0}

    def fn(p: ParamDict) -> Tensor:
        return functional_call(model, p, args, kwargs)

    f0, df = jvp(fn, (theta0,), (delta,))
    return f0 + df


def linearize(model: nn.Module, params0: ParamsLike | None = None) -> Callable[..., Tensor]:
    """Returns f_lin(*inputs, params=None): the model linearized in its parameters around θ0.

    θ0 is frozen (copied) now: ``params0`` if given, else the model's current parameters. Each
    call evaluates f_lin(x) = f(x; θ0) + J(x; θ0)(θ − θ0) at θ = the model's parameters *at call
    time* (so after training the model, ``f_lin(x)`` is the linearization around θ0 evaluated
    at the trained θ), or at ``params`` when given. The result is differentiable in θ.

    Args:
        model: any ``torch.nn.Module``; parametrized weights are handled (θ is
            ``dict(model.named_parameters())``). Buffers are read from the model at call time.
        params0: the expansion point: a mapping with the names of ``named_parameters()`` or a
            module of the same architecture. ``None``: the model's current parameters.

    Returns:
        ``f_lin(*inputs, params=None, **kwargs)`` with the model's signature; its output has
        the model's output shape, e.g. (N, O).

    Raises:
        ValueError: if ``params0`` (or later ``params``) does not have the model's names/shapes.

    Example:
        >>> import torch
        >>> nn = torch.nn
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        >>> f_lin = linearize(model)
        >>> x = torch.randn(5, 3)
        >>> torch.allclose(f_lin(x), model(x))   # at θ = θ0 the two agree
        True

    Implements: THEORY.md §4 C8.
    """
    theta0 = _snapshot(model, params0)

    def f_lin(*inputs: object, params: ParamsLike | None = None, **kwargs: object) -> Tensor:
        theta = param_dict(model, params, field="params", detach=False)
        return _taylor1(model, theta0, theta, inputs, kwargs)

    return f_lin


def second_order_term(
    model: nn.Module,
    params0: ParamsLike,
    params1: ParamsLike | None,
    x: Tensor,
) -> Tensor:
    """Returns Δθᵀ ∇²f(x; θ0) Δθ for each output, with Δθ = θ1 − θ0: shape of model(x), e.g. (N, O).

    This is d²/dt² f(x; θ0 + tΔθ) at t = 0, computed as a ``jvp`` of a ``jvp`` (no Hessian is
    formed). The second-order Taylor term is half of it:
    f(θ1) − f_lin(θ1) = ½ Δθᵀ∇²fΔθ + O(‖Δθ‖³).

    Args:
        model: any ``torch.nn.Module``.
        params0: θ0, the expansion point (mapping with the names of ``named_parameters()`` or a
            module of the same architecture).
        params1: θ1; ``None`` means the model's current parameters.
        x: (N, ...) inputs.

    Returns:
        Tensor shaped like ``model(x)``, not requiring grad.

    Measures: C8 (the leading term of the linearization gap, ‖Δh‖²/n = n^{2r−1}).
    """
    theta0 = param_dict(model, params0, field="params0")
    theta1 = param_dict(model, params1, field="params1")
    delta = {name: theta1[name] - theta0[name] for name in theta0}

    def fn(p: ParamDict) -> Tensor:
        return functional_call(model, p, (x,))

    def first(p: ParamDict) -> Tensor:
        return jvp(fn, (p,), (delta,))[1]

    return jvp(first, (theta0,), (delta,))[1].detach()


def linearization_gap(
    model: nn.Module,
    params0: ParamsLike,
    x: Tensor,
    params: ParamsLike | None = None,
) -> Tensor:
    """Returns f(x; θ) − f_lin(x; θ), the change the NTK does not explain; shaped like model(x).

    Args:
        model: any ``torch.nn.Module``.
        params0: θ0, the expansion point (e.g. a snapshot at initialization).
        x: (N, ...) inputs.
        params: θ; ``None`` means the model's current parameters.

    Returns:
        Tensor shaped like ``model(x)``, e.g. (N, O), not requiring grad. Zero for a model that
        is linear (affine) in its parameters.

    Measures: C8 (‖f − f_lin‖ relative to ‖Δf‖: → 0 with width iff r < 1/2).
    """
    theta0 = param_dict(model, params0, field="params0")
    theta = param_dict(model, params, field="params")
    with torch.no_grad():
        f = functional_call(model, theta, (x,))
    return (f - _taylor1(model, theta0, theta, (x,), {})).detach()


class _Snapshot(nn.Module):
    """Holds θ0 as non-persistent buffers so that ``.to()`` / ``.double()`` move it too."""

    def __init__(self, theta0: ParamDict) -> None:
        super().__init__()
        self._names = {name: f"p{i}" for i, name in enumerate(theta0)}  # buffer names: no dots
        for name, t in theta0.items():
            self.register_buffer(self._names[name], t, persistent=False)

    def as_dict(self) -> ParamDict:
        return {name: getattr(self, key) for name, key in self._names.items()}


class LinearizedModel(nn.Module):
    """The linearized network as a trainable module, to train side by side with the network.

    Its parameters are fresh copies of θ0 with *the same names* as ``model.named_parameters()``
    (the submodules are copied, parametrizations and buffers included, and so are the root's
    plain attributes), so the optimizer and its per-layer groups are built for it exactly as
    for the model, e.g. by ``rn.optimizer(lin, lr)``. Its forward is
    f_lin(x) = f(x; θ0) + J(x; θ0)(θ − θ0) at its own θ; training it is kernel gradient descent
    with the NTK at θ0.

    Example:
        >>> import torch
        >>> torch.manual_seed(0) and None
        >>> nn = torch.nn
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        >>> lin = LinearizedModel(model)
        >>> [n for n, _ in lin.named_parameters()] == [n for n, _ in model.named_parameters()]
        True
        >>> opt = torch.optim.SGD(lin.parameters(), lr=0.1)
        >>> x, y = torch.randn(16, 3), torch.randn(16, 1)
        >>> loss = ((lin(x) - y) ** 2).mean(); loss.backward(); opt.step()

    Implements: THEORY.md §4 C8 ("lazy iff linearized": compare a network with its linearization
    trained by the same optimizer).
    """

    def __init__(self, model: nn.Module, params0: ParamsLike | None = None) -> None:
        super().__init__()
        theta0 = _snapshot(model, params0)
        template = copy.deepcopy(model)
        template.requires_grad_(False)
        # A plain attribute (a tuple), so the template's parameters stay out of this module's.
        self._template = (template,)
        trainable = copy.deepcopy(model)
        with torch.no_grad():
            for name, p in trainable.named_parameters():
                p.copy_(theta0[name])
        for name, child in trainable.named_children():
            self.add_module(name, child)
        for name, p in trainable.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in trainable.named_buffers(recurse=False):
            self.register_buffer(name, b)
        # Plain attributes of the root (e.g. the parameterization table that rn.optimizer reads).
        internal = set(vars(nn.Module()))
        for key, value in vars(trainable).items():
            if key not in internal and key not in vars(self):
                setattr(self, key, value)
        self._theta0 = _Snapshot(theta0)

    @property
    def params0(self) -> ParamDict:
        """Returns θ0, the expansion point: {name: tensor} with the model's parameter names."""
        return self._theta0.as_dict()

    def forward(self, *inputs: object, **kwargs: object) -> Tensor:
        """Returns f_lin(inputs) at this module's parameters, shaped like the model's output."""
        theta = dict(self.named_parameters())
        buffers = {name: b for name, b in self.named_buffers() if not name.startswith("_theta0.")}
        theta0 = self._theta0.as_dict()
        delta = {name: theta[name] - theta0[name] for name in theta0}

        def fn(p: ParamDict) -> Tensor:
            return functional_call(self._template[0], {**buffers, **p}, inputs, kwargs)

        f0, df = jvp(fn, (theta0,), (delta,))
        return f0 + df
