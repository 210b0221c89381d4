"""Which weight tensors scale with width, and how: the role of every parameter.

Implements: THEORY.md §1. A matrix-like weight (Linear, Conv1d/2d/3d, Embedding) is
  input  if only its fan-out scales with width (first layer, embeddings, depthwise convs),
  hidden if fan-in and fan-out scale,
  output if only its fan-in scales (the readout).
Vector-like parameters (biases, norm gains) of width size are input-role with fan-in 1.
Parameters with no dimension that scales (a readout bias) are left alone: multiplier 1,
their own init, LR factor 1 (they are width-independent in every gauge).

Three ways to read roles, in order of precedence: explicit `roles={name: role}`, comparison
with a `base` copy of the model at another width (the dimensions that differ are the width
dimensions; what microsoft/mup's set_base_shapes does), or position (first matrix-like weight
is input, last is output, the rest hidden; mupify's rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from richness.scaling import ROLES

__all__ = ["ParamRole", "infer_roles"]

_MATRIX_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


@dataclass(frozen=True)
class ParamRole:
    """The role of one parameter and the sizes its table entry is evaluated at.

    Attributes:
      name: the parameter's name in `model.named_parameters()` (before parameterization).
      module: the owning module's name.
      attr: "weight", "bias", ...
      role: "input", "hidden", "output", or None for a width-independent parameter.
      fan_in: C_in · prod(kernel) for Linear/Conv weights, 1 for embeddings and vectors.
      width: the size of the dimension that scales with width (n for this model).
      matrix: whether it is a weight matrix (initialized from the table) or a vector
        (bias, norm gain: keeps its zero / one init).
    """

    name: str
    module: str
    attr: str
    role: str | None
    fan_in: int
    width: int
    matrix: bool


def _matrix_dims(module: nn.Module) -> tuple[int, int | None]:
    """(fan-out dim, fan-in dim) of a matrix-like module's weight; Embedding has no fan-in dim."""
    if isinstance(module, nn.Embedding):
        return 1, None
    return 0, 1


def _fan_in(module: nn.Module, shape: tuple[int, ...]) -> int:
    if isinstance(module, nn.Embedding):
        return 1
    return math.prod(shape[1:])


def _entries(model: nn.Module) -> list[tuple[str, str, nn.Module, str, tuple[int, ...]]]:
    """(param name, module name, module, attr, shape) for every directly owned parameter."""
    out = []
    for mod_name, module in model.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            full = f"{mod_name}.{attr}" if mod_name else attr
            out.append((full, mod_name, module, attr, tuple(param.shape)))
    return out


def _layer_list(entries: list) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, _, _, _, shape in entries)


def infer_roles(
    model: nn.Module,
    base: nn.Module | None = None,
    roles: dict[str, str] | None = None,
) -> dict[str, ParamRole]:
    """Reads the role of every parameter of `model`.

    Args:
      model: the model at its target width.
      base: the same architecture at another width (e.g. the base width), or None to read
        roles by position.
      roles: explicit roles by parameter name ("fc1.weight") or module name ("fc1"); these
        win over inference. Use role "fixed" to leave a parameter alone.

    Returns:
      {parameter name: ParamRole}.

    Raises:
      ValueError: an explicit role is unknown or names no parameter; the base model has
        different parameters; a weight has no dimension that scales with width; fewer than
        two matrix-like weights when reading roles by position.
      TypeError: a parameter belongs to a module type whose role can't be read.
    """
    entries = _entries(model)
    if not entries:
        raise ValueError("model has no parameters to parameterize")
    explicit = dict(roles or {})
    allowed = (*ROLES, "fixed")
    known = {e[0] for e in entries} | {e[1] for e in entries}
    for key, role in explicit.items():
        if role not in allowed:
            raise ValueError(f"roles[{key!r}]={role!r} is not one of {allowed}")
        if key not in known:
            raise ValueError(
                f"roles names {key!r}, which is neither a parameter nor a module of the model; "
                f"parameters: {_layer_list(entries)}"
            )
    base_shapes = None
    if base is not None:
        base_shapes = {e[0]: e[4] for e in _entries(base)}
        if set(base_shapes) != {e[0] for e in entries}:
            raise ValueError(
                "base has different parameters from model: "
                f"only in model {sorted({e[0] for e in entries} - set(base_shapes))}, "
                f"only in base {sorted(set(base_shapes) - {e[0] for e in entries})}"
            )
    matrix_entries = [e for e in entries if isinstance(e[2], _MATRIX_MODULES) and e[3] == "weight"]
    out: dict[str, ParamRole] = {}
    for full, mod_name, module, attr, shape in entries:
        is_matrix = isinstance(module, _MATRIX_MODULES) and attr == "weight"
        if not is_matrix and len(shape) > 1:
            raise TypeError(
                f"parameter {full!r} {list(shape)} belongs to {type(module).__name__}, whose "
                "role can't be read; pass roles={" + repr(full) + ": 'input'|'hidden'|'output'}"
            )
        fan_in = _fan_in(module, shape) if is_matrix else 1
        explicit_role = explicit.get(full, explicit.get(mod_name))
        if is_matrix:
            out_dim, in_dim = _matrix_dims(module)
            if explicit_role is not None:
                role = explicit_role
            elif base_shapes is not None:
                role = _role_from_base(full, shape, base_shapes[full], out_dim, in_dim)
            else:
                if len(matrix_entries) < 2:
                    raise ValueError(
                        "roles can't be read by position: the model has fewer than two weight "
                        f"layers ({_layer_list(matrix_entries)}); pass base= (the same model "
                        "at another width) or roles={name: role}"
                    )
                index = [e[0] for e in matrix_entries].index(full)
                is_embedding = isinstance(module, nn.Embedding)
                role = (
                    "input"
                    if index == 0 or is_embedding
                    else "output"
                    if index == len(matrix_entries) - 1
                    else "hidden"
                )
            width = shape[in_dim] if role == "output" and in_dim is not None else shape[out_dim]
        else:
            if explicit_role is not None:
                role = explicit_role
            elif base_shapes is not None:
                role = "input" if base_shapes[full] != shape else "fixed"
            else:
                last_module = matrix_entries[-1][1] if matrix_entries else None
                role = "fixed" if mod_name == last_module else "input"
            width = math.prod(shape) if shape else 1
        out[full] = ParamRole(
            name=full,
            module=mod_name,
            attr=attr,
            role=None if role == "fixed" else role,
            fan_in=fan_in,
            width=width,
            matrix=is_matrix,
        )
    return out


def _role_from_base(
    name: str,
    shape: tuple[int, ...],
    base_shape: tuple[int, ...],
    out_dim: int,
    in_dim: int | None,
) -> str:
    if len(shape) != len(base_shape):
        raise ValueError(f"{name}: model shape {list(shape)} and base shape {list(base_shape)}")
    out_scales = shape[out_dim] != base_shape[out_dim]
    in_scales = in_dim is not None and shape[in_dim] != base_shape[in_dim]
    if out_scales and in_scales:
        return "hidden"
    if out_scales:
        return "input"
    if in_scales:
        return "output"
    raise ValueError(
        f"weight {name!r} has shape {list(shape)} in the model and in the base: no dimension "
        "scales with width, so its role can't be inferred; give the base a different width, "
        f"or pass roles={{{name!r}: 'input'|'hidden'|'output'|'fixed'}}"
    )
