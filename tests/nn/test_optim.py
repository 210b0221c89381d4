"""rn.optimizer: stock torch.optim with per-layer groups carrying the table's LR factors."""

import pytest
import torch

import richness as rn


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_groups_carry_the_table(kind):
    optimizer = "sgd" if kind == "sgd" else "adam"
    p = rn.richness(0.5, "stp", optimizer=optimizer)
    model = rn.parameterize(rn.models.MLP(16, 256, 2), p)
    opt = rn.optimizer(model, lr=0.1, kind=kind, weight_decay=1e-4)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    assert type(opt) is cls
    by_layer = {g["layer"]: g for g in opt.param_groups}
    for i, (role, fan_in) in enumerate([("input", 16), ("hidden", 256), ("output", 256)]):
        group = by_layer[f"layers.{i}.weight"]
        assert group["role"] == role
        assert group["lr"] == pytest.approx(0.1 * p.layer(role, 256, fan_in).lr)
        assert group["lr_factor"] == pytest.approx(p.layer(role, 256, fan_in).lr)
        s = p.layer(role, 256, fan_in)
        if kind == "adam":  # coupled L2 for Adam: in step with the gradient (docs/adam.md)
            assert group["weight_decay"] == pytest.approx(1e-4 * s.l2, rel=1e-12)
        else:  # width-independent decay: lr_ℓ·wd_ℓ = η0·wd0 in every layer
            assert group["lr"] * group["weight_decay"] == pytest.approx(0.1 * 1e-4, rel=1e-12)
        if kind != "sgd":
            assert group["eps"] == pytest.approx(1e-8 * s.eps, rel=1e-12)


def test_sgd_momentum_steps():
    model = rn.parameterize(rn.models.MLP(4, 32, 1), rn.preset("mup"))
    opt = rn.optimizer(model, lr=0.01, momentum=0.9)
    x = torch.randn(8, 4)
    before = model(x).detach()
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    assert not torch.equal(model(x), before)


def test_refuses_unparameterized_model():
    with pytest.raises(ValueError, match=r"call rn.parameterize\(model, p\) first"):
        rn.optimizer(rn.models.MLP(4, 8, 1), lr=0.1)


def test_finds_the_table_through_wrappers_and_copies():
    """The table is read from the Multiplier modules, so any module holding them works."""
    import copy

    model = rn.parameterize(rn.models.MLP(4, 32, 1), rn.richness(0.5, base_width=16))
    wrapped = torch.nn.Sequential(model)
    want = [g["lr"] for g in rn.optimizer(model, lr=0.1).param_groups]
    assert [g["lr"] for g in rn.optimizer(wrapped, lr=0.1).param_groups] == want
    assert [g["lr"] for g in rn.optimizer(copy.deepcopy(model), lr=0.1).param_groups] == want


def test_refuses_adam_with_an_sgd_table():
    model = rn.parameterize(rn.models.MLP(4, 8, 1), rn.preset("mup"))
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        rn.optimizer(model, lr=0.1, kind="adam")
    with pytest.raises(ValueError, match="kind"):
        rn.optimizer(model, lr=0.1, kind="lion")
    with pytest.raises(ValueError, match="lr"):
        rn.optimizer(model, lr=-1.0)
