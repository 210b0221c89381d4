"""Internal helpers shared by the measurement instruments.

Parameter dictionaries keyed like ``model.named_parameters()`` (which, for a weight parametrized
with ``torch.nn.utils.parametrize``, is ``"<layer>.parametrizations.weight.original"``), input
coercion to the model's dtype and device, and the (N, O) view of a model's output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.func
from torch import Tensor, nn
from torch.nn.utils import parametrize

ParamDict = dict[str, Tensor]


def parameter_names(model: nn.Module) -> list[str]:
    """Returns the names of ``model.named_parameters()``, raising if there are none."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = [name for name, _ in model.named_parameters()]
    if not names:
        raise ValueError(
            f"model {type(model).__name__} has no parameters: there is nothing to differentiate"
        )
    return names


def param_dict(
    model: nn.Module,
    params: Mapping[str, Tensor] | nn.Module | None = None,
    *,
    field: str = "params",
    detach: bool = True,
) -> ParamDict:
    """Returns {name: tensor} for every parameter of ``model``, in ``named_parameters`` order.

    Args:
        model: the module whose parameter names are the keys.
        params: ``None`` (the model's current parameters), a mapping with exactly the model's
            parameter names, or a module of the same architecture (e.g. a ``copy.deepcopy``
            snapshot) whose parameters are taken.
        field: the argument name used in error messages.
        detach: detach the tensors from autograd.

    Raises:
        ValueError: if the names do not match the model's, or a shape differs.
    """
    names = parameter_names(model)
    if params is None:
        source: Mapping[str, Tensor] = dict(model.named_parameters())
    elif isinstance(params, nn.Module):
        source = dict(params.named_parameters())
    elif isinstance(params, Mapping):
        source = params
    else:
        raise TypeError(
            f"{field} must be None, a mapping name -> Tensor or an nn.Module, "
            f"got {type(params).__name__}"
        )
    missing = [n for n in names if n not in source]
    unexpected = [n for n in source if n not in set(names)]
    if missing or unexpected:
        raise ValueError(
            f"{field} must have exactly the names of model.named_parameters()\n"
            f"missing: {missing}\nunexpected: {unexpected}"
        )
    reference = dict(model.named_parameters())
    out: ParamDict = {}
    for name in names:
        value = source[name]
        if not isinstance(value, Tensor):
            raise TypeError(f"{field}[{name!r}] must be a Tensor, got {type(value).__name__}")
        if value.shape != reference[name].shape:
            raise ValueError(
                f"{field}[{name!r}] has the wrong shape\n"
                f"expected: {tuple(reference[name].shape)}\ngot: {tuple(value.shape)}"
            )
        out[name] = value.detach() if detach else value
    return out


def parameter_aliases(model: nn.Module) -> dict[str, str]:
    """Maps "<layer>.weight" to "<layer>.parametrizations.weight.original" for parametrized tensors.

    Lets users key per-parameter settings by the name they see in the layer, while the
    functional calls need the name of the stored (original) tensor.
    """
    aliases: dict[str, str] = {}
    for prefix, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for tensor_name, plist in module.parametrizations.items():
            if hasattr(plist, "original"):
                dot = f"{prefix}." if prefix else ""
                aliases[f"{dot}{tensor_name}"] = f"{dot}parametrizations.{tensor_name}.original"
    return aliases


def model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """Returns the dtype and device of the model's first floating-point parameter."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype, p.device
    p = next(model.parameters())
    return torch.get_default_dtype(), p.device


def coerce_inputs(x: Tensor, model: nn.Module, field: str) -> Tensor:
    """Returns ``x`` on the model's device; floating inputs also take the model's dtype.

    Raises:
        TypeError: if ``x`` is not a Tensor.
        ValueError: if ``x`` has no batch dimension.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{field} must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{field} must have a leading batch dimension N, got a 0-d tensor")
    dtype, device = model_dtype_device(model)
    if x.is_floating_point():
        return x.to(device=device, dtype=dtype)
    return x.to(device=device)


def check_same_features(x1: Tensor, x2: Tensor) -> None:
    """Raises ValueError unless x1 and x2 agree on every dimension but the batch one."""
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            "x2 must have the same feature shape as x1 (all dims but the first)\n"
            f"x1.shape: {tuple(x1.shape)}\nx2.shape: {tuple(x2.shape)}"
        )


def outputs_2d(out: object, n: int) -> Tensor:
    """Returns the model output viewed as (N, O): (N,) -> (N, 1), (N, *dims) -> (N, prod(dims)).

    Raises:
        TypeError: if the model did not return a Tensor.
        ValueError: if the output has no batch dimension of size N.
    """
    if not isinstance(out, Tensor):
        raise TypeError(f"the model must return a Tensor of shape (N, O), got {type(out).__name__}")
    if out.ndim == 0 or out.shape[0] != n:
        raise ValueError(
            "the model output must have a leading batch dimension N\n"
            f"expected: ({n}, O)\ngot: {tuple(out.shape)}"
        )
    return out.reshape(n, -1)


def check_chunk_size(chunk_size: int | None) -> None:
    """Raises ValueError unless chunk_size is None or a positive int."""
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be None or an int >= 1, got {chunk_size!r}")


def jvp(fn: Callable, primals: tuple, tangents: tuple) -> tuple[Any, Any]:
    """``torch.func.jvp`` without torch's own DeprecationWarning on first use.

    torch 2.13 loads its forward-mode decompositions with ``torch.jit.script`` the first time a
    dual tensor is made, which warns "`torch.jit.script` is deprecated" from inside torch; with
    warnings as errors (our pytest configuration, and users who copy it) the first ``jvp``
    would fail. Exactly that message is silenced, nothing else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning
        )
        return torch.func.jvp(fn, primals, tangents)
