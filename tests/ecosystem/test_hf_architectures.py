"""Attention, roles and the base-width identity across transformers ≥ 5 architectures.

GPT-2 (Conv1D, fused q, k, v), BERT (encoder, masked LM), Llama (grouped-query), Mistral
(multi-query), Qwen2 (grouped-query, q/k/v biases), Gemma (multi-query, √d_model embedding
scale, 1 + w RMSNorm), Phi (LayerNorm, partial rotary, readout bias), GPT-NeoX (fused q, k, v),
built from tiny configs, random weights, no download (more GPT-2 and BERT checks in
test_hf.py). The gated MLPs have intermediate_size = ⌊8n/3⌋, not a multiple of n. Skipped
without `transformers` (the optional extra `hf`).
"""

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import richness as rn
from richness.coordcheck import coord_check
from richness.nn import hf, infer_roles

transformers = pytest.importorskip("transformers")

VOCAB, SEQ, HEADS = 48, 16, 4


def swiglu(n: int) -> int:
    return 8 * n // 3  # 170 at n = 64: not a multiple of n


@dataclass(frozen=True)
class Arch:
    config: str
    kv_heads: int | None  # num_key_value_heads (None: the architecture has no such field)
    gated: bool  # SwiGLU MLP of ⌊8n/3⌋, else 4n
    embed: str
    q: str
    k: str  # the key projection, or the fused q, k, v one
    mlp_in: str
    mlp_out: str
    norm: str
    readout: str
    extra: tuple = ()  # more config fields
    head_dim: bool = False  # the config fixes head_dim (Gemma: 256): set it to n / heads
    model: str = "AutoModelForCausalLM"
    seeds: int = 1  # for the coordinate check
    lr: float = 0.002  # η0 of the coordinate check (stable at width 64: `coordcheck.stability`)

    def build(self, width: int, **kw) -> nn.Module:
        fields = dict(
            hidden_size=width,
            num_hidden_layers=2,
            num_attention_heads=HEADS,
            intermediate_size=swiglu(width) if self.gated else 4 * width,
            vocab_size=VOCAB,
            max_position_embeddings=SEQ,
            tie_word_embeddings=False,
            **dict(self.extra),
        )
        if self.kv_heads is not None:
            fields["num_key_value_heads"] = self.kv_heads
        if self.head_dim:
            fields["head_dim"] = width // HEADS
        fields.update(kw)
        config = getattr(transformers, self.config)(**fields)
        config._attn_implementation = "sdpa"
        cls = getattr(transformers, self.model)
        return cls.from_config(config) if self.model.startswith("Auto") else cls(config)


_LLAMA_NAMES = dict(
    embed="model.embed_tokens",
    q="model.layers.0.self_attn.q_proj",
    k="model.layers.0.self_attn.k_proj",
    mlp_in="model.layers.0.mlp.gate_proj",
    mlp_out="model.layers.0.mlp.down_proj",
    norm="model.layers.0.input_layernorm",
    readout="lm_head",
)
ARCHS = {
    "llama": Arch("LlamaConfig", 2, True, **_LLAMA_NAMES),
    "mistral": Arch("MistralConfig", 1, True, **_LLAMA_NAMES, extra=(("sliding_window", None),)),
    "qwen2": Arch("Qwen2Config", 2, True, **_LLAMA_NAMES),
    "gemma": Arch("GemmaConfig", 1, True, **_LLAMA_NAMES, head_dim=True),
    "phi": Arch(
        "PhiConfig",
        HEADS,
        False,
        **{**_LLAMA_NAMES, "mlp_in": "model.layers.0.mlp.fc1", "mlp_out": "model.layers.0.mlp.fc2"},
        extra=(("resid_pdrop", 0.0), ("embd_pdrop", 0.0)),
    ),
    "gpt_neox": Arch(
        "GPTNeoXConfig",
        None,
        False,
        embed="gpt_neox.embed_in",
        q="gpt_neox.layers.0.attention.query_key_value",
        k="gpt_neox.layers.0.attention.query_key_value",
        mlp_in="gpt_neox.layers.0.mlp.dense_h_to_4h",
        mlp_out="gpt_neox.layers.0.mlp.dense_4h_to_h",
        norm="gpt_neox.layers.0.input_layernorm",
        readout="lm_head",
    ),
}
ARCHS["gpt2"] = Arch(
    "GPT2Config",
    None,
    False,
    embed="transformer.wte",
    q="transformer.h.0.attn.c_attn",  # Conv1D, weight (in, out): fused q, k, v
    k="transformer.h.0.attn.c_attn",
    mlp_in="transformer.h.0.mlp.c_fc",
    mlp_out="transformer.h.0.mlp.c_proj",
    norm="transformer.h.0.ln_1",
    readout="lm_head",
    extra=(
        ("resid_pdrop", 0.0),
        ("embd_pdrop", 0.0),
        ("attn_pdrop", 0.0),
        ("bos_token_id", 0),
        ("eos_token_id", 0),
    ),
)
_BERT = "bert.encoder.layer.0"
ARCHS["bert"] = Arch(
    "BertConfig",
    None,
    False,
    embed="bert.embeddings.word_embeddings",
    q=f"{_BERT}.attention.self.query",
    k=f"{_BERT}.attention.self.key",
    mlp_in=f"{_BERT}.intermediate.dense",
    mlp_out=f"{_BERT}.output.dense",
    norm=f"{_BERT}.output.LayerNorm",
    readout="cls.predictions.decoder",
    extra=(("hidden_dropout_prob", 0.0), ("attention_probs_dropout_prob", 0.0)),
    model="BertForMaskedLM",
    # a bidirectional encoder starts near rank one over positions (attention averages, one
    # shared token-type row): one seed's slopes swing by ±0.5 (‖Δf‖ under μP: +0.48, −0.52,
    # −0.31 for seeds 0, 1, 2); three seeds give −0.12, as the causal models
    seeds=3,
    # at 0.002 one SGD step raises its loss at width 64 (0.504 → 0.579): the check refuses it
    # as unstable and suggests 2.4e-4
    lr=2.0**-12,
)
NAMES = list(ARCHS)


