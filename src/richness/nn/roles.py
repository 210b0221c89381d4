"""Which weight tensors scale with width, and how: the role of every parameter.

Implements: THEORY.md §1. A matrix-like weight (Linear, Conv1d/2d/3d, Embedding, Hugging Face's
Conv1D, or any type declared with `register_layer_type`, see `richness.nn.layers`) is
  input  if only its fan-out scales with width (first layer, embeddings, depthwise convs),
  hidden if fan-in and fan-out scale,
  output if only its fan-in scales (the readout).
Vector-like parameters (biases, norm gains) of width size are input-role with fan-in 1.
Parameters with no dimension that scales (a readout bias) are left alone: multiplier 1,
their own init, LR factor 1 (they are width-independent in every gauge).

The width n at which every table entry is evaluated is the model's, not the layer's: a layer
whose width dimension is k·n (a transformer MLP's n → 4n and 4n → n, GPT-2's fused q, k, v
projection n → 3n, a conv net's later stages of 2n, 4n channels) is a layer of the width-n
model, and evaluating its entry at k·n would put it at m = k at the base width (multiplier
1/k, Adam ε/k² under μP) instead of the identity. k need not be an integer nor ≥ 1: a SwiGLU
MLP's n → ⌊8n/3⌋ → n, a grouped-query attention's key and value projections n → n·H_kv/H.
n is the smallest width dimension of the model's input-role weight matrices (the embedding's
size, the first layer's fan-out), or of all its weight matrices when none is input-role: with
a base copy, the dimensions whose size differs from the base's; by role otherwise (an input or
hidden weight's fan-out, an output weight's fan-in). Each layer keeps its real fan-in
(1/√fan_in inits, per-fan-in LRs), so the k enters only there. Give a base-relative table's
base_width in the same unit (the base model's d_model: its embedding or first layer's width).

Three ways to read roles, in order of precedence: explicit `roles={name: role}`, comparison
with a `base` copy of the model at another width (the dimensions that differ are the width
dimensions; what microsoft/mup's set_base_shapes does), or position (first matrix-like weight
is input, last is output, the rest hidden; mupify's rule).

A parameter shared by two modules (tied input and output embeddings, as in GPT-2) is refused:
the two uses have different roles, so they need different multipliers and learning rates.
Untie it first (`richness.nn.hf.untie`); the tied variant is not supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from richness.nn.layers import layout_of
from richness.scaling import ROLES

__all__ = ["ParamRole", "infer_roles"]


@dataclass(frozen=True)
class ParamRole:
    """The role of one parameter and the sizes its table entry is evaluated at.

    Attributes:
      name: the parameter's name in `model.named_parameters()` (before parameterization).
      module: the owning module's name.
      attr: "weight", "bias", ...
      role: "input", "hidden", "output", or None for a width-independent parameter.
      fan_in: C_in · prod(kernel) for Linear/Conv weights (the layout's fan-in), 1 for
        embeddings and vectors.
      width: n, the model's width, the same for every parameter with a role (see the module
        docstring); for a width-independent parameter, its size.
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


def _entries(model: nn.Module) -> list[tuple[str, str, nn.Module, str, tuple[int, ...]]]:
    """(param name, module name, module, attr, shape) for every directly owned parameter."""
    out = []
    for mod_name, module in model.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            full = f"{mod_name}.{attr}" if mod_name else attr
            out.append((full, mod_name, module, attr, tuple(param.shape)))
    return out


def _check_untied(entries: list) -> None:
    """Raises if one parameter tensor is owned by two modules (tied weights)."""
    owners: dict[int, str] = {}
    for full, _, module, attr, _ in entries:
        key = id(getattr(module, attr))
        if key in owners:
            raise ValueError(
                f"parameter {full!r} is tied to {owners[key]!r} (the same tensor): the two uses "
                "have different roles (an embedding is input, a readout output), so they need "
                "different multipliers and learning rates; untie them first, e.g. "
                "richness.nn.hf.untie(model) or build the model with tie_word_embeddings=False"
            )
        owners[key] = full


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
      ValueError: an explicit role is unknown or names no parameter; two modules share a
        parameter (tied weights); the base model has different parameters; a weight has no
        dimension that scales with width; fewer than two matrix-like weights when reading
        roles by position.
      TypeError: a parameter belongs to a module type whose role can't be read.
    """
    entries = _entries(model)
    if not entries:
        raise ValueError("model has no parameters to parameterize")
    _check_untied(entries)
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
    matrix_entries = [e for e in entries if layout_of(e[2]) is not None and e[3] == "weight"]
    read = []  # (name, module name, attr, role, fan-in, width dimensions, matrix)
    for full, mod_name, module, attr, shape in entries:
        layout = layout_of(module) if attr == "weight" else None
        is_matrix = layout is not None
        if not is_matrix and len(shape) > 1:
            raise TypeError(
                f"parameter {full!r} {list(shape)} belongs to {type(module).__name__}, whose "
                "role can't be read; pass roles={" + repr(full) + ": 'input'|'hidden'|'output'}"
            )
        fan_in = layout.fan_in(shape) if layout is not None else 1
        explicit_role = explicit.get(full, explicit.get(mod_name))
        if layout is not None:
            out_dim, in_dim = layout.fan_out_dim, layout.fan_in_dim
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
                role = (
                    "input"
                    if index == 0 or in_dim is None  # an embedding reads integer ids
                    else "output"
                    if index == len(matrix_entries) - 1
                    else "hidden"
                )
            base_shape = None if base_shapes is None else base_shapes[full]
            dims = _width_dims(role, shape, base_shape, out_dim, in_dim)
        else:
            if explicit_role is not None:
                role = explicit_role
            elif base_shapes is not None:
                role = "input" if base_shapes[full] != shape else "fixed"
            else:
                last_module = matrix_entries[-1][1] if matrix_entries else None
                role = "fixed" if mod_name == last_module else "input"
            dims = (math.prod(shape) if shape else 1,)
        read.append((full, mod_name, attr, role, fan_in, dims, is_matrix))
    scaled = [(role, dims) for _, _, _, role, _, dims, matrix in read if matrix and role != "fixed"]
    widths = [d for role, dims in scaled if role == "input" for d in dims]
    widths = widths or [d for _, dims in scaled for d in dims]
    nominal = min(widths) if widths else None
    return {
        full: ParamRole(
            name=full,
            module=mod_name,
            attr=attr,
            role=None if role == "fixed" else role,
            fan_in=fan_in,
            width=dims[0] if nominal is None or role == "fixed" else nominal,
            matrix=is_matrix,
        )
        for full, mod_name, attr, role, fan_in, dims, is_matrix in read
    }


def _width_dims(
    role: str,
    shape: tuple[int, ...],
    base_shape: tuple[int, ...] | None,
    out_dim: int,
    in_dim: int | None,
) -> tuple[int, ...]:
    """The sizes of a weight's dimensions that scale with width.

    With a base copy: the dimensions whose size differs from the base's. By role otherwise:
    the fan-out of an input or hidden weight, the fan-in of an output weight (a hidden weight's
    fan-in is left out: a depthwise conv read by position has fan-in dimension 1).
    """
    if base_shape is not None:
        dims = tuple(a for a, b in zip(shape, base_shape, strict=True) if a != b)
        if dims:
            return dims
    if role == "output" and in_dim is not None:
        return (shape[in_dim],)
    return (shape[out_dim],)


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
