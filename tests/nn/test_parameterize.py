"""parameterize: multipliers, initialization, the base-width identity, state_dict."""

import math

import pytest
import torch
from torch import nn

import richness as rn
from richness.nn import Multiplier, effective_weights, table_of


def _reference_models(width):
    return {
        "mlp": (rn.models.MLP(10, width, 4, depth=4, bias=True), torch.randn(5, 10)),
        "cnn": (rn.models.CNN(3, width, 4, depth=4, bias=True), torch.randn(5, 3, 16, 16)),
        "linear": (rn.models.LinearNet(10, width, 2), torch.randn(5, 10)),
    }


@pytest.mark.parametrize("name", ["sp", "ntp", "ntp-lr", "mup", "mup-lr", "mf"])
@pytest.mark.parametrize("arch", ["mlp", "cnn", "linear"])
def test_presets_at_base_width_reproduce_the_unmodified_model(name, arch):
    """microsoft/mup's test_MLP_CNN_at_base_width, bit for bit (STYLE.md §1, mup 3)."""
    torch.manual_seed(0)
    model, x = _reference_models(32)[arch]
    expected = model(x)
    p = rn.preset(name, base_width=32)
    rn.parameterize(model, p, init="rescale")
    assert torch.equal(model(x), expected)
    opt = rn.optimizer(model, lr=0.1)
    assert all(group["lr"] == 0.1 for group in opt.param_groups)


@pytest.mark.parametrize("gauge", ["stp", "mup", "rescaling"])
def test_normal_init_has_the_table_std(gauge):
    width = 512
    model = rn.models.MLP(64, width, 10, depth=3)
    p = rn.richness(0.25, gauge, base_width=64)
    rn.parameterize(model, p, generator=torch.Generator().manual_seed(0))
    rows = {row["name"]: row for row in table_of(model)}
    for i, (role, fan_in) in enumerate([("input", 64), ("hidden", width), ("output", width)]):
        raw = model.layers[i].parametrizations.weight.original
        s = p.layer(role, width, fan_in)
        assert raw.std().item() == pytest.approx(s.init_std, rel=0.05)
        assert model.layers[i].weight.std().item() == pytest.approx(s.effective_std, rel=0.05)
        assert rows[f"layers.{i}.weight"]["role"] == role
        assert rows[f"layers.{i}.weight"]["lr_factor"] == pytest.approx(s.lr)


def test_biases_and_norm_gains_keep_their_effective_values():
    model = nn.Sequential(nn.Linear(8, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 2))
    rn.parameterize(model, rn.preset("mup"))
    assert torch.allclose(model[1].weight, torch.ones(32), rtol=1e-6, atol=0)
    assert torch.equal(model[0].bias, torch.zeros(32))  # the rule for vectors: init 0 / 1
    assert model[0].parametrizations.bias[0].role == "input"
    assert not hasattr(model[3], "parametrizations") or "bias" not in model[3].parametrizations


def test_effective_weight_assignment_goes_through_right_inverse():
    model = rn.models.MLP(4, 16, 1)
    rn.parameterize(model, rn.preset("mup"))
    w = torch.randn(16, 4)
    model.layers[0].weight = w
    g = model.layers[0].parametrizations.weight[0].multiplier
    assert torch.allclose(model.layers[0].weight, w)
    assert torch.allclose(model.layers[0].parametrizations.weight.original, w / g)


def test_state_dict_round_trip_keeps_multipliers():
    torch.manual_seed(0)
    a = rn.parameterize(rn.models.MLP(8, 64, 2), rn.preset("mup", base_width=16))
    b = rn.parameterize(rn.models.MLP(8, 64, 2), rn.preset("mup", base_width=16))
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 8)
    assert torch.equal(a(x), b(x))
    keys = a.state_dict().keys()
    assert "layers.0.parametrizations.weight.0.multiplier" in keys
    assert "layers.0.parametrizations.weight.0.lr_factor" in keys
    g = a.state_dict()["layers.0.parametrizations.weight.0.multiplier"].item()
    assert g == pytest.approx(math.sqrt(64 / 16))


def test_parameterizing_twice_is_refused():
    model = rn.parameterize(rn.models.MLP(8, 16, 2), rn.preset("mup"))
    with pytest.raises(ValueError, match="already parameterized"):
        rn.parameterize(model, rn.preset("ntp"))


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="init"):
        rn.parameterize(rn.models.MLP(8, 16, 2), rn.preset("mup"), init="xavier")


def test_effective_weights_are_gauge_invariant_names():
    model = rn.parameterize(rn.models.MLP(8, 16, 2, bias=True), rn.preset("mup"))
    assert set(effective_weights(model)) == {
        f"layers.{i}.{a}" for i in range(3) for a in ("weight", "bias")
    }


def test_multiplier_is_a_buffer_module():
    m = Multiplier(2.0, 0.5, "hidden", 4, 4)
    assert set(dict(m.named_buffers())) == {"multiplier", "lr_factor"}
    x = torch.randn(3)
    assert torch.allclose(m.right_inverse(m(x)), x)


def _attributes(model):
    """{module name: the names in its __dict__}, torch's own bookkeeping dicts included."""
    return {name: set(vars(module)) for name, module in model.named_modules()}


@pytest.mark.parametrize("arch", ["mlp", "cnn", "transformer"])
def test_parameterize_adds_no_attribute_to_the_model(arch):
    """The table travels in the Multiplier modules (issue 12): the user's modules get torch's
    parametrizations (in `_modules`) and nothing else."""
    from richness.nn.transformer import Transformer

    if arch == "transformer":
        model, base = Transformer(12, 64, seq_len=4), Transformer(12, 32, seq_len=4)
    else:
        model, base = _reference_models(64)[arch][0], _reference_models(32)[arch][0]
    before = _attributes(model)
    rn.parameterize(model, rn.preset("mup", base_width=32), base=base)
    after = {name: set(vars(model.get_submodule(name))) for name in before}
    assert after == before
    new = set(dict(model.named_modules())) - set(before)
    assert new and all(".parametrizations" in name for name in new)


def test_the_table_is_read_from_the_multipliers():
    from richness.nn.multiplier import parameterization_of

    p = rn.richness(0.25, "mup", base_width=16)
    model = rn.models.MLP(8, 32, 2)
    assert parameterization_of(model) is None
    rn.parameterize(model, p)
    assert parameterization_of(model) is p
    assert parameterization_of(nn.Sequential(model)) is p  # a wrapper finds it too
    mixed = nn.Sequential(model, rn.parameterize(rn.models.MLP(2, 32, 2), rn.preset("sp")))
    with pytest.raises(ValueError, match="different tables"):
        parameterization_of(mixed)
