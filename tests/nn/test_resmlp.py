"""The residual MLP (richness.nn.models.ResMLP): every hidden layer on the richness scale, and
a residual stream that stays Θ(1) with depth under the branch multiplier β = 1/√depth."""

import math

import pytest
import torch

import richness as rn


def _slope(widths, values):
    lw = [math.log(n) for n in widths]
    lv = [math.log(v) for v in values]
    mw, mv = sum(lw) / len(lw), sum(lv) / len(lv)
    num = sum((a - mw) * (b - mv) for a, b in zip(lw, lv, strict=True))
    return num / sum((a - mw) ** 2 for a in lw)


def test_structure_and_bad_arguments():
    model = rn.models.ResMLP(8, 32, 3, depth=4)
    assert model.branch_multiplier == 0.5
    assert model(torch.randn(5, 8)).shape == (5, 3)
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert (
        names[0] == "stem"
        and names[-1] == "readout"
        and names[1:3]
        == [
            "blocks.0.fc1",
            "blocks.0.fc2",
        ]
    )
    with pytest.raises(ValueError, match="branch_multiplier"):
        rn.models.ResMLP(8, 32, 3, branch_multiplier=0.0)
    with pytest.raises(ValueError, match="depth=0"):
        rn.models.ResMLP(8, 32, 3, depth=0)


@pytest.mark.parametrize("r", [0.0, 0.5])
def test_every_hidden_layer_moves_as_n_to_the_r(r):
    """C2 per layer: one centered SGD step, widths 128–1024, 3 seeds; every slope within 0.05
    of `p.predict(depth)` (r for every hidden layer; measured within 0.015), ‖Δf‖ ~ n^0."""
    torch.manual_seed(0)
    widths, depth = [128, 256, 512, 1024], 3
    x = torch.randn(32, 16, dtype=torch.float64)
    y = torch.randn(32, 4, dtype=torch.float64)
    p = rn.richness(r, base_width=128)
    logs: dict[str, list[float]] = {}
    for n in widths:
        runs = []
        for seed in range(3):
            torch.manual_seed(seed)
            model = rn.models.ResMLP(16, n, 4, depth=depth, activation="tanh").double()
            base = rn.models.ResMLP(16, n // 2, 4, depth=depth, activation="tanh")
            rn.parameterize(model, p, base=base)
            meter = rn.Meter(model, x)
            f0 = model(x).detach()
            opt = rn.optimizer(model, lr=0.1)
            (0.5 * (model(x) - f0 - y).pow(2).sum(1).mean()).backward()
            opt.step()
            runs.append(meter.measure())
        for key in runs[0]:
            logs.setdefault(key, []).append(sum(r_[key] for r_ in runs) / len(runs))
    predicted = p.predict(2 * depth + 2)  # stem, 2·depth branch layers, readout
    hidden = [f"blocks.{i}.{fc}" for i in range(depth) for fc in ("fc1", "fc2")]
    for ell, layer in enumerate(["stem", *hidden], start=1):
        assert predicted[f"dh/{ell}"] == r
        assert _slope(widths, logs[f"dh/{layer}"]) == pytest.approx(r, abs=0.05), layer
    assert _slope(widths, logs["df"]) == pytest.approx(predicted["df"], abs=0.05)


def test_stream_stays_order_one_with_depth():
    """h_rms of the last block's input: Θ(1) in depth with β = 1/√depth, growing with β = 1."""
    torch.manual_seed(0)
    x = torch.randn(64, 16, dtype=torch.float64)

    def last_stream_rms(depth, beta):
        torch.manual_seed(1)
        model = rn.models.ResMLP(16, 256, 4, depth=depth, branch_multiplier=beta).double()
        base = rn.models.ResMLP(16, 128, 4, depth=depth, branch_multiplier=beta)
        rn.parameterize(model, rn.richness(0.5, base_width=128), base=base)
        meter = rn.Meter(model, x)
        # fc1 is a hidden layer with σ = 1/√n: its output's RMS tracks the stream's
        return meter.measure()[f"h_rms/blocks.{depth - 1}.fc1"]

    scaled = [last_stream_rms(d, None) for d in (2, 8, 32)]
    plain = [last_stream_rms(d, 1.0) for d in (2, 8, 32)]
    assert max(scaled) / min(scaled) < 1.5  # measured ≈ 1.2
    assert plain[-1] / plain[0] > 4  # ≈ (1 + c)^(depth/2): grows exponentially with depth
