"""Tests for richness.infinite: the n → ∞ limit of deep linear networks under gradient descent.

Finite widths converging to it (C21, C22) are tested in tests/claims/test_c21_c22.py.
"""

from __future__ import annotations

import pytest
import torch

import richness as rn
from richness.infinite import DeepLinearLimit, deep_linear, deep_linear_at

F64 = torch.float64


def _data(n: int = 24, m: int = 10, d: int = 5, o: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    xs = torch.randn(m, d, generator=g, dtype=F64)
    teacher = torch.randn(o, d, generator=g, dtype=F64) / d**0.5
    return x, x @ teacher.T, xs


def _ntk_descent(x, y, xs, depth: int, lr: float, steps: int):
    """Gradient descent in function space with the linear NTK: (T+1, N, O), (T+1, M, O)."""
    k = rn.infinite_ntk(x, depth=depth, activation="linear")  # (N, N)
    ks = rn.infinite_ntk(xs, x, depth=depth, activation="linear")  # (M, N)
    f, fs = torch.zeros_like(y), torch.zeros(len(xs), y.shape[1], dtype=F64)
    train, test = [f], [fs]
    for _ in range(steps):
        residual = f - y
        f, fs = f - lr * k @ residual / len(x), fs - lr * ks @ residual / len(x)
        train.append(f)
        test.append(fs)
    return torch.stack(train), torch.stack(test)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_shapes_and_step_zero() -> None:
    x, y, xs = _data()
    lim = deep_linear(x, y, xs, depth=4, r=0.5, lr=0.3, steps=6)
    assert isinstance(lim, DeepLinearLimit)
    assert lim.f_train.shape == (7, 24, 3) and lim.f_test.shape == (7, 10, 3)
    assert lim.feature_movement.shape == (7, 3) and lim.loss.shape == (7,)
    assert lim.f_test.dtype == F64 and lim.feature_movement.dtype == F64
    assert lim.f_train[0].abs().max() == 0 and lim.f_test[0].abs().max() == 0
    assert lim.feature_movement[0].abs().max() == 0
    torch.testing.assert_close(lim.loss[0], 0.5 * y.pow(2).sum(1).mean())
    empty = deep_linear(x, y, xs[:0], depth=2, r=0.5, lr=0.3, steps=2)
    assert empty.f_test.shape == (3, 0, 3)


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("r", [0.0, 0.25, 0.49])
def test_lazy_limit_is_ntk_gradient_descent(depth: int, r: float) -> None:
    # r < 1/2: ε = γ·n^{r−1/2} → 0, the limit is GD with Θ = depth·x·x'/d at the table's lr
    x, y, xs = _data()
    lim = deep_linear(x, y, xs, depth=depth, r=r, gamma=1.7, lr=0.8, steps=25)
    train, test = _ntk_descent(x, y, xs, depth, 0.8, 25)
    assert _rel(lim.f_train, train) < 1e-10
    assert _rel(lim.f_test, test) < 1e-10
    assert lim.feature_movement.abs().max() == 0
    assert lim.feature_strength == 0.0


def test_wide_inputs_and_one_output() -> None:
    # d_in > N + M: the inputs are reduced to their span; d_out = 1
    x, y, xs = _data(n=6, m=3, d=40, o=1)
    lim = deep_linear(x, y, xs, depth=3, r=0.25, lr=0.5, steps=8)
    train, test = _ntk_descent(x, y, xs, 3, 0.5, 8)
    assert _rel(lim.f_test, test) < 1e-10 and _rel(lim.f_train, train) < 1e-10
    rich = deep_linear(x, y, xs, depth=3, r=0.5, lr=0.5, steps=8)
    assert rich.f_test.shape == (9, 3, 1)


def test_rich_limit_learns_features() -> None:
    x, y, xs = _data()
    rich = deep_linear(x, y, xs, depth=3, r=0.5, gamma=1.0, lr=0.8, steps=25)
    _, test = _ntk_descent(x, y, xs, 3, 0.8, 25)
    assert _rel(rich.f_test, test) > 0.1  # not the NTK's trajectory
    assert rich.feature_movement[-1].min() > 0.05
    assert rich.feature_strength == 1.0
    other = deep_linear(x, y, xs, depth=3, r=0.5, gamma=0.5, lr=0.8, steps=25)
    assert _rel(other.f_test, rich.f_test) > 0.01  # at r = 1/2 the limit depends on γ


def test_feature_strength_is_even_and_continuous() -> None:
    # F(ε) − F(0) = O(ε²) (the limit is even in ε): halving ε quarters the gap, and ε → 0 is lazy
    x, y, xs = _data()
    kw = {"depth": 3, "lr": 0.8, "steps": 15}
    lazy = deep_linear(x, y, xs, r=0.0, **kw).f_test
    gaps = [
        _rel(deep_linear_at(x, y, xs, feature_strength=e, **kw).f_test, lazy) for e in (0.02, 0.01)
    ]
    assert gaps[0] / gaps[1] == pytest.approx(4.0, rel=0.02)
    rich = deep_linear(x, y, xs, r=0.5, gamma=0.7, **kw)
    same = deep_linear_at(x, y, xs, feature_strength=0.7, **kw)
    torch.testing.assert_close(same.f_test, rich.f_test, rtol=0, atol=0)
    zero = deep_linear_at(x, y, xs, feature_strength=0.0, **kw)
    torch.testing.assert_close(zero.f_test, lazy, rtol=0, atol=0)


def _mean_field_two_layer(x, y, xs, gamma: float, lr: float, steps: int):
    """Depth 2 at r = 1/2, independently: neurons z_j = (w_j, γn·W_2[:, j]) all move by one
    linear map M_t, so the limit closes on S_t = E[z_t z_tᵀ] and P_t = E[z_t z_0ᵀ]."""
    d, o = x.shape[1], y.shape[1]
    s0 = torch.block_diag(torch.eye(d, dtype=F64) / d, torch.eye(o, dtype=F64))
    s, p = s0.clone(), s0.clone()
    train, test, moves = [], [], []
    for t in range(steps + 1):
        cw = s[d:, :d]  # E[c wᵀ] (O, d): f_t(x) − f_0(x) = (1/γ) E[c wᵀ] x
        f, fs = x @ cw.T / gamma, xs @ cw.T / gamma
        train.append(f)
        test.append(fs)
        ww, w0 = s[:d, :d], s0[:d, :d]
        cross = p[:d, :d]  # E[w_t w_0ᵀ]
        dw = ww - cross - cross.T + w0  # E[(w_t − w_0)(w_t − w_0)ᵀ]
        moves.append(
            float(torch.einsum("id,de,ie->", x, dw, x) / torch.einsum("id,de,ie->", x, w0, x))
            ** 0.5
        )
        if t == steps:
            break
        grad = (f - y).T @ x / len(x)  # G = Σ_i e_i x_iᵀ / N (O, d)
        m = torch.eye(d + o, dtype=F64)
        m[:d, d:] = -lr * gamma / d * grad.T  # Δw = −(η0 γ/d) Gᵀ c
        m[d:, :d] = -lr * gamma * grad  # Δc = −η0 γ G w
        s, p = m @ s @ m.T, m @ p
    return torch.stack(train), torch.stack(test), torch.tensor(moves, dtype=F64)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_depth_two_matches_the_mean_field_closed_form(gamma: float) -> None:
    x, y, xs = _data(d=4, o=2)
    lim = deep_linear(x, y, xs, depth=2, r=0.5, gamma=gamma, lr=0.6, steps=20)
    train, test, moves = _mean_field_two_layer(x, y, xs, gamma, 0.6, 20)
    assert _rel(lim.f_train, train) < 1e-10
    assert _rel(lim.f_test, test) < 1e-10
    torch.testing.assert_close(lim.feature_movement[:, 0], moves, rtol=1e-9, atol=1e-12)


def test_exported_as_rn_infinite() -> None:
    import richness.infinite

    assert rn.infinite is richness.infinite
    assert rn.infinite.deep_linear is deep_linear


def test_diverging_learning_rate_names_the_step() -> None:
    x, y, xs = _data()
    with pytest.raises(
        ValueError, match=r"lr=30.0 diverges in the infinite-width limit: at step \d+"
    ):
        deep_linear(x, y, xs, depth=3, r=0.25, lr=30.0, steps=50)
    with pytest.raises(ValueError, match=r"diverges .* at step \d+"):
        deep_linear(x, y, xs, depth=3, r=0.5, lr=30.0, steps=50)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"r": -0.1}, ValueError, r"r=-0.1 is outside \[0, 0.5\]"),
        ({"r": 0.6}, ValueError, r"r=0.6 is outside \[0, 0.5\]"),
        ({"r": True}, ValueError, r"r=True"),
        ({"depth": 1}, ValueError, r"depth=1 must be an integer ≥ 2"),
        ({"depth": 3.0}, ValueError, r"depth=3.0 must be an integer ≥ 2"),
        ({"gamma": 0.0}, ValueError, r"gamma=0.0 must be a finite number > 0"),
        ({"lr": -1.0}, ValueError, r"lr=-1.0 must be a finite number > 0"),
        ({"lr": float("inf")}, ValueError, r"lr=inf must be a finite number > 0"),
        ({"steps": -1}, ValueError, r"steps=-1 must be an integer ≥ 0"),
    ],
)
def test_bad_arguments(change: dict, error: type, match: str) -> None:
    x, y, xs = _data()
    kw = {"depth": 3, "r": 0.5, "gamma": 1.0, "lr": 0.5, "steps": 3} | change
    with pytest.raises(error, match=match):
        deep_linear(x, y, xs, **kw)


