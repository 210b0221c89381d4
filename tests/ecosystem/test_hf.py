"""Hugging Face transformers models (GPT-2, BERT) built from small configs, on the richness scale.

No download: every model is a config instantiated with random weights. Skipped without
`transformers` (the optional extra `hf`).
"""

import math

import pytest
import torch
from torch import nn

import richness as rn
from richness.coordcheck import coord_check
from richness.measure.meter import Meter
from richness.nn import effective_weights, hf, infer_roles, layout_of

transformers = pytest.importorskip("transformers")
from transformers.pytorch_utils import Conv1D  # noqa: E402

VOCAB, SEQ = 64, 16


def gpt2(width, n_head=2, tie=False, attn="sdpa"):
    config = transformers.GPT2Config(
        n_embd=width,
        n_layer=2,
        n_head=n_head,
        vocab_size=VOCAB,
        n_positions=SEQ,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=tie,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    config._attn_implementation = attn
    return transformers.GPT2LMHeadModel(config)


def make_gpt2(width):
    """The factory a user hands to `richness check`: width -> model of token ids."""
    return hf.Logits(gpt2(width))


def bert(width):
    config = transformers.BertConfig(
        hidden_size=width,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=4 * width,
        vocab_size=VOCAB,
        max_position_embeddings=SEQ,
        tie_word_embeddings=False,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForMaskedLM(config)


def _tokens(n=4):
    return torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(0))


def test_gpt2_roles_read_conv1d_transposed():
    roles = {k: (v.role, v.fan_in, v.width) for k, v in infer_roles(gpt2(128), gpt2(64)).items()}
    block = "transformer.h.0"
    assert roles["transformer.wte.weight"] == ("input", 1, 128)
    assert roles["transformer.wpe.weight"] == ("input", 1, 128)
    # (in, out) storage; the fused q, k, v (3n) and the MLP (4n) sit at the model's width n
    assert roles[f"{block}.attn.c_attn.weight"] == ("hidden", 128, 128)
    assert roles[f"{block}.mlp.c_fc.weight"] == ("hidden", 128, 128)
    assert roles[f"{block}.mlp.c_proj.weight"] == ("hidden", 4 * 128, 128)
    assert roles[f"{block}.ln_1.weight"] == ("input", 1, 128)  # LayerNorm gain: input vector
    assert roles[f"{block}.attn.c_attn.bias"] == ("input", 1, 128)
    assert roles["lm_head.weight"] == ("output", 128, 128)
    assert layout_of(Conv1D(5, 3)).fan_out_dim == 1


def test_gpt2_at_the_base_width_is_the_unparameterized_model_in_float64():
    """n = n0, γ = 1: c_attn (3n), c_fc (4n) and every other layer get g = η = ε = 1, and the
    model trains step for step like the plain GPT-2 under torch's Adam."""
    torch.manual_seed(0)
    plain = hf.Logits(gpt2(64)).double()
    model = hf.Logits(gpt2(64)).double()
    model.load_state_dict(plain.state_dict())
    p = rn.preset("mup", optimizer="adam", base_width=64)
    rn.parameterize(model, p, base=hf.Logits(gpt2(32)), init="keep")
    rows = [row for row in rn.nn.table_of(model) if row["role"] is not None]
    assert {(row["width"], row["multiplier"], row["lr_factor"]) for row in rows} == {(64, 1.0, 1.0)}
    assert {m.attn.scaling for m in model.model.transformer.h} == {32**-0.5}
    opt = rn.optimizer(model, lr=1e-2)
    assert {g["eps"] for g in opt.param_groups} == {1e-8}
    ref = torch.optim.Adam(plain.parameters(), lr=1e-2, eps=1e-8)
    for _ in range(3):
        for net, o in ((model, opt), (plain, ref)):
            o.zero_grad()
            net(_tokens()).square().mean().backward()
            o.step()
        torch.testing.assert_close(model(_tokens()), plain(_tokens()), rtol=0, atol=1e-13)


class _Stack(nn.Module):
    """Linear → tanh → (Linear or Conv1D) → tanh → Linear: the middle layer in either storage."""

    def __init__(self, width, conv1d):
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.mid = Conv1D(width, width) if conv1d else nn.Linear(width, width)
        self.out = nn.Linear(width, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.mid(torch.tanh(self.inp(x)))))


