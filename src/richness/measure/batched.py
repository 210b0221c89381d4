"""The Meter's weight metrics for a stack of models at once (an ensemble's member axis M).

Same definitions as `Meter` (measure/meter.py, THEORY.md C5, C6), for Linear layers whose
effective weights are stacked as (M, out, in) and whose inputs on the probe batch are
(M, N, ..., in):
  dW_fro     ‖ΔW‖_F
  dW_op      ‖ΔW‖_op by power iteration on ΔWᵀΔW, warm-started from the last call
  max_ratio  mean_i ‖ΔW x_i‖ / mean_i ‖W0 Δx_i‖ (not for the first layer: its input is fixed)
  align      mean over rows of ‖ΔW x‖ / (‖ΔW‖_op ‖x‖)
  align_w0   mean over rows of ‖W0 Δx‖ / (‖W0‖_op ‖Δx‖) (not for the first layer)
  grad       ‖∇L‖ of the layer's parameters, from the gradients of the last step
Every value comes back as an (M,) tensor.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from richness.measure.meter import power_iteration_start

__all__ = ["LinearWeightMeter", "op_norms"]


def op_norms(
    a: torch.Tensor, v: torch.Tensor | None, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest singular values of a (M, m, k), by power iteration warm-started at v (M, k).

    Starts from the Meter's fixed vector (`power_iteration_start`), so each member follows the
    iterates of its own Meter; a member whose matrix is zero gets 0 and the start again.
    """
    start = power_iteration_start(a.shape[2], a.dtype, a.device).expand(a.shape[0], -1)
    v = start if v is None else v
    zero = torch.zeros(a.shape[0], 1, dtype=torch.bool, device=a.device)
    for _ in range(iters):
        w = torch.einsum("mok,mo->mk", a, torch.einsum("mok,mk->mo", a, v))
        norm = w.norm(dim=-1, keepdim=True)
        zero = norm == 0
        v = torch.where(zero, start, w / torch.where(zero, 1.0, norm))
    return torch.einsum("mok,mk->mo", a, v).norm(dim=-1) * (~zero[:, 0]), v


class LinearWeightMeter:
    """Weight metrics of one Linear layer across the ensemble, relative to its initial weights.

    Args:
      w0: (M, out, in) effective weights at creation.
      x0: (M, N, ..., in) the layer's inputs on the probe batch at creation.
      first: whether this is the first layer (no passthrough term).
      power_iters: power-iteration steps per call.
    """

    def __init__(self, w0: torch.Tensor, x0: torch.Tensor, first: bool, power_iters: int = 8):
        self.w0, self.x0, self.first, self.iters = w0, x0, first, power_iters
        self._v: torch.Tensor | None = None
        self._w0_op: torch.Tensor | None = None

    def __call__(
        self,
        w: torch.Tensor,
        x: torch.Tensor,
        grads: Iterable[torch.Tensor],
        wanted: set[str],
    ) -> dict[str, torch.Tensor]:
        dw = w - self.w0
        out: dict[str, torch.Tensor] = {}
        if "dW_fro" in wanted:
            out["dW_fro"] = dw.flatten(1).norm(dim=-1)
        op = None
        if "dW_op" in wanted or "align" in wanted:
            op, self._v = op_norms(dw, self._v, self.iters)
            if "dW_op" in wanted:
                out["dW_op"] = op
        grads = list(grads)
        if "grad" in wanted and grads:
            out["grad"] = torch.stack([g.flatten(1).norm(dim=-1) for g in grads]).norm(dim=0)
        if not wanted & {"max_ratio", "align", "align_w0"}:
            return out
        m, n = x.shape[:2]
        rows = x.reshape(m, n, -1, x.shape[-1])  # (M, N, P, in)
        own = torch.einsum("mnpi,moi->mnpo", rows, dw)  # ΔW x
        if "align" in wanted:
            row_norm = rows.norm(dim=-1).clamp_min(torch.finfo(rows.dtype).tiny)
            out["align"] = (own.norm(dim=-1) / (op[:, None, None] * row_norm)).mean((1, 2))
        if self.first:
            return out
        dx = rows - self.x0.reshape(rows.shape)
        passthrough = torch.einsum("mnpi,moi->mnpo", dx, self.w0)  # W0 Δx
        if "max_ratio" in wanted:
            own_norm = own.flatten(2).norm(dim=-1).mean(-1)
            out["max_ratio"] = own_norm / passthrough.flatten(2).norm(dim=-1).mean(-1)
        if "align_w0" in wanted:
            if self._w0_op is None:
                self._w0_op, _ = op_norms(self.w0, None, 4 * self.iters)
            dx_norm = dx.norm(dim=-1).clamp_min(torch.finfo(rows.dtype).tiny)
            ratio = passthrough.norm(dim=-1) / (self._w0_op[:, None, None] * dx_norm)
            out["align_w0"] = ratio.mean((1, 2))
        return out
