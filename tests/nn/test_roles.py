"""Role inference: by base comparison, by position, explicit; and its errors."""

import pytest
import torch
from torch import nn

import richness as rn
from richness.nn import infer_roles


def _roles(model, **kw):
    return {
        name: (info.role, info.fan_in, info.width)
        for name, info in infer_roles(model, **kw).items()
    }


def test_mlp_by_base_and_by_position_agree():
    model, base = (
        rn.models.MLP(10, 64, 3, depth=4, bias=True),
        rn.models.MLP(10, 8, 3, depth=4, bias=True),
    )
    by_base, by_position = _roles(model, base=base), _roles(model)
    assert by_base == by_position
    assert by_base["layers.0.weight"] == ("input", 10, 64)
    assert by_base["layers.1.weight"] == ("hidden", 64, 64)
    assert by_base["layers.2.weight"] == ("hidden", 64, 64)
    assert by_base["layers.3.weight"] == ("output", 64, 64)
    assert by_base["layers.1.bias"] == ("input", 1, 64)
    assert by_base["layers.3.bias"] == (None, 1, 3)  # readout bias: width-independent


def test_cnn_counts_channels_as_width():
    roles = _roles(rn.models.CNN(3, 32, 10, depth=4), base=rn.models.CNN(3, 4, 10, depth=4))
    assert roles["convs.0.weight"] == ("input", 27, 32)
    assert roles["convs.1.weight"] == ("hidden", 32 * 9, 32)
    assert roles["readout.weight"] == ("output", 32, 32)


class TinyLM(nn.Module):
    def __init__(self, width, vocab=50):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens):
        return self.head(self.norm(torch.relu(self.mix(self.embed(tokens)))))


def test_embedding_is_an_input_layer():
    roles = _roles(TinyLM(64), base=TinyLM(16))
    assert roles["embed.weight"] == ("input", 1, 64)
    assert roles["mix.weight"] == ("hidden", 64, 64)
    assert roles["norm.weight"] == ("input", 1, 64)
    assert roles["head.weight"] == ("output", 64, 64)
    model = rn.parameterize(TinyLM(64), rn.preset("mup", base_width=16), base=TinyLM(16))
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 50)


def test_depthwise_conv_is_input_like_when_read_from_base():
    def mixer(w):
        return nn.Sequential(
            nn.Conv2d(3, w, 3),
            nn.Conv2d(w, w, 5, groups=w),
            nn.Conv2d(w, w, 1),
            nn.Flatten(),
            nn.LazyLinear(2) if False else nn.Linear(w, 2),
        )

    roles = _roles(mixer(32), base=mixer(8))
    assert roles["1.weight"] == ("input", 25, 32)
    assert roles["2.weight"] == ("hidden", 32, 32)


def test_explicit_roles_win():
    roles = _roles(rn.models.MLP(10, 64, 3), roles={"layers.1": "output"})
    assert roles["layers.1.weight"][0] == "output"


def test_a_layer_that_does_not_scale_is_an_error():
    def net(w):
        return nn.Sequential(
            nn.Linear(10, w), nn.Linear(w, 7), nn.Linear(7, 7), nn.Linear(7, w), nn.Linear(w, 2)
        )

    with pytest.raises(ValueError, match="'2.weight'.*no dimension scales"):
        infer_roles(net(64), base=net(16))
    roles = _roles(net(64), base=net(16), roles={"2": "input", "1.weight": "output"})
    assert roles["2.weight"][0] == "input"


def test_one_layer_model_needs_a_base():
    with pytest.raises(ValueError, match="fewer than two weight layers"):
        infer_roles(nn.Linear(4, 4))


def test_unknown_explicit_role_or_name():
    with pytest.raises(ValueError, match="roles\\['layers.0'\\]"):
        infer_roles(rn.models.MLP(4, 8, 1), roles={"layers.0": "middle"})
    with pytest.raises(ValueError, match="'nope'"):
        infer_roles(rn.models.MLP(4, 8, 1), roles={"nope": "input"})


def test_unsupported_module_with_matrix_parameter():
    class Bilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Bilinear(4, 4, 4)
            self.out = nn.Linear(4, 1)

    with pytest.raises(TypeError, match="inner.weight"):
        infer_roles(Bilinear())


def test_base_with_other_parameters():
    with pytest.raises(ValueError, match="base has different parameters"):
        infer_roles(rn.models.MLP(4, 8, 1, depth=3), base=rn.models.MLP(4, 8, 1, depth=4))


def test_the_model_width_is_the_input_layers_for_grouped_query_and_swiglu_sizes():
    """k/v projections of n·H_kv/H rows and a gated MLP of ⌊8n/3⌋ are evaluated at n, the
    embedding's width, with their own fan-in: not at the smallest width dimension (n/4)."""

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.embed = nn.Embedding(50, n)
            self.proj_q = nn.Linear(n, n)
            self.proj_k = nn.Linear(n, n // 4)  # one key head of four
            self.up = nn.Linear(n, 8 * n // 3)
            self.down = nn.Linear(8 * n // 3, n)
            self.norm = nn.LayerNorm(n)
            self.head = nn.Linear(n, 50, bias=False)

    roles = _roles(Block(96), base=Block(48))
    assert roles["embed.weight"] == ("input", 1, 96)
    assert roles["proj_k.weight"] == ("hidden", 96, 96)
    assert roles["proj_k.bias"] == ("input", 1, 96)
    assert roles["up.weight"] == ("hidden", 96, 96)
    assert roles["down.weight"] == ("hidden", 256, 96)
    assert roles["norm.weight"] == ("input", 1, 96)
    assert roles["head.weight"] == ("output", 96, 96)
    table = rn.parameterize(Block(48), rn.preset("mup", base_width=48), base=Block(96))
    assert {(row["multiplier"], row["lr_factor"]) for row in rn.nn.table_of(table)} == {(1.0, 1.0)}
