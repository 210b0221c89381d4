"""Hugging Face `transformers` models on the richness scale, without importing transformers.

    config = LlamaConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=8 * 256 // 3, vocab_size=64,
                         tie_word_embeddings=False)
    model = rn.nn.hf.Logits(LlamaForCausalLM(config))       # forward(ids) -> (N, T·V) logits
    rn.parameterize(model, rn.preset("mup", base_width=64), base=<the same at hidden_size=64>)

What `rn.parameterize` does to such a model (THEORY.md §1, §5 "Transformers"):
  - nn.Linear, nn.Embedding and GPT-2's `Conv1D` (weight stored (in, out), registered by name
    in `richness.nn.layers`) are matrices with roles read against the base; norm gains
    (LayerNorm, RMSNorm, Gemma's 1 + w) and biases are input-role vectors. Every entry is
    evaluated at the model's width n = d_model, whatever the layer's own size (a SwiGLU MLP's
    ⌊8n/3⌋, grouped-query key/value projections n·H_kv/H: `richness.nn.roles`). Rotary
    embeddings hold no parameters and need nothing (a rotation keeps q·k's size).
  - Attention logits: every attention module whose logit scale richness can read gets
    s = s_own · (d_head / d_head0)^(e + 1/2), e = −(1/2 + r) on the scale
    (`richness.nn.transformer.attention_scale_ratio`): 1/d_head under μP, 1/√d_head at r = 0
    and under SP, the module's own s_own (1/√d_head, times GPT-2's
    `scale_attn_by_inverse_layer_idx` factor) exactly at the base width. A module is read
    (1) by its registered type (`register_attention_type`; GPT-2's and BERT's are built in), or
    (2) generically: a float attribute `scaling` (which transformers 5.x hands to every
    attention backend: eager, sdpa, flash) and a head size in an attribute `head_dim`,
    `head_size`, `attention_head_size`, `attn_head_size` or `d_head` (else from its `config`:
    `head_dim`, or hidden_size / num_attention_heads). Grouped- and multi-query attention need
    nothing more: the scale is per query head. d_head0 = d_head · n0 / n (heads of a fixed
    count), or d_head when the base model's heads have the same size (a fixed head size, heads
    growing in number). A module that looks like attention (its class name contains
    "Attention", or it has q_proj/k_proj-like children) but can't be read gets a warning naming
    it: never a silent 1/√d_head.
  - Scaled embeddings (Gemma's `embed_scale` = √d_model, read at every forward): the factor
    grows with width, so the embedding's multiplier gets √(n0 / n) (n0 = 1 for absolute
    tables), which makes the model the table's up to the constant √n0, and the base model
    unchanged.
  - Tied input and output embeddings are refused (`infer_roles` raises): the embedding is
    input-role, the readout output-role, and one tensor can't carry both multipliers and LRs.
    Build the model with `tie_word_embeddings=False`, or call `untie(model)` first.

Architectures tested (tests/ecosystem/test_hf.py): GPT-2, BERT, Llama, Mistral, Qwen2, Gemma,
Phi, GPT-NeoX. Dropout: build the config with every dropout 0 for a coordinate check, or put
the model in `eval()` mode: a model built from a config starts in training mode.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from richness.nn.transformer import attention_scale_ratio
from richness.scaling import Parameterization

__all__ = ["Logits", "embedding_scale_ratio", "register_attention_type", "scale_attention", "untie"]


@dataclass(frozen=True)
class _AttentionLayout:
    head_dim: str  # attribute holding d_head
    scaling: str | None  # attribute holding the logit scale read at every forward; None: none


_ATTENTION: dict[str, _AttentionLayout] = {
    "transformers.models.gpt2.modeling_gpt2.GPT2Attention": _AttentionLayout("head_dim", "scaling"),
    "transformers.models.bert.modeling_bert.BertSelfAttention": _AttentionLayout(
        "attention_head_size", "scaling"
    ),
    "transformers.models.bert.modeling_bert.BertCrossAttention": _AttentionLayout(
        "attention_head_size", "scaling"
    ),
    # richness' own Transformer computes its scale from the table at every forward
    "richness.nn.transformer.CausalSelfAttention": _AttentionLayout("head_dim", None),
}

_HEAD_DIM_ATTRS = ("head_dim", "head_size", "attention_head_size", "attn_head_size", "d_head")
# children that make a module attention-like: separate projections, or one fused projection
_QKV_PAIRS = (("q_proj", "k_proj"), ("query", "key"), ("q", "k"), ("wq", "wk"))
_QKV_FUSED = ("qkv", "qkv_proj", "c_attn", "query_key_value", "Wqkv", "in_proj")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_attention_type(
    cls: type[nn.Module] | str,
    *,
    head_dim: str = "head_dim",
    scaling: str | None = "scaling",
) -> None:
    """Declares an attention module type whose logit scale `parameterize` sets.

    Needed only for a module that the generic reading misses (see the module docstring): its
    head size or its scale has another name, or it has no scale to set.

    Args:
      cls: the class or its qualified name "package.module.Class" (subclasses included).
      head_dim: the name of its int attribute holding d_head.
      scaling: the name of its float attribute holding the factor of q·kᵀ that its forward
        reads, or None to declare that richness should leave the module alone (its model
        scales the logits itself); either silences the "not recognized" warning.

    Raises:
      TypeError: `cls` is neither a class nor a string.

    Example:
      >>> from richness.nn import hf
      >>> hf.register_attention_type("mylib.layers.MyAttention", head_dim="dk", scaling="scale")
    """
    if not isinstance(cls, str | type):
        raise TypeError(f"cls must be a module class or its qualified name, got {cls!r}")
    key = cls if isinstance(cls, str) else _name(cls)
    _ATTENTION[key] = _AttentionLayout(head_dim, scaling)


def _registered(module: nn.Module) -> _AttentionLayout | None:
    for cls in type(module).__mro__:
        if _name(cls) in _ATTENTION:
            return _ATTENTION[_name(cls)]
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _config_head_dim(module: nn.Module) -> int | None:
    config = getattr(module, "config", None)
    if config is None:
        return None
    head_dim = _int(getattr(config, "head_dim", None))
    hidden, heads = (_int(getattr(config, k, None)) for k in ("hidden_size", "num_attention_heads"))
    if head_dim is None and hidden is not None and heads is not None and hidden % heads == 0:
        head_dim = hidden // heads
    return head_dim


def _attention_like(module: nn.Module) -> bool:
    children = dict(module.named_children())
    return (
        "Attention" in type(module).__name__
        or any(a in children and b in children for a, b in _QKV_PAIRS)
        or any(name in children for name in _QKV_FUSED)
    )


def _read_attention(name: str, module: nn.Module) -> tuple[str, int] | bool | None:
    """(scaling attribute, d_head) of an attention module; False when it is no attention or
    declared to need nothing; None when it looks like attention but can't be read.

    Raises:
      TypeError: a registered type without its float scaling or int head size.
    """
    layout = _registered(module)
    if layout is not None:
        if layout.scaling is None:
            return False
        if not isinstance(getattr(module, layout.scaling, None), float):
            raise TypeError(
                f"attention module {name!r} ({type(module).__name__}) has no float attribute "
                f"{layout.scaling!r} that its forward reads (older transformers computed the "
                "scale inline); use transformers >= 5 or register_attention_type(...)"
            )
        d_head = _int(getattr(module, layout.head_dim, None))
        if d_head is None:
            raise TypeError(
                f"attention module {name!r} ({type(module).__name__}) has no int attribute "
                f"{layout.head_dim!r} holding its head size; register_attention_type(..., "
                "head_dim=<its name>)"
            )
        return layout.scaling, d_head
    like = _attention_like(module)
    if not isinstance(getattr(module, "scaling", None), float):
        return None if like else False
    d_head = next((d for d in (_int(getattr(module, a, None)) for a in _HEAD_DIM_ATTRS) if d), None)
    if d_head is None and like:
        d_head = _config_head_dim(module)
    if d_head is None:
        return None if like else False
    return "scaling", d_head


def _unrecognized_warning(name: str, module: nn.Module) -> str:
    cls = _name(type(module))
    return (
        f"attention module {name!r} ({cls}) keeps its own logit scale: richness reads an "
        "attention module by a float attribute `scaling` that its forward uses together with "
        f"a head size (one of {', '.join(_HEAD_DIM_ATTRS)}, or config.head_dim), and this one "
        "lacks one or both. At r > 0 (μP: 1/d_head) its logits are then off the richness "
        "scale. Declare the type with "
        f"richness.nn.hf.register_attention_type({cls!r}, head_dim=<attribute>, "
        "scaling=<attribute>) before rn.parameterize, or with scaling=None if the model scales "
        "its logits itself"
    )


def scale_attention(
    model: nn.Module,
    p: Parameterization,
    base: nn.Module | None = None,
    *,
    width: int | None = None,
) -> dict[str, float]:
    """Sets the attention logit scale of every attention module of `model` for `p`.

    Implements: THEORY.md §5 "Transformers": s = s_own · (d_head / d_head0)^(e + 1/2) (see
    `richness.nn.transformer.attention_scale_ratio`), so s = d_head^−(1/2+r) relative to the
    base. Called by `rn.parameterize`; call it yourself only on a model you parameterized
    another way. Calling it twice applies the factor twice.

    Args:
      model: a module holding attention modules (registered types, or read generically: see
        the module docstring).
      p: the table; its `base_width` n0 is the base d_model.
      base: the same architecture at another width: heads of the same size in the base mean
        a fixed head size (d_head0 = d_head); None assumes a fixed head count.
      width: n, the model's d_model; None reads it as `rn.parameterize` does (`infer_roles`).

    Returns:
      {module name: the new scaling} for every module it changed.

    Raises:
      TypeError: a registered attention module has no float `scaling` or int head size.

    Warns:
      UserWarning: for each attention-like module that can't be read (named, with the fix).
    """
    read: dict[str, tuple[str, int]] = {}
    unread: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        found = _read_attention(name, module)
        if found is None:
            unread.append((name, module))
        elif found:
            read[name] = found
    for name, module in unread:  # a wrapper of, or a part of, a module read is no attention
        if not any(other.startswith(f"{name}.") or name.startswith(f"{other}.") for other in read):
            warnings.warn(_unrecognized_warning(name, module), UserWarning, stacklevel=3)
    if not read:
        return {}
    if width is None and p.base_width is not None:
        from richness.nn.roles import infer_roles

        width = next(r.width for r in infer_roles(model, base=base).values() if r.role)
    base_modules = {} if base is None else dict(base.named_modules())
    out = {}
    for name, (attr, d_head) in read.items():
        module = model.get_submodule(name)
        d_head0 = None
        if p.base_width is not None:
            other = base_modules.get(name)
            found = None if other is None else _read_attention(name, other)
            fixed = isinstance(found, tuple) and found[1] == d_head
            d_head0 = d_head if fixed else d_head * p.base_width / width
        scaling = getattr(module, attr) * attention_scale_ratio(p, d_head, d_head0)
        setattr(module, attr, scaling)
        out[name] = scaling
    return out


def _embed_scale(module: nn.Module) -> float | None:
    scale = getattr(module, "embed_scale", None)
    if isinstance(scale, torch.Tensor) and scale.numel() == 1:
        return float(scale)
    return float(scale) if isinstance(scale, int | float) else None


def embedding_scale_ratio(module: nn.Module, p: Parameterization) -> float:
    """The factor of an embedding's multiplier that cancels its width-dependent output scale.

    Gemma's embedding (any module with an `embed_scale` equal to √d_model, as transformers
    writes Gemma's and BART's `scale_embedding`) multiplies its output by √n at every forward:
    under the table that would grow the embedding's coordinates as √n. Its multiplier gets
    √(n0 / n) (n0 = p.base_width, or 1 for absolute tables), so the model is the table's up to
    the constant √n0 in forward and training (the product embed_scale · g is what enters both,
    THEORY.md §3), and 1 at the base width. Any other embed_scale is a constant and is kept.

    Returns:
      √(n0 / n), or 1.0 for an embedding without a width-dependent scale.
    """
    scale = _embed_scale(module)
    weight = getattr(module, "weight", None)
    if scale is None or not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        return 1.0
    n = weight.shape[1]
    if not math.isclose(scale, math.sqrt(n), rel_tol=1e-6):
        return 1.0
    n0 = 1.0 if p.base_width is None else float(p.base_width)
    return 1.0 if n == n0 else math.sqrt(n0 / n)


def untie(model: nn.Module) -> nn.Module:
    """Gives every module that shares a parameter with an earlier module its own copy; in place.

    For a Hugging Face model it also sets `model.config.tie_word_embeddings = False` (on every
    submodule with a config), so that `tie_weights()` does not tie them again. The copy starts
    equal to the shared tensor; `rn.parameterize(..., init="normal")` then draws each from its
    own role's init.

    Returns:
      `model`.
    """
    seen: set[int] = set()
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "tie_word_embeddings", False):
            config.tie_word_embeddings = False
        for attr, param in list(module.named_parameters(recurse=False)):
            if id(param) in seen:
                setattr(module, attr, nn.Parameter(param.detach().clone()))
            else:
                seen.add(id(param))
    return model


class Logits(nn.Module):
    """A language model as a function of token ids to flat logits, for the Meter and `train`.

    forward(input_ids (N, T) long) → (N, T·V): `model(input_ids=..., use_cache=False).logits`
    flattened, so that the output is one vector per example like any other richness model.

    Args:
      model: a transformers model whose output has `.logits` (N, T, V) (or a tensor).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, use_cache=False)
        logits = out if isinstance(out, torch.Tensor) else out.logits  # (N, T, V)
        return logits.flatten(1)  # (N, T·V)