def _attention(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(getattr(m, "scaling", None), float)]


def _tokens(n=4):
    return torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", NAMES)
def test_roles_fan_in_and_width_are_read_against_the_base(name):
    arch = ARCHS[name]
    n = 96  # d_head 24; the MLP's 256 is not a multiple of 96
    roles = infer_roles(arch.build(n), arch.build(48))
    got = {key: (r.role, r.fan_in, r.width) for key, r in roles.items()}
    hidden = swiglu(n) if arch.gated else 4 * n
    assert got[f"{arch.embed}.weight"] == ("input", 1, n)
    assert got[f"{arch.q}.weight"] == ("hidden", n, n)
    assert got[f"{arch.k}.weight"] == ("hidden", n, n)  # n·H_kv/H or 3n rows, at width n
    assert got[f"{arch.mlp_in}.weight"] == ("hidden", n, n)
    assert got[f"{arch.mlp_out}.weight"] == ("hidden", hidden, n)  # real fan-in, width n
    assert got[f"{arch.norm}.weight"] == ("input", 1, n)  # norm gain: input-role vector
    assert got[f"{arch.readout}.weight"] == ("output", n, n)
    assert {r.width for r in roles.values() if r.role} == {n}
    readout_bias = roles.get(f"{arch.readout}.bias")
    assert readout_bias is None or readout_bias.role is None  # Phi's (V,): width-independent
    # no parameter is left out: rotary embeddings hold buffers only
    assert all(r.role or r.name.endswith("bias") for r in roles.values())


@pytest.mark.parametrize("name", NAMES)
def test_grouped_query_projections_have_the_kv_heads_size(name):
    arch = ARCHS[name]
    model = arch.build(64)
    k = model.get_submodule(arch.k).weight
    if arch.k == arch.q:  # fused q, k, v
        assert sorted(k.shape) == [64, 3 * 64]
    else:
        assert k.shape == (64 * (arch.kv_heads or HEADS) // HEADS, 64)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("p", "exponent"),
    [
        (rn.preset("mup", base_width=64), -1.0),
        (rn.richness(0.25, "stp", base_width=64), -0.75),
        (rn.richness(0.0, "stp", base_width=64), -0.5),
        (rn.preset("sp", base_width=64), -0.5),
    ],
)
def test_attention_logits_scale_as_d_head_to_minus_half_minus_r(name, p, exponent):
    arch = ARCHS[name]
    d_head0 = 64 / HEADS
    for width in (128, 256):
        model = rn.parameterize(arch.build(width), p, base=arch.build(64))
        d_head = width / HEADS
        expected = (d_head / d_head0) ** exponent / math.sqrt(d_head0)
        assert [m.scaling for m in _attention(model)] == pytest.approx([expected] * 2, rel=1e-12)
    base = rn.parameterize(arch.build(64), p, base=arch.build(128))
    assert [m.scaling for m in _attention(base)] == [d_head0**-0.5] * 2  # exactly standard


def test_absolute_tables_scale_attention_by_d_head_alone():
    model = rn.parameterize(
        ARCHS["llama"].build(128), rn.richness(0.5), base=ARCHS["llama"].build(64)
    )
    assert [m.scaling for m in _attention(model)] == pytest.approx([1 / 32] * 2, rel=1e-12)


