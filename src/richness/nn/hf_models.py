"""Hugging Face causal language models built from a config at any width (`model.kind: hf`).

    model = causal_lm("llama", width=256, vocab_size=123, seq_len=64, depth=2, n_heads=4)
    model(ids)  # (N, T·V) logits: `richness.nn.hf.Logits` around `AutoModelForCausalLM`

The width is the model dimension (hidden_size); the number of heads is fixed as the width grows
(so d_head = width / n_heads grows, as THEORY.md §5 "Transformers" assumes), or d_head is fixed
and the heads grow; the MLP is 4·width wide, or int(8·width/3) for gated (SwiGLU) MLPs, the
Llama recipe. Embeddings are untied (the input embedding is input-role and the readout
output-role: `richness.nn.hf`), every dropout is 0 and the positions are `seq_len`.
"""

from __future__ import annotations

from torch import nn

from richness.nn.hf import Logits

__all__ = ["causal_lm"]


def causal_lm(
    architecture: str,
    *,
    width: int,
    vocab_size: int,
    seq_len: int,
    depth: int = 2,
    n_heads: int | None = None,
    d_head: int | None = None,
) -> nn.Module:
    """A freshly initialized `AutoModelForCausalLM` of `architecture` (a transformers
    `model_type`: "llama", "mistral", "qwen2", "gpt2", ...) at model width `width`.

    Raises:
      ValueError: an architecture transformers does not know, or a width the heads don't divide.
    """
    from transformers import AutoConfig, AutoModelForCausalLM  # the `hf` extra

    heads = n_heads if n_heads is not None else max(1, width // (d_head or width))
    if width % heads:
        raise ValueError(f"width={width} is not a multiple of n_heads={heads}")
    try:
        config = AutoConfig.for_model(
            architecture,
            hidden_size=width,
            num_hidden_layers=depth,
            num_attention_heads=heads,
            vocab_size=vocab_size,
            max_position_embeddings=seq_len,
            tie_word_embeddings=False,
        )
    except ValueError as err:
        raise ValueError(f"model.architecture={architecture!r}: {err}") from None
    for token in ("bos_token_id", "eos_token_id", "pad_token_id"):  # ids of another vocabulary
        if getattr(config, token, None) is not None and getattr(config, token) >= vocab_size:
            setattr(config, token, None)
    if hasattr(config, "num_key_value_heads"):
        config.num_key_value_heads = heads
    if getattr(config, "head_dim", None) is not None:
        config.head_dim = width // heads
    if hasattr(config, "intermediate_size"):  # gated MLPs: 8n/3 keeps 3 matrices at ~8n² params
        config.intermediate_size = int(8 * width / 3)
    for name in list(config.to_dict()):
        if "dropout" in name or "pdrop" in name:
            setattr(config, name, 0.0)
    return Logits(AutoModelForCausalLM.from_config(config))
