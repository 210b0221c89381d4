"""Hugging Face `transformers` models on the richness scale, without importing transformers.

    config = GPT2Config(n_embd=256, n_layer=2, n_head=2, vocab_size=64, n_positions=16,
                        tie_word_embeddings=False, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    model = rn.nn.hf.Logits(GPT2LMHeadModel(config))        # forward(ids) -> (N, T·V) logits
    rn.parameterize(model, rn.preset("mup", base_width=64), base=<the same at n_embd=64>)

What `rn.parameterize` does to such a model (THEORY.md §1, §5 "Transformers"):
  - GPT-2's `Conv1D` layers (weight stored (in, out)) are hidden-role matrices like nn.Linear:
    their layout is registered by name in `richness.nn.layers`; BERT's nn.Linear, nn.Embedding
    and nn.LayerNorm need nothing (LayerNorm gains and all biases are input-role vectors).
  - Attention logits: every attention module of a registered type (GPT-2's `GPT2Attention`,
    BERT's `BertSelfAttention` and `BertCrossAttention`; more by `register_attention_type`) has
    its logit scale `scaling` set by `richness.nn.transformer.attention_scale`:
    s = (d_head / d_head0)^e / √d_head0 with e = −(1/2 + r) on the scale (1/√d_head at r = 0
    and under SP, 1/d_head at r = 1/2), d_head0 = base_width / n_heads, times any extra factor
    the module's own scaling had (GPT-2's `scale_attn_by_inverse_layer_idx`). transformers 5.x
    passes `module.scaling` to every attention backend (eager, sdpa, flash).
  - Tied input and output embeddings are refused (`infer_roles` raises): the embedding is
    input-role, the readout output-role, and one tensor can't carry both multipliers and LRs.
    Build the model with `tie_word_embeddings=False`, or call `untie(model)` first.

Dropout: build the config with `resid_pdrop = embd_pdrop = attn_pdrop = 0` (BERT:
`hidden_dropout_prob = attention_probs_dropout_prob = 0`) for a coordinate check, or put the
model in `eval()` mode: a model built from a config starts in training mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from richness.nn.transformer import attention_scale
from richness.scaling import Parameterization

__all__ = ["Logits", "register_attention_type", "scale_attention", "untie"]


@dataclass(frozen=True)
class _AttentionLayout:
    head_dim: str  # attribute holding d_head
    n_heads: str  # attribute holding the number of heads
    scaling: str  # attribute holding the logit scale, read at every forward


_ATTENTION: dict[str, _AttentionLayout] = {
    "transformers.models.gpt2.modeling_gpt2.GPT2Attention": _AttentionLayout(
        "head_dim", "num_heads", "scaling"
    ),
    "transformers.models.bert.modeling_bert.BertSelfAttention": _AttentionLayout(
        "attention_head_size", "num_attention_heads", "scaling"
    ),
    "transformers.models.bert.modeling_bert.BertCrossAttention": _AttentionLayout(
        "attention_head_size", "num_attention_heads", "scaling"
    ),
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_attention_type(
    cls: type[nn.Module] | str,
    *,
    head_dim: str = "head_dim",
    n_heads: str = "num_heads",
    scaling: str = "scaling",
) -> None:
    """Declares an attention module type whose logit scale `parameterize` sets.

    Args:
      cls: the class or its qualified name "package.module.Class".
      head_dim, n_heads, scaling: the names of its attributes holding d_head, the number of
        heads and the float factor of q·kᵀ that its forward reads.

    Raises:
      TypeError: `cls` is neither a class nor a string.
    """
    if not isinstance(cls, str | type):
        raise TypeError(f"cls must be a module class or its qualified name, got {cls!r}")
    key = cls if isinstance(cls, str) else _name(cls)
    _ATTENTION[key] = _AttentionLayout(head_dim, n_heads, scaling)


def _attention_layout(module: nn.Module) -> _AttentionLayout | None:
    for cls in type(module).__mro__:
        if _name(cls) in _ATTENTION:
            return _ATTENTION[_name(cls)]
    return None


def scale_attention(model: nn.Module, p: Parameterization) -> dict[str, float]:
    """Sets the attention logit scale of every registered attention module of `model` for `p`.

    Implements: THEORY.md §5 "Transformers": s = (d_head / d_head0)^e / √d_head0 (see
    `richness.nn.transformer.attention_scale`), times the module's own factor relative to
    1/√d_head. Called by `rn.parameterize`; call it yourself only on a model you
    parameterized another way. Calling it twice applies the factor twice.

    Args:
      model: a module holding attention modules of registered types (others are untouched).
      p: the table; its `base_width` is the base d_model, so d_head0 = base_width / n_heads.

    Returns:
      {module name: the new scaling} for every module it changed.

    Raises:
      TypeError: a registered attention module has no float `scaling` attribute.
    """
    out = {}
    for name, module in model.named_modules():
        layout = _attention_layout(module)
        if layout is None:
            continue
        if not isinstance(getattr(module, layout.scaling, None), float):
            raise TypeError(
                f"attention module {name!r} ({type(module).__name__}) has no float attribute "
                f"{layout.scaling!r} that its forward reads (older transformers computed the "
                "scale inline); use transformers >= 5 or register_attention_type(...)"
            )
        d_head = int(getattr(module, layout.head_dim))
        n_heads = int(getattr(module, layout.n_heads))
        own = float(getattr(module, layout.scaling)) * d_head**0.5  # 1 unless layer-scaled
        d_head0 = None if p.base_width is None else p.base_width / n_heads
        scaling = own * attention_scale(p, d_head, d_head0)
        setattr(module, layout.scaling, scaling)
        out[name] = scaling
    return out


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