def test_a_fixed_head_size_keeps_the_standard_scale():
    """head_dim fixed in the config (heads growing in number): d_head0 = d_head, s = 1/√d_head."""
    arch = ARCHS["gemma"]
    model = arch.build(128, head_dim=16, num_attention_heads=8)
    base = arch.build(64, head_dim=16, num_attention_heads=4)
    rn.parameterize(model, rn.preset("mup", base_width=64), base=base)
    assert [m.scaling for m in _attention(model)] == [0.25, 0.25]


def test_gemma_embedding_scale_is_cancelled_above_the_base():
    """Gemma multiplies its embedding by √n: the multiplier gets √(n0/n), so the embedding's
    output at init has the same scale at every width (√n0 · g·σ of the table)."""
    arch, p = ARCHS["gemma"], rn.preset("mup", base_width=32)
    rms = {}
    for width in (32, 128, 512):
        torch.manual_seed(0)
        model = rn.parameterize(arch.build(width), p, base=arch.build(64 if width == 32 else 32))
        g = {row["name"]: row["multiplier"] for row in rn.nn.table_of(model)}
        table = p.layer("input", width=width, fan_in=1).multiplier
        assert g["model.embed_tokens.weight"] == pytest.approx(table * (32 / width) ** 0.5)
        with torch.no_grad():
            rms[width] = model.model.embed_tokens(_tokens()).pow(2).mean().sqrt().item()
    assert rms[512] / rms[32] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_at_the_base_width_the_model_is_unchanged_in_float64(name):
    """n = n0, init="keep": logits equal the unparameterized model's, and three Adam steps
    equal torch's Adam on it (every g, η, ε factor and the attention scale are 1 there)."""
    arch = ARCHS[name]
    torch.manual_seed(0)
    plain = arch.build(64).double()
    model = arch.build(64).double()
    model.load_state_dict(plain.state_dict())
    before = [m.scaling for m in _attention(plain)]
    attributes = {name: set(vars(m)) for name, m in model.named_modules()}
    p = rn.preset("mup", optimizer="adam", base_width=64)
    rn.parameterize(model, p, base=arch.build(32), init="keep")
    assert {name: set(vars(model.get_submodule(name))) for name in attributes} == attributes
    assert [m.scaling for m in _attention(model)] == before
    rows = [row for row in rn.nn.table_of(model) if row["role"] is not None]
    assert {(row["width"], row["multiplier"], row["lr_factor"]) for row in rows} == {(64, 1.0, 1.0)}
    x = _tokens()
    assert torch.equal(model(input_ids=x).logits, plain(input_ids=x).logits)
    opt = rn.optimizer(model, lr=1e-3)
    assert {g["eps"] for g in opt.param_groups} == {1e-8}
    ref = torch.optim.Adam(plain.parameters(), lr=1e-3, eps=1e-8)
    for _ in range(3):
        for net, o in ((model, opt), (plain, ref)):
            o.zero_grad()
            net(input_ids=x).logits.square().mean().backward()
            o.step()
    torch.testing.assert_close(
        model(input_ids=x).logits, plain(input_ids=x).logits, rtol=0, atol=1e-12
    )


def _fits(arch: Arch, p: rn.Parameterization) -> dict[tuple[str, str], float]:
    def make(width):
        return hf.Logits(arch.build(width))

    kw = {"steps": 1, "lr": arch.lr, "seeds": range(arch.seeds), "n_train": 16, "n_probe": 16}
    kw["input_shape"] = (SEQ,)
    _, _, fits = coord_check(make, [64, 128, 256], p=p, **kw)
    return dict(zip(zip(fits.quantity, fits.layer, strict=True), fits.slope, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_coordinate_check_tells_mup_from_sp(name):
    """One centered SGD step at widths 64–256 under μP and SP, the same η0."""
    arch = ARCHS[name]
    mup = _fits(arch, rn.preset("mup", base_width=64))
    sp = _fits(arch, rn.preset("sp"))
    readout = f"model.{arch.readout}"
    rms = [s for (q, layer), s in mup.items() if q == "h_rms" and layer != readout]
    assert len(rms) >= 9 and max(abs(s) for s in rms) < 0.2  # C1: activations Θ(1)
    assert mup[("f0", "")] == pytest.approx(-0.5, abs=0.1)  # C3: ‖f0‖ ~ n^{-r}
    # C4 (NTC), ‖Δf‖ ~ n^0: measured −0.04 … −0.36 over seeds 0–2 of the causal models, a
    # pre-asymptotic drift that shrinks with width (Llama: −0.45, −0.24, −0.14 over 32–128,
    # 64–256, 128–512)
    assert -0.4 < mup[("df", "")] < 0.1
    assert sp[("df", "")] > mup[("df", "")] + 0.6  # SP at a fixed η0: ‖Δf‖ grows (C9)
