"""Closed-form infinite-width NNGP and NTK of fully-connected networks, and kernel regression.

The network is neural-tangents' ``stax.serial(Dense(w_std, b_std), act, ..., act, Dense(w_std,
b_std))`` with ``parameterization="ntk"``: ``depth`` Dense layers (readout included), the
activation between consecutive ones, each layer z = w_std/√fan_in · W h + b_std · b with
W, b ~ N(0, 1). Its kernels follow the layer recursion (Jacot et al., arXiv:1806.07572; Lee et al.,
arXiv:1902.06720), starting from the input covariance q(x, x') = x·x'/d:

    Dense:       q ← w_std² q + b_std²,            Θ ← q_new + w_std² Θ   (Θ = 0 before layer 1)
    activation:  q ← E[φ(u)φ(v)],  Θ ← Θ · E[φ'(u)φ'(v)],   (u, v) ~ N(0, [[q11, q12], [q12, q22]])

with, for ReLU (arc-cosine kernel, Cho & Saul 2009), θ = arccos(q12/√(q11 q22)):
    E[φφ] = (√(q11 q22 − q12²) + (π − θ) q12) / 2π,      E[φ'φ'] = (π − θ) / 2π,
and for erf (Williams 1997):
    E[φφ] = (2/π) arcsin(2 q12 / √((1 + 2q11)(1 + 2q22))),
    E[φ'φ'] = (4/π) / √((1 + 2q11)(1 + 2q22) − 4 q12²).

Kernels are computed in float64. The NTK is that of one output; the infinite-width NTK of O
outputs is K ⊗ I_O (compare with ``empirical_ntk(..., trace=True)``).

Implements: THEORY.md §3 (r = 0, NTP: the lazy endpoint is kernel regression with this NTK) and
§4 C12.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["infinite_nngp", "infinite_ntk", "kernel_regression", "ntk_predictor"]

Activation = Literal["linear", "relu", "erf"]
_ACTIVATIONS = ("linear", "relu", "erf")


def _as_matrix(x: Tensor | np.ndarray, field: str) -> Tensor:
    """Returns x as a float64 (N, d) tensor (on x's device if it is a tensor)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{field} must be a torch.Tensor or numpy array of shape (N, d)")
    if x.ndim != 2:
        raise ValueError(
            f"{field} must be a matrix (N, d) of flattened inputs, got shape {tuple(x.shape)}; "
            "flatten images with x.reshape(len(x), -1)"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{field} must have at least one feature (d >= 1)")
    return x.detach().to(torch.float64)


def _check_config(depth: int, activation: str, w_std: float, b_std: float) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(
            f"depth={depth!r} must be an int >= 1 (the number of Dense layers, readout included)"
        )
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is unknown; allowed: {list(_ACTIVATIONS)}")
    for name, value in (("w_std", w_std), ("b_std", b_std)):
        if not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"{name}={value!r} must be finite and >= 0")


def _relu(q12: Tensor, q11: Tensor, q22: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Returns (E[φφ] cross, E[φ'φ'] cross, E[φφ] diag 1, E[φφ] diag 2) for φ = ReLU."""
    prod = q11[:, None] * q22[None, :]
    root = torch.sqrt(torch.clamp(prod - q12**2, min=0.0))
    angle = torch.atan2(root, q12)
    angle = torch.where((root == 0) & (q12 == 0), torch.full_like(angle, math.pi / 2), angle)
    dot = (math.pi - angle) / (2 * math.pi)
    return (root + (math.pi - angle) * q12) / (2 * math.pi), dot, q11 / 2, q22 / 2


def _erf(q12: Tensor, q11: Tensor, q22: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Returns (E[φφ] cross, E[φ'φ'] cross, E[φφ] diag 1, E[φφ] diag 2) for φ = erf."""
    prod = (1 + 2 * q11)[:, None] * (1 + 2 * q22)[None, :]
    root = torch.sqrt(torch.clamp(prod - 4 * q12**2, min=0.0))  # > 0: prod - 4q12² >= 1
    new = (2 / math.pi) * torch.atan2(2 * q12, root)

    def diag(q: Tensor) -> Tensor:
        return (2 / math.pi) * torch.asin(2 * q / (1 + 2 * q))

    return new, (4 / math.pi) / root, diag(q11), diag(q22)


def _kernels(
    x1: Tensor | np.ndarray,
    x2: Tensor | np.ndarray | None,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
) -> tuple[Tensor, Tensor]:
    """Returns (NNGP, NTK), each (N1, N2) float64."""
    _check_config(depth, activation, w_std, b_std)
    a = _as_matrix(x1, "x1")
    b = a if x2 is None else _as_matrix(x2, "x2").to(a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            "x2 must have as many features as x1\n"
            f"x1.shape: {tuple(a.shape)}\nx2.shape: {tuple(b.shape)}"
        )
    d = a.shape[1]
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    q12 = a @ b.T / d  # (N1, N2): input covariance
    q11 = (a * a).sum(1) / d  # (N1,)
    q22 = (b * b).sum(1) / d  # (N2,)
    q12, q11, q22 = w2 * q12 + b2, w2 * q11 + b2, w2 * q22 + b2  # first Dense
    ntk = q12.clone()
    for _ in range(depth - 1):
        if activation == "relu":
            q12, dot, q11, q22 = _relu(q12, q11, q22)
            ntk = ntk * dot
        elif activation == "erf":
            q12, dot, q11, q22 = _erf(q12, q11, q22)
            ntk = ntk * dot
        q12, q11, q22 = w2 * q12 + b2, w2 * q11 + b2, w2 * q22 + b2  # next Dense
        ntk = q12 + w2 * ntk
    return q12, ntk


def infinite_ntk(
    x1: Tensor | np.ndarray,
    x2: Tensor | np.ndarray | None = None,
    depth: int = 3,
    activation: Activation = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> Tensor:
    """Returns the infinite-width NTK (N1, N2) of a fully-connected network in NTK parameterization.

    Same numbers as neural-tangents' ``stax.serial(Dense(1, w_std, b_std), act, ...,
    Dense(1, w_std, b_std))`` (``depth`` Dense layers) ``kernel_fn(x1, x2, "ntk")``.

    Args:
        x1: (N1, d) inputs (flatten images first).
        x2: (N2, d) inputs; ``None`` means x1.
        depth: number of Dense layers, readout included (1 is a linear model), >= 1.
        activation: "linear", "relu" or "erf", between consecutive Dense layers.
        w_std: weight multiplier σ_w (forward w_std/√fan_in · W h with W ~ N(0, 1)), >= 0.
        b_std: bias multiplier σ_b, >= 0 (0: no bias).

    Returns:
        (N1, N2) float64 tensor; the kernel of each output (the O-output NTK is K ⊗ I_O).

    Raises:
        ValueError: depth < 1, unknown activation, negative stds, non-matrix inputs, or
            x1 and x2 with different numbers of features.

    Example:
        >>> import torch
        >>> x = torch.eye(2, dtype=torch.float64)
        >>> infinite_ntk(x, depth=1, activation="linear")  # w_std² x·x'/d
        tensor([[0.5000, 0.0000],
                [0.0000, 0.5000]], dtype=torch.float64)

    Implements: THEORY.md §3 (NTP, r = 0), §4 C12.
    """
    return _kernels(x1, x2, depth, activation, w_std, b_std)[1]


def infinite_nngp(
    x1: Tensor | np.ndarray,
    x2: Tensor | np.ndarray | None = None,
    depth: int = 3,
    activation: Activation = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> Tensor:
    """Returns the infinite-width NNGP kernel (N1, N2): the covariance of the outputs at init.

    Same conventions and arguments as `infinite_ntk` (neural-tangents' ``kernel_fn(..., "nngp")``).

    Returns:
        (N1, N2) float64 tensor: E[f(x1) f(x2)] for each output at initialization.

    Raises:
        ValueError: as `infinite_ntk`.

    Implements: THEORY.md §4 C3/C12 (the distribution of f0 in the NTK parameterization).
    """
    return _kernels(x1, x2, depth, activation, w_std, b_std)[0]


def _flatten_kernel(k: Tensor, field: str) -> Tensor:
    """Returns K as a matrix: (N, M) stays, (N, M, O, O) becomes (N·O, M·O)."""
    if k.ndim == 2:
        return k
    if k.ndim == 4 and k.shape[2] == k.shape[3]:
        n, m, o, _ = k.shape
        return k.permute(0, 2, 1, 3).reshape(n * o, m * o)
    raise ValueError(f"{field} must be (N, M) or (N, M, O, O), got shape {tuple(k.shape)}")


def kernel_regression(
    k_train_train: Tensor,
    k_test_train: Tensor,
    y_train: Tensor,
    ridge: float = 0.0,
) -> Tensor:
    """Returns the kernel-regression predictions K_test,train (K_train,train + ridge·I)⁻¹ y_train.

    Args:
        k_train_train: (N, N) kernel on the training inputs, or (N, N, O, O) (an empirical NTK).
        k_test_train: (M, N) kernel between test and training inputs, or (M, N, O, O).
        y_train: (N,) or (N, O) targets; with 4-d kernels it must be (N, O).
        ridge: ridge ≥ 0 added to the diagonal (0: interpolation; needs K invertible).

    Returns:
        (M,) or (M, O) float64 predictions.

    Raises:
        ValueError: inconsistent shapes or a negative ridge.
    """
    if not math.isfinite(float(ridge)) or ridge < 0:
        raise ValueError(f"ridge={ridge!r} must be finite and >= 0")
    ktt = torch.as_tensor(k_train_train).detach().to(torch.float64)
    kst = torch.as_tensor(k_test_train).detach().to(torch.float64).to(ktt.device)
    y = torch.as_tensor(y_train).detach().to(torch.float64).to(ktt.device)
    if ktt.ndim != kst.ndim:
        raise ValueError(
            "k_train_train and k_test_train must both be 2-d or both 4-d\n"
            f"k_train_train.shape: {tuple(ktt.shape)}\nk_test_train.shape: {tuple(kst.shape)}"
        )
    n = ktt.shape[0]
    if ktt.shape[1] != n or kst.shape[1] != n or kst.shape[2:] != ktt.shape[2:]:
        raise ValueError(
            "k_train_train must be (N, N[, O, O]) and k_test_train (M, N[, O, O])\n"
            f"k_train_train.shape: {tuple(ktt.shape)}\nk_test_train.shape: {tuple(kst.shape)}"
        )
    if y.shape[0] != n or y.ndim not in (1, 2):
        raise ValueError(f"y_train must be (N,) or (N, O) with N = {n}, got shape {tuple(y.shape)}")
    if ktt.ndim == 4:
        n_out = ktt.shape[2]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(
                f"with (N, N, O, O) kernels y_train must be (N, O) = ({n}, {n_out}), "
                f"got shape {tuple(y.shape)}"
            )
        a = _flatten_kernel(ktt, "k_train_train")
        c = _flatten_kernel(kst, "k_test_train")
        pred = c @ torch.linalg.solve(
            a + ridge * torch.eye(len(a), dtype=a.dtype, device=a.device), y.reshape(-1)
        )
        return pred.reshape(kst.shape[0], n_out)
    a = ktt + ridge * torch.eye(n, dtype=ktt.dtype, device=ktt.device)
    return kst @ torch.linalg.solve(a, y)


def ntk_predictor(
    x_train: Tensor | np.ndarray,
    y_train: Tensor | np.ndarray,
    x_test: Tensor | np.ndarray,
    depth: int = 3,
    activation: Activation = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
    ridge: float = 0.0,
) -> Tensor:
    """Returns Θ(x_test, X) Θ(X, X)⁻¹ y: what an infinitely wide r = 0 network converges to.

    The mean prediction of the infinitely wide network in NTK parameterization (THEORY.md
    §3, r = 0) trained to convergence by gradient flow on the MSE loss from f0 = 0 — the
    centered network f − f0, or the ensemble mean — with Θ the infinite-width NTK.

    Args:
        x_train: (N, d) training inputs.
        y_train: (N,) or (N, O) targets.
        x_test: (M, d) test inputs.
        depth: number of Dense layers, readout included.
        activation: "linear", "relu" or "erf".
        w_std: weight multiplier σ_w.
        b_std: bias multiplier σ_b.
        ridge: added to Θ(X, X)'s diagonal (0: exact interpolation of the training set).

    Returns:
        (M,) or (M, O) float64 predictions.

    Raises:
        ValueError: as `infinite_ntk` and `kernel_regression`.

    Implements: THEORY.md §4 C12 (r = 0 network predictions converge to NTK regression).
    """
    k_tt = infinite_ntk(x_train, None, depth, activation, w_std, b_std)
    k_st = infinite_ntk(x_test, x_train, depth, activation, w_std, b_std)
    y = torch.as_tensor(y_train).to(k_tt.device)
    return kernel_regression(k_tt, k_st, y, ridge)
