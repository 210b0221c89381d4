"""C10 at the floor: the three gauges train identically (float64, THEORY.md §3)."""

import pytest
import torch

import richness as rn
from richness.nn import effective_weights, load_effective_weights

STEPS = 10
RTOL = 1e-10


def _mlp(width):
    return rn.models.MLP(d_in=12, width=width, d_out=3, depth=4, activation="tanh", bias=True)


def _cnn(width):
    return rn.models.CNN(in_channels=2, width=width, n_classes=3, depth=3, bias=True)


CASES = {
    "mlp": (_mlp, lambda g: torch.randn(16, 12, generator=g, dtype=torch.float64)),
    "cnn": (_cnn, lambda g: torch.randn(8, 2, 8, 8, generator=g, dtype=torch.float64)),
}


def _train(model, x, y, lr, steps):
    opt = rn.optimizer(model, lr=lr)
    outputs = []
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        outputs.append(model(x).detach())
    return torch.stack(outputs)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("base_width", [None, 16])
def test_gauges_give_identical_trajectories(arch, r, base_width):
    make, make_x = CASES[arch]
    width = 48
    g = torch.Generator().manual_seed(0)
    x = make_x(g)
    y = torch.randn(x.shape[0], 3, generator=g, dtype=torch.float64)
    runs = {}
    start = None
    for gauge in ("stp", "mup", "rescaling"):
        model = make(width).double()
        p = rn.richness(r, gauge, gamma=1.3, base_width=base_width)
        rn.parameterize(model, p, base=make(8), generator=torch.Generator().manual_seed(1))
        if start is None:
            start = effective_weights(model)
        else:
            load_effective_weights(model, start)
        lr = 0.05 if base_width else 0.5
        runs[gauge] = _train(model, x, y, lr, STEPS)
    ref = runs["stp"]
    assert torch.isfinite(ref).all()
    assert (ref[-1] - ref[0]).abs().max() > 1e-3  # it did train
    for gauge in ("mup", "rescaling"):
        rel = (runs[gauge] - ref).norm() / ref.norm()
        assert rel < RTOL, f"{gauge}: relative difference {rel:.3e}"
