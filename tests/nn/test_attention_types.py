"""Attention modules of any library: read generically, by registration, or warned about.

No transformers needed: the modules here mimic transformers 5.x (a float `scaling` read at
every forward, a head size) and the cases it can't cover (the scale computed inline).
"""

import math
import types
import warnings

import pytest
import torch
from torch import nn

import richness as rn
from richness.nn import hf

V, HEADS = 16, 2


class ToyAttention(nn.Module):
    """q/k/v/o projections, `scaling` and `head_dim` attributes (as transformers' Llama)."""

    def __init__(self, width, kv_heads=HEADS):
        super().__init__()
        self.head_dim = width // HEADS
        self.scaling = self.head_dim**-0.5
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(width, width, bias=False)
        self.groups = HEADS // kv_heads

    def forward(self, x):
        n, t, _ = x.shape

        def heads(y):
            return y.view(n, t, -1, self.head_dim).transpose(1, 2)  # (N, H, T, d_head)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        k, v = k.repeat_interleave(self.groups, 1), v.repeat_interleave(self.groups, 1)
        a = torch.softmax(self.scaling * q @ k.transpose(-1, -2), -1) @ v
        return self.o_proj(a.transpose(1, 2).reshape(n, t, -1))


class ConfigAttention(ToyAttention):
    """No head-size attribute: d_head from `config` (hidden_size / num_attention_heads)."""

    def __init__(self, width):
        super().__init__(width)
        self.config = types.SimpleNamespace(hidden_size=width, num_attention_heads=HEADS)
        self.d = self.head_dim
        del self.head_dim

    def forward(self, x):
        self.head_dim = self.d
        try:
            return super().forward(x)
        finally:
            del self.head_dim


class InlineAttention(ToyAttention):
    """The scale computed inline (older transformers, many research codes): not readable."""

    def __init__(self, width):
        super().__init__(width)
        self.dk = self.head_dim
        self.logit_scale = self.scaling
        del self.scaling, self.head_dim


class AttentionWrapper(nn.Module):
    """A module named like attention that only holds the real one (as BERT's BertAttention)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


class TinyLM(nn.Module):
    def __init__(self, width, attention=ToyAttention, wrap=False, **kw):
        super().__init__()
        self.embed = nn.Embedding(V, width)
        attn = attention(width, **kw)
        self.attn = AttentionWrapper(attn) if wrap else attn
        self.head = nn.Linear(width, V, bias=False)

    def forward(self, ids):
        h = self.embed(ids)
        return self.head(h + self.attn(h)).flatten(1)


P = rn.preset("mup", base_width=32)


def _scales(model):
    return [
        getattr(m, "scaling", getattr(m, "logit_scale", None))
        for m in model.modules()
        if isinstance(m, ToyAttention)
    ]


@pytest.mark.parametrize("kv_heads", [2, 1])
def test_a_module_with_scaling_and_head_dim_is_read_generically(kv_heads):
    model = rn.parameterize(TinyLM(128, kv_heads=kv_heads), P, base=TinyLM(32, kv_heads=kv_heads))
    d_head, d_head0 = 64, 16
    assert _scales(model) == pytest.approx([math.sqrt(d_head0) / d_head], rel=1e-12)
    widths = {row["width"] for row in rn.nn.table_of(model)}
    assert widths == {128}  # the k/v projections' 64 (or 32) rows are at the model's width


def test_the_head_size_can_come_from_the_config():
    model = rn.parameterize(TinyLM(128, ConfigAttention), P, base=TinyLM(32, ConfigAttention))
    assert _scales(model) == pytest.approx([4 / 64], rel=1e-12)
    model(torch.zeros(2, 3, dtype=torch.long))


def test_an_unreadable_attention_module_is_warned_about_by_name():
    model = TinyLM(128, InlineAttention)
    with pytest.warns(UserWarning, match=r"'attn'.*InlineAttention.*register_attention_type"):
        rn.parameterize(model, P, base=TinyLM(32, InlineAttention))
    assert _scales(model) == [64**-0.5]  # left as it was: the warning says so


def test_registering_the_type_reads_it(monkeypatch):
    monkeypatch.setattr(hf, "_ATTENTION", dict(hf._ATTENTION))
    hf.register_attention_type(InlineAttention, head_dim="dk", scaling="logit_scale")
    model = TinyLM(128, InlineAttention)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rn.parameterize(model, P, base=TinyLM(32, InlineAttention))
    assert _scales(model) == pytest.approx([4 / 64], rel=1e-12)


def test_scaling_none_declares_a_module_that_needs_nothing(monkeypatch):
    monkeypatch.setattr(hf, "_ATTENTION", dict(hf._ATTENTION))
    hf.register_attention_type(f"{__name__}.InlineAttention", scaling=None)
    model = TinyLM(128, InlineAttention)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rn.parameterize(model, P, base=TinyLM(32, InlineAttention))
    assert _scales(model) == [64**-0.5]


def test_a_wrapper_of_a_read_attention_is_not_warned_about():
    model = TinyLM(128, wrap=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rn.parameterize(model, P, base=TinyLM(32, wrap=True))
    assert _scales(model) == pytest.approx([4 / 64], rel=1e-12)


def test_richness_transformer_attention_is_not_warned_about():
    from richness.nn.transformer import Transformer

    model = Transformer(V, 64, n_heads=2, seq_len=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rn.parameterize(model, P, base=Transformer(V, 32, n_heads=2, seq_len=4))


def test_register_attention_type_refuses_other_things():
    with pytest.raises(TypeError, match="cls"):
        hf.register_attention_type(3)


def test_scale_attention_alone_reads_the_width_itself():
    model = TinyLM(128)
    assert hf.scale_attention(model, P, base=TinyLM(32)) == {"attn": pytest.approx(4 / 64)}
