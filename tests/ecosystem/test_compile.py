"""torch.compile of a parameterized model trains to the same numbers as eager."""

import pytest
import torch

import richness as rn


@pytest.mark.slow
def test_compiled_training_matches_eager():
    x, y = torch.randn(32, 8), torch.randn(32, 2)
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = rn.parameterize(rn.models.MLP(8, 64, 2), rn.preset("mup", base_width=16))
        opt = rn.optimizer(model, lr=0.1)
        step_model = torch.compile(model) if compiled else model
        for _ in range(3):
            opt.zero_grad()
            (0.5 * (step_model(x) - y).pow(2).sum(1).mean()).backward()
            opt.step()
        results.append(model(x).detach())
    # float32, different kernel fusion: agreement to float32 rounding
    assert torch.allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
