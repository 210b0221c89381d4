"""Checkpoints: the parameterization travels with state_dict and is checked on load."""

import io

import pytest
import torch

import richness as rn


def _model(p, seed=0):
    torch.manual_seed(seed)
    return rn.parameterize(rn.models.MLP(8, 64, 3, bias=True), p)


def _train(model, steps, x, y):
    opt = rn.optimizer(model, lr=0.1, momentum=0.0)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
        opt.step()


def test_save_load_continue_training_is_identical():
    p = rn.richness(0.25, "mup", base_width=16)
    x, y = torch.randn(32, 8), torch.randn(32, 3)
    a = _model(p)
    _train(a, 3, x, y)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = _model(p, seed=1)  # a freshly built model, other init
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(a(x), b(x))
    _train(a, 3, x, y)
    _train(b, 3, x, y)
    assert torch.equal(a(x), b(x))


def test_loading_into_another_parameterization_is_an_error():
    x = torch.randn(4, 8)
    a = _model(rn.richness(0.5, "mup", base_width=16))
    state = a.state_dict()
    for other in (
        rn.richness(0.5, "stp", base_width=16),
        rn.richness(0.25, "mup", base_width=16),
        rn.richness(0.5, "mup", base_width=32),
    ):
        b = _model(other)
        with pytest.raises(ValueError, match="another parameterization"):
            b.load_state_dict(state)
    assert a(x).shape == (4, 3)


def test_extra_state_is_plain_data():
    a = _model(rn.preset("mup", base_width=16))
    extra = {k: v for k, v in a.state_dict().items() if k.endswith("_extra_state")}
    assert extra
    for value in extra.values():
        assert value["role"] in ("input", "hidden", "output")
        assert value["gauge"] == "mup" and value["r"] == 0.5 and value["base_width"] == 16


def test_a_loaded_model_builds_its_optimizer_from_the_multipliers():
    p = rn.richness(0.25, "mup", base_width=16)
    a = _model(p)
    b = _model(p, seed=1)
    b.load_state_dict(a.state_dict())
    groups = [(g["layer"], g["lr"]) for g in rn.optimizer(b, lr=0.1).param_groups]
    assert groups == [(g["layer"], g["lr"]) for g in rn.optimizer(a, lr=0.1).param_groups]
