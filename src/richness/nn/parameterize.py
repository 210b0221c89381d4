"""`parameterize(model, p)`: multipliers, initialization and LR factors from a table.

Implements: THEORY.md §1 and §3: every parameter gets the (g, σ, η) of its role, evaluated at
its width and fan-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from richness.nn.hf import embedding_scale_ratio, scale_attention
from richness.nn.multiplier import Multiplier
from richness.nn.roles import infer_roles
from richness.scaling import Parameterization

__all__ = [
    "Init",
    "effective_weights",
    "load_effective_weights",
    "multipliers",
    "parameterize",
    "table_of",
]

Init = Literal["normal", "rescale", "keep"]
_INITS = ("normal", "rescale", "keep")


def parameterize(
    model: nn.Module,
    p: Parameterization,
    base: nn.Module | None = None,
    *,
    roles: dict[str, str] | None = None,
    init: Init = "normal",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Applies the table `p` to `model` in place and returns it.

    Each weight matrix W of role ρ, width n and fan-in f gets the multiplier g = p.layer(ρ, n,
    f).multiplier (a parametrization: `layer.weight` reads g·W), the LR factor that
    `rn.optimizer` puts in its param group, and, by `init`:
      "normal":  W ~ N(0, σ²) with σ = the table's init std (biases 0, norm gains 1); a
                 matrix that is exactly zero stays zero (a deliberate zero init, like TP V's
                 zero query: `Transformer(zero_query=True)`);
      "rescale": the model's own init scaled by g·σ·√f (its deviation from the standard
                 1/√f), so a base-relative table at the base width leaves the model unchanged;
      "keep":    the effective weights g·W are left exactly as they are.
    Vectors keep their effective values (norm gains 1), except that "normal" zeroes biases.
    Attention modules (Hugging Face transformers ≥ 5: a float `scaling` and a head size, or a
    registered type; see `richness.nn.hf`) get the table's attention logit scale, 1/d_head at
    r = 1/2 (THEORY.md §5); an attention-like module that can't be read is warned about.
    The table travels in the Multiplier modules (`richness.nn.multiplier`): nothing is added
    to `model`'s own attributes.

    Args:
      model: any torch module (Linear, Conv1d/2d/3d, Embedding, Hugging Face's Conv1D, types
        declared with `rn.nn.register_layer_type`, biases, norm gains).
      p: the table (`rn.richness(...)` or `rn.preset(...)`).
      base: the same architecture at another width, to read roles; None reads by position.
      roles: explicit roles by parameter or module name (see `infer_roles`).
      init: "normal", "rescale" or "keep".
      generator: a torch.Generator for "normal" (defaults to torch's global RNG).

    Returns:
      `model`, parameterized.

    Raises:
      ValueError: unknown init; the model is already parameterized; roles can't be inferred.

    Warns:
      UserWarning: an attention-like module whose logit scale can't be read (`richness.nn.hf`).

    Example:
      >>> import richness as rn
      >>> model = rn.models.MLP(d_in=8, width=32, d_out=1)
      >>> _ = rn.parameterize(model, rn.preset("mup", base_width=32))
      >>> opt = rn.optimizer(model, lr=0.1)
    """
    if init not in _INITS:
        raise ValueError(f"init={init!r} is not one of {_INITS}")
    if any(isinstance(m, Multiplier) for m in model.modules()):
        raise ValueError(
            "model is already parameterized; build a fresh model to parameterize it again"
        )
    param_roles = infer_roles(model, base=base, roles=roles)
    modules = dict(model.named_modules())
    for info in param_roles.values():
        if info.role is None:
            continue
        s = p.layer(info.role, width=info.width, fan_in=info.fan_in)  # type: ignore[arg-type]
        module = modules[info.module]
        g = s.multiplier
        if info.attr == "weight":  # Gemma's √d_model embedding scale (richness.nn.hf)
            g *= embedding_scale_ratio(module, p)
        with torch.no_grad():
            effective = getattr(module, info.attr).detach().clone()
            parametrize.register_parametrization(
                module,
                info.attr,
                Multiplier(
                    g,
                    s.lr,
                    info.role,
                    info.fan_in,
                    info.width,
                    effective.dtype,
                    parameterization=p,
                ),
                unsafe=False,
            )
            if info.matrix and init == "normal":
                if effective.any():  # a matrix the model set to zero stays zero (σ = 0)
                    raw = getattr(module.parametrizations, info.attr).original
                    raw.normal_(0.0, s.init_std, generator=generator)
                continue
            if not info.matrix and init == "normal" and info.attr == "bias":
                effective = torch.zeros_like(effective)
            if info.matrix and init == "rescale":
                effective = effective * (g * s.init_std * info.fan_in**0.5)
            setattr(module, info.attr, effective)
    width = next((info.width for info in param_roles.values() if info.role), None)
    scale_attention(model, p, base, width=width)
    return model


def multipliers(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, Multiplier | None]]:
    """(parameter name, parameter, its Multiplier or None) for every trainable parameter."""
    owners: dict[int, Multiplier] = {}
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for plist in module.parametrizations.values():
                for par in plist:
                    if isinstance(par, Multiplier):
                        owners[id(plist.original)] = par
    for name, param in model.named_parameters():
        yield name, param, owners.get(id(param))


def table_of(model: nn.Module) -> list[dict]:
    """Rows of (name, role, width, fan_in, g, η factor) of a parameterized model, for printing."""
    rows = []
    for name, _, mult in multipliers(model):
        if mult is not None:
            rows.append(
                {
                    "name": _clean_name(name),
                    "role": mult.role,
                    "width": mult.width,
                    "fan_in": mult.fan_in,
                    "multiplier": mult.multiplier.item(),
                    "lr_factor": mult.lr_factor.item(),
                }
            )
    return rows


def _clean_name(name: str) -> str:
    return name.replace(".parametrizations.", ".").removesuffix(".original")


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """{name: g·W} for every parameter, under its user-facing name ("layers.0.weight").

    The effective weights are what the forward pass uses; they are the same in every gauge
    (THEORY.md §3), so they move a network between gauges.
    """
    modules = dict(model.named_modules())
    out = {}
    for name, _, _ in multipliers(model):
        clean = _clean_name(name)
        module_name, _, attr = clean.rpartition(".")
        out[clean] = getattr(modules[module_name], attr).detach().clone()
    return out


def load_effective_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Sets every parameter so that its effective weight g·W equals `weights[name]`.

    Raises:
      ValueError: the names differ from the model's.
    """
    modules = dict(model.named_modules())
    names = {_clean_name(name) for name, _, _ in multipliers(model)}
    if names != set(weights):
        raise ValueError(
            f"weights do not match the model: missing {sorted(names - set(weights))}, "
            f"unknown {sorted(set(weights) - names)}"
        )
    with torch.no_grad():
        for clean, value in weights.items():
            module_name, _, attr = clean.rpartition(".")
            module = modules[module_name]
            if parametrize.is_parametrized(module, attr):
                setattr(module, attr, value.clone())
            else:
                getattr(module, attr).copy_(value)
