"""`richness check` as users need it: their optimizer, loss and data, a learning rate chosen
when none is given, and an unstable one reported as unstable (issue 13 item 4)."""

import sys
import textwrap

import pytest
import torch
from typer.testing import CliRunner

import richness as rn
from richness.cli import app
from richness.coordcheck import UnstableError, coord_check

pytest.importorskip("transformers")

WIDTHS = [64, 128, 256]


def make_llama(width):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=width,
        intermediate_size=int(8 * width / 3),
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=64,
        max_position_embeddings=16,
        tie_word_embeddings=False,
        attention_dropout=0.0,
    )
    return rn.nn.hf.Logits(LlamaForCausalLM(config))


def _share_agreeing(fits, quantity):
    """The share of a quantity's layers whose slope agrees with the prediction (`agreement`)."""
    verdicts = fits.loc[fits.quantity == quantity, "agreement"]
    return (verdicts == "agrees").mean()


def test_a_llama_at_mup_with_sgd_lr_005_is_reported_unstable_with_a_smaller_lr():
    p = rn.preset("mup", base_width=64)
    with pytest.raises(UnstableError, match=r"unstable: at lr=0.05 .* try --lr ") as err:
        coord_check(make_llama, WIDTHS, p=p, lr=0.05, seeds=range(2))
    assert "width 64" in str(err.value)


def test_without_lr_the_check_chooses_a_stable_one_and_mup_reads_right():
    p = rn.preset("mup", base_width=64)
    _, _, fits = coord_check(make_llama, WIDTHS, p=p, seeds=range(3))
    assert fits.attrs["lr_chosen"] and fits.attrs["lr"] < 0.05
    # most layers read right; block 0's q/k (and its gated MLP) read low at these widths: the
    # attention exponents of issue 14, reported in docs/hf.md, not asserted away here
    assert _share_agreeing(fits, "dh") >= 0.5
    assert _share_agreeing(fits, "h_rms") >= 0.8


def test_adamw_and_cross_entropy_on_a_llama():
    p = rn.preset("mup", base_width=64, optimizer="adam")
    _, metrics, fits = coord_check(
        make_llama, WIDTHS, p=p, optimizer_kind="adamw", loss="cross_entropy", seeds=range(3)
    )
    assert fits.attrs["lr_chosen"]
    losses = metrics[metrics.quantity == "loss"].groupby("step").value.mean()
    assert losses.iloc[-1] < losses.iloc[0]
    assert _share_agreeing(fits, "dh") >= 0.5


def test_the_cli_takes_optimizer_loss_and_the_users_data(tmp_path, monkeypatch):
    (tmp_path / "my_check.py").write_text(
        textwrap.dedent(
            """
            import torch

            def make(width):
                return torch.nn.Sequential(
                    torch.nn.Linear(8, width), torch.nn.Tanh(), torch.nn.Linear(width, 3)
                )

            def batch():
                g = torch.Generator().manual_seed(1)
                x = torch.randn(96, 8, generator=g)
                return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # classes 0, 1, 2
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["check", "my_check:make", "--widths", "64,128,256", "--preset", "mup"]
    args += ["--base-width", "64", "--optimizer", "adam", "--loss", "cross_entropy"]
    result = CliRunner().invoke(app, [*args, "--data", "my_check:batch"])
    assert result.exit_code == 0, result.output
    assert "(chosen: stable at the smallest width), adam, cross_entropy" in result.output
    unstable = CliRunner().invoke(app, [*args, "--data", "my_check:batch", "--lr", "1000"])
    assert unstable.exit_code == 1
    assert "unstable" in unstable.output and "lr=1000" in unstable.output
    sys.modules.pop("my_check", None)


def test_data_targets_that_do_not_match_the_outputs_are_named():
    def batch():
        return torch.randn(80, 12), torch.randn(80, 5)

    def make(width):
        return torch.nn.Sequential(torch.nn.Linear(12, width), torch.nn.Linear(width, 2))

    with pytest.raises(ValueError, match=r"targets of shape \(80, 5\)"):
        coord_check(make, [32, 64], data=batch, lr=0.1)
