"""LR schedulers, clipping and weight decay keep the per-layer learning rates of the table."""

import pytest
import torch

import richness as rn


def _setup(kind="sgd", optimizer="sgd", **kw):
    torch.manual_seed(0)
    p = rn.richness(0.5, "stp", optimizer=optimizer, base_width=16)
    model = rn.parameterize(rn.models.MLP(8, 64, 2), p)
    return model, rn.optimizer(model, lr=0.1, kind=kind, **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t)),
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=20
        ),
    ],
)
def test_schedulers_scale_every_group_and_keep_the_factors(make):
    model, opt = _setup()
    sched = make(opt)
    x = torch.randn(16, 8)
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        sched.step()
        ratios = [g["lr"] / g["lr_factor"] for g in opt.param_groups]
        assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)  # one schedule, many factors


def test_gradient_clipping_is_global_and_per_group_lrs_still_apply():
    model, opt = _setup()
    x = torch.randn(16, 8)
    before = {g["layer"]: g["params"][0].detach().clone() for g in opt.param_groups}
    opt.zero_grad()
    (100 * model(x).pow(2).mean()).backward()
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    assert total > 1.0
    grads = {g["layer"]: g["params"][0].grad.clone() for g in opt.param_groups}
    opt.step()
    for g in opt.param_groups:
        step = before[g["layer"]] - g["params"][0].detach()
        assert torch.allclose(step, g["lr"] * grads[g["layer"]], rtol=1e-5, atol=1e-7)


def test_adamw_weight_decay_is_decoupled_and_scaled_by_the_group_lr():
    """AdamW: θ ← θ − lr·wd·θ − lr·adam_step, with each group's own lr and wd (PyTorch's rule;
    rn.optimizer's default wd_ℓ = wd0 / lr_factor_ℓ makes lr·wd = η0·wd0 in every group)."""
    _, opt = _setup(kind="adamw", optimizer="adam", weight_decay=0.1)
    for g in opt.param_groups:
        g["params"][0].grad = torch.zeros_like(g["params"][0])
    before = {g["layer"]: g["params"][0].detach().clone() for g in opt.param_groups}
    opt.step()  # zero gradients: only the decay acts
    for g in opt.param_groups:
        expected = before[g["layer"]] * (1 - g["lr"] * g["weight_decay"])
        assert g["lr"] * g["weight_decay"] == pytest.approx(0.1 * 0.1, rel=1e-12)
        assert torch.allclose(g["params"][0].detach(), expected, rtol=1e-6)
