"""A small decoder-only transformer whose width is d_model (THEORY.md §1, §5 "Transformers").

    model = Transformer(vocab=28, width=256, depth=2, n_heads=4, seq_len=32)
    rn.parameterize(model, rn.richness(r=0.5, base_width=64), base=Transformer(..., width=32))
    logits = model(tokens)                     # (N, T) long → (N, T·V)

Roles (read by `rn.parameterize(model, p, base=...)`; THEORY.md §1): the token and position
embeddings are input-role (fan-in 1), the attention projections q, k, v, o and the MLP's two
Linear layers hidden, the readout output-role, the LayerNorm gains and biases input-role
vectors. The residual branches carry no multiplier: depth is fixed, only width scales.

Attention logits (THEORY.md §5): the logit q·k is a readout of two width-d_head features, so it
is scaled like the readout: s = d_head^e with e the width exponent of the output layer's
effective init std g·σ in the table, −(1/2 + r) on the richness scale: 1/√d_head at r = 0
(NTP, and SP) and 1/d_head at r = 1/2 (μP). Reason: once q has moved along k, q·k ~ d^{1/2+r}
(‖Δq‖ ~ d^r against ‖k‖ ~ d^{1/2}), and s·q·k must stay Θ(1). With a base width (base-relative
tables) the scale is (d_head / d_head0)^e / √d_head0, so the base model keeps the standard
1/√d_head0. The model reads the table at every forward from its own Multiplier modules
(`richness.nn.multiplier.parameterization_of`), so it also holds when a model that wraps it is
the one parameterized. Unparameterized, it is the standard model (1/√d_head).

Zero init (TP V, arXiv:2203.03466: μP practice for transformers zero-initializes the query
and the readout). `zero_query=True`: every attention starts uniform over the causal window at
every width, instead of with random logits s·q·k. `zero_readout=True`: f0 = 0, and the first
step moves only the readout (the body's gradient passes through it). On the character task
(docs/transfer.md) the zero readout is what makes the tuned Adam η0 transfer across widths
64–256 (μP drift +0.02 octaves per doubling against +1.68 with the random readout); the zero
query alone changes little.

Heads: `n_heads` fixed with d_head = width / n_heads growing (the μP convention), or `d_head`
fixed with n_heads = width / d_head growing (then s is the constant 1/√d_head).

Tied embeddings (`tie_embeddings=True`): the readout is f = c · h Eᵀ with E the token
embedding's effective weight (input role) and c = (g·σ)_output / (g·σ)_input of the table at
this width, so the readout's init scale is the output row's, and for SGD its effective LR
η_in g_in² c² has the output row's width law (equal to η_out g_out² in absolute tables, 1/n0 of
it in base-relative ones, as in the base model's own tied readout); with Adam the tied gradient
is normalized as one tensor, a case not checked here. Unparameterized, c = 1/√width (the
standard readout init relative to N(0, 1) embeddings). The Meter does not see the tied readout
as a layer (no Linear); its output change is ‖Δf‖.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from richness.nn.multiplier import Multiplier, parameterization_of
from richness.scaling import Parameterization

__all__ = ["Transformer", "attention_scale", "attention_scale_ratio", "tied_readout_multiplier"]


def _positive_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}={value!r} must be an integer ≥ 1")
    return value


def _logit_exponent(p: Parameterization) -> float:
    """e: the width exponent of the output layer's effective init std g·σ (THEORY.md §3)."""
    e = p.exponents()["output"]
    return e["multiplier"] + e["init_std"]


def attention_scale(p: Parameterization | None, d_head: int, base_d_head: float | None) -> float:
    """The attention logit scale s for heads of size `d_head` under table `p`.

    Implements: THEORY.md §5 (attention logits 1/d_head under μP, 1/√d_head under NTP):
    s = (d_head / d_head0)^e / √d_head0 with e = the exponent of the output layer's g·σ
    (−(1/2 + r) on the richness scale); d_head0 = `base_d_head`, or 1 for absolute tables
    (s = d_head^e). `p=None` (an unparameterized model) gives the standard 1/√d_head.

    Args:
      p: the table, or None.
      d_head: the head size of this model.
      base_d_head: the head size of the base model (None: absolute tables).

    Returns:
      s, the factor of q·k in the logits.
    """
    if p is None:
        return d_head**-0.5
    d0 = 1.0 if base_d_head is None else float(base_d_head)
    return (d_head / d0) ** _logit_exponent(p) / math.sqrt(d0)


