"""StackedUpdate applies torch.optim's own step to every member of a stack (float64, 1e-12)."""

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from richness.nn.stacked_optim import StackedUpdate

CASES = [
    (torch.optim.SGD, {}),
    (torch.optim.SGD, {"momentum": 0.9, "weight_decay": 1e-2}),
    (torch.optim.SGD, {"momentum": 0.9, "dampening": 0.3}),
    (torch.optim.SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}),
    (torch.optim.Adam, {"betas": (0.8, 0.95), "weight_decay": 1e-2}),
    (torch.optim.AdamW, {"weight_decay": 0.1, "eps": 1e-6}),
]


def _members(n=3):
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 2)).double() for _ in range(n)]


@pytest.mark.parametrize(("kind", "settings"), CASES)
def test_stacked_update_equals_torch_optim(kind, settings):
    models = _members()
    # per-member and per-layer learning rates, as rn.optimizer's groups carry
    optimizers = [
        kind(
            [
                {"params": m[0].parameters(), "lr": 0.01 * (i + 1)},
                {"params": m[1].parameters(), "lr": 0.03 / (i + 1)},
            ],
            **settings,
        )
        for i, m in enumerate(models)
    ]
    params, _ = stack_module_state(models)
    stacked = {k: v.detach().clone() for k, v in params.items()}
    update = StackedUpdate(optimizers, models, list(stacked))
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = {
            k: torch.randn(v.shape, generator=generator, dtype=v.dtype) for k, v in stacked.items()
        }
        for i, (model, opt) in enumerate(zip(models, optimizers, strict=True)):
            for name, p in model.named_parameters():
                p.grad = grads[name][i].clone()
            opt.step()
        update(stacked, grads)
    for i, model in enumerate(models):
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked[name][i], p.detach(), rtol=1e-12, atol=0)


def test_members_that_disagree_on_a_shared_setting_are_refused():
    models = _members(2)
    optimizers = [
        torch.optim.SGD(models[0].parameters(), lr=0.1, momentum=0.9),
        torch.optim.SGD(models[1].parameters(), lr=0.1, momentum=0.5),
    ]
    params, _ = stack_module_state(models)
    with pytest.raises(ValueError, match="disagree on momentum"):
        StackedUpdate(optimizers, models, list(params))


def test_an_optimizer_without_a_stacked_update_is_named():
    models = _members(2)
    optimizers = [torch.optim.RMSprop(m.parameters(), lr=0.1) for m in models]
    params, _ = stack_module_state(models)
    with pytest.raises(ValueError, match="RMSprop has no stacked update"):
        StackedUpdate(optimizers, models, list(params))
