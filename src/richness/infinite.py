"""The infinite-width limit of deep linear networks under gradient descent, at every r in [0, 1/2].

    lim = rn.infinite.deep_linear(x_train, y_train, x_test, depth=3, r=0.5, lr=0.5, steps=30)
    lim.f_test            # (steps+1, M, O): n → ∞ limit of the centered test outputs f_t − f_0
    lim.feature_movement  # (steps+1, depth−1): limit of ‖Δh_ℓ‖/‖h_ℓ(0)‖; 0 for r < 1/2

The network is `rn.models.MLP(d_in, n, O, depth=L, activation="linear", bias=False)` in the
absolute STP table (THEORY.md §3, `rn.richness(r, gauge="stp", gamma=γ, base_width=None)`):
h_1 = W_1 x, h_ℓ = W_ℓ h_{ℓ−1}, f = W_L h_{L−1}, with α = γ·n^r,
  input  W_1 (n × d):   σ = 1/√d,       η = η0·α²/d
  hidden W_ℓ (n × n):   σ = 1/√n,       η = η0·α²/n
  output W_L (O × n):   σ = 1/(α√n),    η = η0/n
trained by full-batch gradient descent on L = ½·mean_i ‖f(x_i) − f_0(x_i) − y_i‖² (what
`richness.train` does with `center: true`).

The limit (derivation in docs/infinite.md). Write B_ℓ = α√n·(∂f/∂h_ℓ)ᵀ (n × O; for a linear
net it does not depend on x) and ε = α/√n = γ·n^{r−1/2}. Then exactly, at any width,
  h_ℓ(t) = h_ℓ(0) + ε·u_ℓ(t),   B_ℓ(t) = B_ℓ(0) + ε·v_ℓ(t),
  u_ℓ(t) = A_ℓ u_{ℓ−1}(t) − η0·D_ℓ(t) h_{ℓ−1}(t),     u_0 = 0, A_ℓ = W_ℓ(0),
  v_{ℓ−1}(t) = A_ℓᵀ v_ℓ(t) − η0·D_ℓ(t)ᵀ B_ℓ(t),       v_{L−1}(t) = −η0·D_L(t),
  D_ℓ(t) = Σ_{s<t} B_ℓ(s) M_{ℓ−1}(s)ᵀ / n,   M_ℓ(s) = H_ℓ(s) E(s)/N,   E = f − f_0 − Y,
  f_t(x) − f_0(x) = ⟨B_{L−1}(0), u_{L−1}(t)(x)⟩/n − η0·Σ_{s<t} M_{L−1}(s)ᵀ h_{L−1}(t)(x)/n,
(at ℓ = 1 the inner products over n are x·x'/d; B_L = I_O). Every vector is a linear
combination of Gaussian vectors, so as n → ∞ each one is represented by its coefficients over
a finite, growing set of independent standard Gaussians (Tensor Programs, arXiv:2011.14522):
A_ℓ y = Ẑ + Ż, with Ẑ a fresh Gaussian of covariance E[Z^y Z^{y'}] and the "Z-dot" term
Ż^{A y} = Σ_z Z^z ∂Z^y/∂Ẑ^{A_ℓᵀ z} (and the same with A and Aᵀ swapped). Inner products /n
become dot products of coefficient rows. ε takes its limit: γ at r = 1/2 (μP: features move),
0 for r < 1/2 (lazy: the limit is gradient descent with the NTK L·x·x'/d, the lr of the table).

Implements: THEORY.md §3 (the richness scale at n → ∞: the discontinuous transition at
r = 1/2), §4 C21 and C22; Bordelon & Pehlevan, arXiv:2205.09653 (deep linear DMFT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DIVERGENCE_FACTOR", "DeepLinearLimit", "deep_linear", "deep_linear_at"]

DIVERGENCE_FACTOR = 1e6  # the limit diverged when the training loss exceeds this × its start
_RANK_TOL = 1e-11  # a new Gaussian direction needs a singular value above this × ‖rows‖


@dataclass(frozen=True, eq=False)
class DeepLinearLimit:
    """The n → ∞ trajectory of a deep linear network (see `deep_linear`).

    Attributes:
      f_train: (steps+1, N, O) centered outputs f_t − f_0 on the training inputs (0 at step 0).
      f_test: (steps+1, M, O) centered outputs on the test inputs.
      feature_movement: (steps+1, depth−1) ‖Δh_ℓ‖_F/‖h_ℓ(0)‖_F over the training inputs, per
        hidden layer ℓ = 1..depth−1 (the Frobenius norm of the (N, n) block); 0 for r < 1/2.
      loss: (steps+1,) ½·mean_i ‖f_t(x_i) − f_0(x_i) − y_i‖².
      feature_strength: ε = lim γ·n^{r−1/2}: γ at r = 1/2, 0 below.
      basis_size: (depth−1,) Gaussians per hidden layer at the end (the cost driver).
    """

    f_train: Tensor
    f_test: Tensor
    feature_movement: Tensor
    loss: Tensor
    feature_strength: float
    basis_size: tuple[int, ...]


def _check_matrix(x: object, field: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{field} must be a torch.Tensor of shape (N, d), got {type(x).__name__}")
    if x.dtype != torch.float64:
        raise TypeError(
            f"{field} must be float64 (the limit is computed in float64), got {x.dtype}; "
            f"pass {field}.double()"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{field} must be 2-d (N, d), got shape {tuple(x.shape)}; "
            "flatten inputs with x.reshape(len(x), -1) and give targets as (N, O)"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{field} has non-finite entries")
    return x.detach()


def _check_args(
    x_train: object,
    y_train: object,
    x_test: object,
    depth: object,
    r: object,
    gamma: object,
    lr: object,
    steps: object,
) -> tuple[Tensor, Tensor, Tensor]:
    x, y, xs = (
        _check_matrix(t, f)
        for t, f in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"))
    )
    if len(x) == 0 or x.shape[1] == 0 or y.shape[1] == 0:
        raise ValueError(
            "x_train must have N ≥ 1 rows and d_in ≥ 1 columns, y_train d_out ≥ 1 columns\n"
            f"x_train.shape: {tuple(x.shape)}\ny_train.shape: {tuple(y.shape)}"
        )
    if len(y) != len(x):
        raise ValueError(
            "y_train must have one row per training input\n"
            f"x_train.shape: {tuple(x.shape)}\ny_train.shape: {tuple(y.shape)}"
        )
    if xs.shape[1] != x.shape[1]:
        raise ValueError(
            "x_test must have as many features as x_train\n"
            f"x_train.shape: {tuple(x.shape)}\nx_test.shape: {tuple(xs.shape)}"
        )
    if xs.device != x.device or y.device != x.device:
        raise ValueError("x_train, y_train and x_test must be on one device")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(
            f"depth={depth!r} must be an integer ≥ 2 (weight layers, readout included)"
        )
    if isinstance(r, bool) or not isinstance(r, int | float) or not 0.0 <= r <= 0.5:
        raise ValueError(
            f"r={r!r} is outside [0, 0.5] (THEORY.md §3: the richness scale); "
            "r = 0.5 is μP (rich), r < 0.5 lazy"
        )
    for name, value in (("gamma", gamma), ("lr", lr)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"{name}={value!r} must be a finite number > 0")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} must be an integer ≥ 0")
    return x, y, xs


class _Spaces:
    """Coefficient bookkeeping for the Gaussians of hidden layers 1..L−1 (index 1..L−1).

    Every n-vector of hidden layer k is a row of coefficients over `dim[k]` independent
    standard Gaussians (so ⟨a, b⟩/n → row_a · row_b). Matrix k (A_k = W_k(0), k = 2..L−1,
    entries N(0, 1/n)) keeps:
      q[k]: orthonormal rows in layer k−1 spanning the vectors A_k was applied to; the Gaussian
            Ẑ^{A_k q} of row i is layer k's column zeta[k][i];
      p[k]: orthonormal rows in layer k spanning the vectors A_kᵀ was applied to; Ẑ^{A_kᵀ p}
            of row i is layer k−1's column omega[k][i].
    Rows stored earlier are shorter than `dim` (new Gaussians come later); `fit` pads them.
    """

    def __init__(self, depth: int, like: Tensor) -> None:
        self.like = like
        self.dim = [0] * depth
        self.q: dict[int, Tensor] = {}
        self.p: dict[int, Tensor] = {}
        self.zeta: dict[int, list[int]] = {k: [] for k in range(2, depth)}
        self.omega: dict[int, list[int]] = {k: [] for k in range(2, depth)}
        for k in range(2, depth):
            self.q[k] = like.new_zeros(0, 0)
            self.p[k] = like.new_zeros(0, 0)

    def new(self, k: int, count: int) -> list[int]:
        """Allocates `count` fresh Gaussians in layer k; returns their columns."""
        start = self.dim[k]
        self.dim[k] += count
        return list(range(start, start + count))

    def fit(self, rows: Tensor, k: int) -> Tensor:
        """Rows padded with zeros to layer k's current number of Gaussians."""
        missing = self.dim[k] - rows.shape[-1]
        return torch.nn.functional.pad(rows, (0, missing)) if missing else rows

    def _extend(self, basis: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """(coordinates of rows in basis ∪ new directions, new orthonormal directions)."""
        coords = rows @ basis.T
        rest = rows - coords @ basis
        again = rest @ basis.T  # second Gram–Schmidt pass
        coords, rest = coords + again, rest - again @ basis
        cut = _RANK_TOL * float(rows.norm())
        if not float(rest.norm()) > cut:
            return coords, rows.new_zeros(0, rows.shape[1])
        _, s, vh = torch.linalg.svd(rest, full_matrices=False)
        fresh = vh[s > cut]  # (k_new, dim)
        return torch.cat([coords, rest @ fresh.T], 1), fresh

    def apply(self, k: int, y: Tensor) -> Tensor:
        """Rows (m, dim[k]) of A_k y for rows y (m, ·) of layer k−1: Ẑ + Ż."""
        y = self.fit(y, k - 1)
        q = self.fit(self.q[k], k - 1)
        coords, fresh = self._extend(q, y)
        if len(fresh):
            self.q[k] = torch.cat([q, fresh])
            self.zeta[k] += self.new(k, len(fresh))
        out = y.new_zeros(len(y), self.dim[k])
        out[:, self.zeta[k]] = coords
        if self.omega[k]:  # Ż^{A y} = Σ_i p_i · ∂y/∂Ẑ^{Aᵀ p_i}
            out += y[:, self.omega[k]] @ self.fit(self.p[k], k)
        return out

    def apply_t(self, k: int, z: Tensor) -> Tensor:
        """Rows (m, dim[k−1]) of A_kᵀ z for rows z (m, ·) of layer k: Ẑ + Ż."""
        z = self.fit(z, k)
        p = self.fit(self.p[k], k)
        coords, fresh = self._extend(p, z)
        if len(fresh):
            self.p[k] = torch.cat([p, fresh])
            self.omega[k] += self.new(k - 1, len(fresh))
        out = z.new_zeros(len(z), self.dim[k - 1])
        out[:, self.omega[k]] = coords
        if self.zeta[k]:  # Ż^{Aᵀ z} = Σ_i q_i · ∂z/∂Ẑ^{A q_i}
            out += z[:, self.zeta[k]] @ self.fit(self.q[k], k - 1)
        return out


def _input_rows(x_all: Tensor) -> Tensor:
    """Rows R (N+M, D) with R Rᵀ = x·x'/d: the first layer's Gaussians h_1(0) = W_1(0)x."""
    d = x_all.shape[1]
    rows = x_all / math.sqrt(d)
    if d > len(x_all):  # only the inputs' span matters: D = N + M coordinates
        _, upper = torch.linalg.qr(rows.T)  # rowsᵀ = Q U, so rows = Uᵀ Qᵀ
        rows = upper.T
    return rows


def deep_linear(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    *,
    depth: int = 3,
    r: float = 0.5,
    gamma: float = 1.0,
    lr: float,
    steps: int,
) -> DeepLinearLimit:
    """Returns the n → ∞ limit of a deep linear network's gradient-descent trajectory.

    The network, its table (absolute STP, THEORY.md §3) and the dynamics are in the module
    docstring; `lr` is η0 of `rn.optimizer(model, lr=η0)`. At r < 1/2 the result is gradient
    descent in function space with the NTK Θ = depth·x·x'/d (`rn.infinite_ntk(...,
    activation="linear")`) and learning rate η0: f_{t+1} = f_t − η0·Θ(·, X)(f_t − Y)/N,
    independent of γ. At r = 1/2 (μP) the features move and the result depends on γ.

    Args:
      x_train: (N, d_in) float64 training inputs.
      y_train: (N, O) float64 targets.
      x_test: (M, d_in) float64 test inputs (M may be 0).
      depth: L, weight layers (readout included), ≥ 2; depth 3 is `rn.models.LinearNet`.
      r: richness in [0, 1/2].
      gamma: γ > 0 of α = γ·n^r.
      lr: η0 > 0, the base learning rate.
      steps: T ≥ 0 gradient steps.

    Returns:
      A `DeepLinearLimit` (f_train (T+1, N, O), f_test (T+1, M, O), feature_movement
      (T+1, L−1), loss (T+1,)), float64 on x_train's device.

    Raises:
      TypeError: an input that is not a float64 tensor.
      ValueError: r outside [0, 1/2], depth < 2, gamma or lr not > 0, steps < 0, shapes that
        do not match, non-finite inputs; and an lr at which the limit diverges (the training
        loss passes DIVERGENCE_FACTOR × its initial value: the error names the step).

    Cost: with D = min(d_in, N+M) input coordinates (the program runs on them, not on the
    N + M inputs) and O outputs, each hidden layer holds b ≤ D + O·(L−1)·(T+1) Gaussians (at
    r < 1/2, b ≤ D + O·(L−1): nothing new appears after the first step). A step costs
    O(L·D·b²) (matrix products and one SVD of a (D, b) residual per layer) plus O((N+M)·D·O)
    to read the outputs, so a run is O(L·D·T·b²) ≤ O(D·O²·L³·T³) at r = 1/2, memory
    O(L·b²). N = 64, M = 64, d_in = 16, O = 4, L = 3, T = 100: 0.15 s on one core of a
    shared machine (docs/bench_infinite.json; L = 4: 0.4 s).

    Example:
      >>> import torch
      >>> x = torch.randn(8, 3, dtype=torch.float64)
      >>> lim = deep_linear(x, x[:, :1], x[:4], r=0.5, lr=0.5, steps=5)
      >>> tuple(lim.f_test.shape), tuple(lim.feature_movement.shape)
      ((6, 4, 1), (6, 2))
    """
    x, y, xs = _check_args(x_train, y_train, x_test, depth, r, gamma, lr, steps)
    return _program(x, y, xs, depth, float(gamma) if r == 0.5 else 0.0, float(lr), steps, r)


def deep_linear_at(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    *,
    feature_strength: float,
    depth: int = 3,
    lr: float,
    steps: int,
) -> DeepLinearLimit:
    """Returns the limit program of `deep_linear` run at a given feature strength ε.

    `deep_linear` runs it at ε's limit (γ at r = 1/2, 0 below). At ε = γ·n^{r−1/2} it is a
    width-n network's dynamics without the network's O(n^{−1/2}) fluctuations: a smooth
    prediction of finite-width behaviour across r (C22 draws it). ε = 0 is the lazy limit.

    Args:
      feature_strength: ε ≥ 0.
      x_train, y_train, x_test, depth, lr, steps: as `deep_linear`.

    Returns:
      A `DeepLinearLimit` (its feature_movement is ε·‖u_ℓ‖/‖h_ℓ(0)‖).

    Raises:
      TypeError, ValueError: as `deep_linear`; ε negative or not finite.
    """
    eps = feature_strength
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 <= eps < math.inf:
        raise ValueError(f"feature_strength={eps!r} must be a finite number ≥ 0 (ε = γ·n^(r−1/2))")
    x, y, xs = _check_args(x_train, y_train, x_test, depth, 0.5, 1.0, lr, steps)
    return _program(x, y, xs, depth, float(eps), float(lr), steps, 0.5 if eps else 0.0)


def _program(
    x: Tensor, y: Tensor, xs: Tensor, depth: int, eps: float, lr: float, steps: int, r: float
) -> DeepLinearLimit:
    """The limit program at feature strength ε on validated inputs (r only for messages)."""
    n_train, n_out = y.shape
    top = depth - 1  # the last hidden layer, L−1
    coords = _input_rows(torch.cat([x, xs]))  # (N+M, D): x·x'/d = coords·coords'
    on_train = coords[:n_train]  # (N, D)
    dim_in = coords.shape[1]
    # Everything is linear in x: h_k(t)(x) = coords(x) @ (a (D, dim[k]) map), so the program
    # runs on the D coordinate directions instead of the N + M inputs.
    sp = _Spaces(depth, x)
    sp.new(1, dim_in)  # h_1(0) = W_1(0)x: D Gaussians of layer 1
    v_cols = sp.new(top, n_out)  # B_{L−1}(0) = α√n·W_L(0)ᵀ: O Gaussians of layer L−1
    h0 = {1: sp.fit(torch.eye(dim_in, dtype=x.dtype, device=x.device), 1)}
    for k in range(2, depth):
        h0[k] = sp.apply(k, h0[k - 1])  # (D, ·) h_k(0) = A_k h_{k−1}(0)
    b0 = {top: sp.fit(x.new_zeros(n_out, 0), top)}
    b0[top][:, v_cols] = torch.eye(n_out, dtype=x.dtype, device=x.device)
    for k in range(top, 1, -1):
        b0[k - 1] = sp.apply_t(k, b0[k])  # (O, ·) B_{k−1}(0) = A_kᵀ B_k(0)
    u = {k: x.new_zeros(dim_in, 0) for k in range(1, depth)}  # (D, ·) Δh_k / ε
    v = {k: x.new_zeros(n_out, 0) for k in range(1, depth)}  # (O, ·) ΔB_k / ε
    dw = {k: x.new_zeros(0, 0) for k in range(1, depth + 1)}  # D_k in Gaussian coordinates

    def rows_of(k: int) -> int:  # D_k is (rows_of(k), cols_of(k))
        return n_out if k == depth else sp.dim[k]

    def cols_of(k: int) -> int:
        return dim_in if k == 1 else sp.dim[k - 1]

    def d_mat(k: int) -> Tensor:
        mat = dw[k]
        pad = (0, cols_of(k) - mat.shape[1], 0, rows_of(k) - mat.shape[0])
        return torch.nn.functional.pad(mat, pad) if any(pad) else mat

    def feats(k: int) -> Tensor:  # (D, dim[k]) h_k(t) = h_k(0) + ε u_k(t)
        return sp.fit(h0[k], k) + eps * sp.fit(u[k], k)

    def back(k: int) -> Tensor:  # (O, dim[k]) B_k(t) = B_k(0) + ε v_k(t)
        return sp.fit(b0[k], k) + eps * sp.fit(v[k], k)

    h_norm = [float((on_train @ h0[k]).norm()) for k in range(1, depth)]
    outputs, movement, losses = [], [], []
    for t in range(steps + 1):
        out_map = sp.fit(u[top], top)[:, v_cols] - lr * feats(top) @ d_mat(depth).T  # (D, O)
        out = coords @ out_map  # (N+M, O): f_t − f_0
        err = out[:n_train] - y  # (N, O)
        loss = 0.5 * float(err.pow(2).sum(1).mean())
        start = losses[0] if losses else loss
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * max(start, 1e-300):
            raise ValueError(_diverged(lr, t, loss, start, r, x, depth))
        outputs.append(out)
        losses.append(loss)
        movement.append(
            [
                eps * float((on_train @ u[k]).norm()) / h_norm[k - 1] if h_norm[k - 1] else 0.0
                for k in range(1, depth)
            ]
        )
        if t == steps:
            break
        # the step at t: ΔW_k ∝ B_k(t) M_{k−1}(t)ᵀ, M_k = H_k(t)ᵀ E(t)/N, so D_k += B_kᵀ M_{k−1}
        weights = (err / n_train).T @ on_train  # (O, D): M_0, and M_k = weights @ h_k map
        m = [weights] + [weights @ feats(k) for k in range(1, depth)]  # (O, dim[k])
        for k in range(1, depth):
            dw[k] = d_mat(k) + back(k).T @ (m[0] if k == 1 else sp.fit(m[k - 1], k - 1))
        dw[depth] = d_mat(depth) + sp.fit(m[top], top)
        # forward at t+1: u_1 = −η0 D_1 x, u_k = A_k u_{k−1} − η0 D_k h_{k−1}
        u[1] = -lr * d_mat(1).T
        for k in range(2, depth):
            prev = feats(k - 1)
            u[k] = sp.apply(k, u[k - 1])
            u[k] = u[k] - lr * prev @ d_mat(k).T
        # backward at t+1: v_{L−1} = −η0 D_L, v_{k−1} = A_kᵀ v_k − η0 B_k D_k
        v[top] = -lr * d_mat(depth)
        for k in range(top, 1, -1):
            bk = back(k)
            v[k - 1] = sp.apply_t(k, v[k])
            v[k - 1] = v[k - 1] - lr * bk @ d_mat(k)
    f = torch.stack(outputs)  # (T+1, N+M, O)
    return DeepLinearLimit(
        f_train=f[:, :n_train],
        f_test=f[:, n_train:],
        feature_movement=torch.tensor(movement, dtype=x.dtype, device=x.device),
        loss=torch.tensor(losses, dtype=x.dtype, device=x.device),
        feature_strength=eps,
        basis_size=tuple(sp.dim[1:]),
    )


def _diverged(
    lr: float, step: int, loss: float, loss0: float, r: float, x: Tensor, depth: int
) -> str:
    """The divergence message: the step, the loss, and the lazy stability bound."""
    kernel = depth * (x @ x.T) / x.shape[1] / len(x)  # Θ(X, X)/N
    bound = 2.0 / float(torch.linalg.eigvalsh(kernel)[-1])
    return (
        f"lr={lr!r} diverges in the infinite-width limit: at step {step} the training loss is "
        f"{loss:.3g}, more than {DIVERGENCE_FACTOR:g} × its initial {loss0:.3g}; lower lr "
        f"(the lazy limit, r < 1/2, is stable for lr < 2/λ_max(Θ/N) = {bound:.4g}"
        + (f"; r = {r} trains with its features and can need less)" if r == 0.5 else ")")
    )