def attention_scale_ratio(
    p: Parameterization | None, d_head: int, base_d_head: float | None
) -> float:
    """`attention_scale` relative to the standard 1/√d_head: (d_head / d_head0)^(e + 1/2).

    Implements: THEORY.md §5, as `attention_scale`; e + 1/2 = −r on the richness scale, so the
    ratio is (d_head / d_head0)^−r: 1 under SP and NTP, √(d_head0 / d_head) under μP, and
    exactly 1 at the base (d_head = d_head0), so a module's own scale is kept bit for bit
    there. Hugging Face attention modules get s_own · ratio (`richness.nn.hf`).

    Args:
      p: the table, or None (ratio 1).
      d_head: the head size of this model.
      base_d_head: the head size of the base model (None: absolute tables, d_head0 = 1).

    Returns:
      The factor of the module's own logit scale.
    """
    if p is None:
        return 1.0
    d0 = 1.0 if base_d_head is None else float(base_d_head)
    return (d_head / d0) ** (_logit_exponent(p) + 0.5)


def tied_readout_multiplier(p: Parameterization | None, width: int) -> float:
    """c of the tied readout f = c · h Eᵀ: (g·σ)_output / (g·σ)_input at `width`.

    `p=None` gives 1/√width, the standard readout init relative to N(0, 1) embeddings.
    """
    if p is None:
        return width**-0.5
    out = p.layer("output", width=width, fan_in=width).effective_std
    return out / p.layer("input", width=width, fan_in=1).effective_std


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with hidden-role q, k, v, o projections (width → width).

    Shapes: x (N, T, n) → (N, T, n).
    """

    def __init__(self, width: int, n_heads: int, bias: bool):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(width, width, bias=bias)
        self.k = nn.Linear(width, width, bias=bias)
        self.v = nn.Linear(width, width, bias=bias)
        self.o = nn.Linear(width, width, bias=bias)

    def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        n_batch, t, width = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(n_batch, t, self.n_heads, -1).transpose(1, 2)  # (N, H, T, d_head)

        a = nn.functional.scaled_dot_product_attention(
            heads(self.q(x)), heads(self.k(x)), heads(self.v(x)), is_causal=True, scale=scale
        )  # (N, H, T, d_head)
        return self.o(a.transpose(1, 2).reshape(n_batch, t, width))


class _MLP(nn.Module):
    """fc (n → 4n), GELU, proj (4n → n): both hidden-role."""

    def __init__(self, width: int, bias: bool):
        super().__init__()
        self.fc = nn.Linear(width, 4 * width, bias=bias)
        self.proj = nn.Linear(4 * width, width, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, width: int, n_heads: int, bias: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(width, bias=bias)
        self.attn = CausalSelfAttention(width, n_heads, bias)
        self.ln2 = nn.LayerNorm(width, bias=bias)
        self.mlp = _MLP(width, bias)

    def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), scale)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Decoder-only transformer: embeddings, `depth` pre-LN blocks, final LN, readout.

    Args:
      vocab: V, the number of tokens.
      width: n = d_model.
      depth: number of blocks (≥ 1).
      n_heads: heads, fixed as width grows (d_head = width / n_heads); or None with `d_head`.
      d_head: head size, fixed as width grows (n_heads = width / d_head); or None.
      seq_len: T, the longest sequence (rows of the position embedding).
      bias: biases in Linear and LayerNorm layers.
      tie_embeddings: readout by the token embedding (see the module docstring).
      zero_query: zero-initialize the query projections (see the module docstring).
      zero_readout: zero-initialize the readout (see the module docstring). Both stay zero
        under `rn.parameterize`'s "normal" init. Both default to False, so that the
        unparameterized model is the standard one; the μTransfer spec turns both on.

    Shapes: tokens (N, T) long with T ≤ seq_len → logits (N, T·V), position-major (reshape
    to (N, T, V)): the (N, O) output that the MSE loop, the Meter and the NTK functions take,
    matching `load_dataset("chars")`'s flattened one-hot targets.

    Raises:
      ValueError: a size that is not a positive integer; both or neither of n_heads and
        d_head; a width that they do not divide; zero_readout with tie_embeddings.
    """

    def __init__(
        self,
        vocab: int,
        width: int,
        depth: int = 2,
        n_heads: int | None = 4,
        d_head: int | None = None,
        seq_len: int = 32,
        *,
        bias: bool = False,
        tie_embeddings: bool = False,
        zero_query: bool = False,
        zero_readout: bool = False,
    ):
        super().__init__()
        for field, value in (("vocab", vocab), ("width", width), ("depth", depth)):
            _positive_int(field, value)
        _positive_int("seq_len", seq_len)
        if (n_heads is None) == (d_head is None):
            raise ValueError(
                f"give exactly one of n_heads (fixed, d_head grows) and d_head (fixed, n_heads "
                f"grows); got n_heads={n_heads!r}, d_head={d_head!r}"
            )
        size = (
            _positive_int("n_heads", n_heads) if d_head is None else _positive_int("d_head", d_head)
        )
        if width % size:
            name = "n_heads" if d_head is None else "d_head"
            raise ValueError(f"{name}={size} must divide width={width}")
        self.fixed_heads = d_head is None
        self.n_heads = size if self.fixed_heads else width // size
        self.d_head = width // self.n_heads
        self.width, self.seq_len, self.tie_embeddings = width, seq_len, tie_embeddings
        self.tok_emb = nn.Embedding(vocab, width)
        self.pos_emb = nn.Embedding(seq_len, width)
        self.blocks = nn.ModuleList(Block(width, self.n_heads, bias) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width, bias=bias)
        self.readout = None if tie_embeddings else nn.Linear(width, vocab, bias=bias)
        if zero_readout and tie_embeddings:
            raise ValueError("zero_readout=True with tie_embeddings=True: the tied readout is E")
        self.zero_query, self.zero_readout = zero_query, zero_readout
        zeroed = [block.attn.q for block in self.blocks] if zero_query else []
        for module in zeroed + ([self.readout] if zero_readout else []):
            for param in module.parameters():
                nn.init.zeros_(param)

    def _table(self) -> Parameterization | None:
        # the final LayerNorm's gain is parameterized whenever the model is (and keeps its
        # Multiplier in `output_scaled` copies): one lookup per forward instead of a scan
        chain = getattr(getattr(self.ln_f, "parametrizations", None), "weight", None)
        for par in chain if chain is not None else ():
            if isinstance(par, Multiplier) and par.parameterization is not None:
                return par.parameterization
        return parameterization_of(self)

    @property
    def logit_scale(self) -> float:
        """s, the attention logit scale under the model's table (see `attention_scale`)."""
        p = self._table()
        base = None
        if p is not None and p.base_width is not None:
            base = p.base_width / self.n_heads if self.fixed_heads else self.d_head
        return attention_scale(p, self.d_head, base)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n_batch, t = tokens.shape
        if t > self.seq_len:
            raise ValueError(f"sequence length {t} exceeds seq_len={self.seq_len}")
        positions = torch.arange(t, device=tokens.device).expand(n_batch, t)  # (N, T): hooks see N
        h = self.tok_emb(tokens) + self.pos_emb(positions)  # (N, T, n)
        scale = self.logit_scale
        for block in self.blocks:
            h = block(h, scale)
        h = self.ln_f(h)
        if self.readout is not None:
            logits = self.readout(h)  # (N, T, V)
        else:
            c = tied_readout_multiplier(self._table(), self.width)
            logits = nn.functional.linear(h, c * self.tok_emb.weight)  # (N, T, V)
        return logits.flatten(1)  # (N, T·V)