def test_conv1d_trains_like_the_transposed_linear_in_float64():
    p = rn.richness(0.5, "stp", base_width=16)
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    models = []
    for conv1d in (False, True):
        torch.manual_seed(0)
        models.append(rn.parameterize(_Stack(32, conv1d).double(), p, base=_Stack(16, conv1d)))
    linear, conv = models
    with torch.no_grad():
        conv.inp.weight = linear.inp.weight
        conv.mid.weight = linear.mid.weight.t()  # Conv1D stores (in, out)
        conv.mid.bias.copy_(linear.mid.bias)
        conv.out.weight = linear.out.weight
        conv.out.bias.copy_(linear.out.bias)
    meters = [Meter(m, x, metrics=["default", "weights"]) for m in models]
    for model in models:
        opt = rn.optimizer(model, lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
            opt.step()
    torch.testing.assert_close(conv(x), linear(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv.mid.weight.t(), linear.mid.weight, rtol=1e-12, atol=1e-12)
    measured = []
    for meter in meters:  # the same random start for every power iteration
        torch.manual_seed(1)
        measured.append(meter.measure())
    want, got = measured
    assert got.keys() == want.keys() and "align/mid" in got
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


@pytest.mark.parametrize(
    ("p", "exponent"),
    [
        (rn.preset("mup", base_width=64), -1.0),
        (rn.richness(0.25, "stp", base_width=64), -0.75),
        (rn.richness(0.0, "stp", base_width=64), -0.5),
        (rn.preset("sp", base_width=64), -0.5),
    ],
)
def test_attention_logits_scale_as_d_head_to_minus_half_minus_r(p, exponent):
    model = rn.parameterize(gpt2(256), p, base=gpt2(64))
    d_head, d_head0 = 128, 32  # two heads; base width 64
    expected = (d_head / d_head0) ** exponent / math.sqrt(d_head0)
    scales = [m.scaling for m in model.modules() if type(m).__name__ == "GPT2Attention"]
    assert scales == pytest.approx([expected, expected], rel=1e-12)
    base = rn.parameterize(gpt2(64), p, base=gpt2(128))
    base_scales = [m.scaling for m in base.modules() if type(m).__name__ == "GPT2Attention"]
    assert base_scales == pytest.approx([d_head0**-0.5] * 2)  # standard at the base width


def test_every_attention_backend_reads_the_scale():
    outputs = []
    for attn in ("eager", "sdpa"):
        torch.manual_seed(0)
        model = gpt2(128, attn=attn).double()
        rn.parameterize(model, rn.preset("mup", base_width=64), base=gpt2(64))
        outputs.append(model(input_ids=_tokens()).logits)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-10)
    torch.manual_seed(0)
    standard = gpt2(128, attn="eager").double()
    rn.parameterize(standard, rn.preset("mup", base_width=64), base=gpt2(64))
    for m in standard.modules():
        if type(m).__name__ == "GPT2Attention":
            m.scaling = 64**-0.5  # what the model had before parameterize
    assert not torch.allclose(standard(input_ids=_tokens()).logits, outputs[0])


def test_tied_embeddings_are_refused_until_untied():
    model = gpt2(128, tie=True)
    assert model.lm_head.weight is model.transformer.wte.weight
    with pytest.raises(ValueError, match="tied"):
        rn.parameterize(model, rn.preset("mup", base_width=64), base=gpt2(64, tie=True))
    hf.untie(model)
    assert model.lm_head.weight is not model.transformer.wte.weight
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    assert model.config.tie_word_embeddings is False
    model.tie_weights()  # transformers' own re-tying now leaves them apart
    assert model.lm_head.weight is not model.transformer.wte.weight
    rn.parameterize(model, rn.preset("mup", base_width=64), base=hf.untie(gpt2(64, tie=True)))
    table = {row["name"]: row["role"] for row in rn.nn.table_of(model)}
    assert table["transformer.wte.weight"] == "input"
    assert table["lm_head.weight"] == "output"


def test_bert_linear_embedding_layernorm_and_attention():
    model = rn.parameterize(bert(128), rn.preset("mup", base_width=64), base=bert(64))
    roles = {row["name"]: row["role"] for row in rn.nn.table_of(model)}
    layer = "bert.encoder.layer.0"
    assert roles["bert.embeddings.word_embeddings.weight"] == "input"
    assert roles["bert.embeddings.LayerNorm.weight"] == "input"
    assert roles[f"{layer}.attention.self.query.weight"] == "hidden"
    assert roles[f"{layer}.output.LayerNorm.weight"] == "input"
    assert roles["cls.predictions.transform.dense.weight"] == "hidden"
    assert roles["cls.predictions.decoder.weight"] == "output"
    scales = [m.scaling for m in model.modules() if type(m).__name__ == "BertSelfAttention"]
    assert scales == pytest.approx([32**0.5 / 64] * 2)  # √d_head0 / d_head at r = 1/2
    logits = hf.Logits(model)(_tokens())
    assert logits.shape == (4, SEQ * VOCAB) and torch.isfinite(logits).all()


def _slopes(fits, quantity):
    rows = fits[fits.quantity == quantity]
    return dict(zip(rows.layer, rows.slope, strict=True))


def _local_slopes(runs, metrics, quantity, step, widths):
    """Slope of log mean value between consecutive widths, per layer."""
    m = metrics.merge(runs[["run_id", "width"]], on="run_id")
    m = m[(m.quantity == quantity) & (m.step == step)]
    table = m.groupby(["layer", "width"]).value.mean().unstack()
    lo, hi = widths
    return (table[hi] / table[lo]).apply(math.log) / math.log(hi / lo)


HIDDEN = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def test_coordinate_check_tells_mup_from_sp_on_gpt2():
    widths, kw = [64, 128, 256], {"steps": 1, "lr": 0.002, "seeds": range(1), "n_train": 16}
    _, _, mup = coord_check(make_gpt2, widths, p=rn.preset("mup", base_width=64), **kw)
    _, _, sp = coord_check(make_gpt2, widths, p=rn.preset("sp"), **kw)
    df_mup, df_sp = _slopes(mup, "df")[""], _slopes(sp, "df")[""]
    assert abs(df_mup) < 0.25  # NTC (C4): ‖Δf‖ ~ n^0 under μP
    assert df_sp > df_mup + 0.4  # SP at a fixed LR: ‖Δf‖ grows with width (C9)
    assert _slopes(mup, "f0")[""] == pytest.approx(-0.5, abs=0.05)  # C3: ‖f0‖ ~ n^{-r}
    dh_mup, dh_sp = _slopes(mup, "dh"), _slopes(sp, "dh")
    hidden = [layer for layer in dh_mup if layer.endswith(HIDDEN)]
    assert len(hidden) == 8  # four hidden layers per block, two blocks
    # C2 at these small widths (pre-asymptotic: the widest pairs are in the slow test):
    # the hidden slopes average r = 1/2 under μP and are larger by ≥ 0.3 in every layer under SP
    assert sum(dh_mup[layer] for layer in hidden) / 8 == pytest.approx(0.5, abs=0.15)
    assert all(dh_sp[layer] > dh_mup[layer] + 0.3 for layer in hidden)


@pytest.mark.slow
def test_coordinate_check_gpt2_hidden_updates_grow_as_sqrt_width():
    widths, kw = [128, 256, 512, 1024], {"steps": 1, "lr": 0.002, "seeds": range(2)}
    runs, metrics, _ = coord_check(
        make_gpt2, widths, p=rn.preset("mup", base_width=128), n_train=32, **kw
    )
    local = _local_slopes(runs, metrics, "dh", 1, (512, 1024))
    hidden = local[[layer.endswith(HIDDEN) for layer in local.index]]
    assert len(hidden) == 8
    # C2: ‖Δh‖ ~ n^{1/2} at the widest pair (docs/hf.md: +0.45 to +0.59, mean +0.51)
    assert hidden.mean() == pytest.approx(0.5, abs=0.1)
    assert (hidden - 0.5).abs().max() < 0.2
    assert abs(local["model.lm_head"]) < 0.15  # C4: ‖Δf‖ ~ n^0
    sp_runs, sp_metrics, _ = coord_check(make_gpt2, widths, p=rn.preset("sp"), n_train=32, **kw)
    sp_local = _local_slopes(sp_runs, sp_metrics, "dh", 1, (512, 1024))
    assert sp_local["model.lm_head"] > 0.8  # SP: ‖Δf‖ ~ n^1 at a fixed LR


def test_richness_check_runs_on_a_hugging_face_factory(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from richness.cli import app

    (tmp_path / "my_gpt2.py").write_text(
        "import transformers\n"
        "from richness.nn import hf\n\n\n"
        "def make(width):\n"
        "    config = transformers.GPT2Config(n_embd=width, n_layer=1, n_head=2, vocab_size=32,\n"
        "        n_positions=8, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False,\n"
        "        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)\n"
        "    return hf.Logits(transformers.GPT2LMHeadModel(config))\n"
    )
    monkeypatch.chdir(tmp_path)
    args = ["check", "my_gpt2:make", "--widths", "32,64", "--preset", "mup", "--base-width", "32"]
    args += ["--steps", "1", "--seeds", "1", "--lr", "0.002", "--input-shape", "8"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "model.transformer.h.0.mlp.c_fc" in result.output


def test_an_attention_module_without_a_scaling_attribute_is_an_error():
    model = gpt2(128)
    del model.transformer.h[0].attn.scaling  # as in older transformers: scale computed inline
    with pytest.raises(TypeError, match="scaling"):
        rn.parameterize(model, rn.preset("mup", base_width=64), base=gpt2(64))


def test_effective_weights_name_hf_parameters():
    model = rn.parameterize(gpt2(128), rn.preset("mup", base_width=64), base=gpt2(64))
    weights = effective_weights(model)
    assert weights["transformer.h.0.attn.c_attn.weight"].shape == (128, 384)