def test_bad_tensors() -> None:
    x, y, xs = _data()
    kw = {"lr": 0.5, "steps": 2}
    with pytest.raises(TypeError, match="x_train must be float64"):
        deep_linear(x.float(), y, xs, **kw)
    with pytest.raises(TypeError, match="y_train must be a torch.Tensor"):
        deep_linear(x, y.numpy(), xs, **kw)
    with pytest.raises(ValueError, match=r"y_train must be 2-d \(N, d\), got shape \(24,\)"):
        deep_linear(x, y[:, 0], xs, **kw)
    with pytest.raises(ValueError, match=r"x_test must be 2-d"):
        deep_linear(x, y, xs[None], **kw)
    with pytest.raises(ValueError, match="y_train must have one row per training input"):
        deep_linear(x, y[:-1], xs, **kw)
    with pytest.raises(ValueError, match="x_test must have as many features as x_train"):
        deep_linear(x, y, xs[:, :-1], **kw)
    with pytest.raises(ValueError, match="x_train must have N ≥ 1 rows"):
        deep_linear(x[:0], y[:0], xs, **kw)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x_train has non-finite entries"):
        deep_linear(bad, y, xs, **kw)
    with pytest.raises(ValueError, match=r"feature_strength=-1.0 must be a finite number ≥ 0"):
        deep_linear_at(x, y, xs, feature_strength=-1.0, **kw)


def test_speed_scale_runs() -> None:
    # N = 64, depth 3, 100 steps (the size) completes; timing is in bench_infinite.py
    x, y, xs = _data(n=64, m=64, d=16, o=4)
    lim = deep_linear(x, y, xs, depth=3, r=0.5, lr=0.5, steps=100)
    assert lim.loss[-1] < 1e-3 * lim.loss[0]
    assert max(lim.basis_size) <= 16 + 4 * 2 * 101
