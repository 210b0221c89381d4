"""Predicted width exponents of a table, by the tutorial's one-step derivation.

Implements: THEORY.md §2 (criteria) and §4 (C1–C8), following the derivation of the tutorial
(digest §2, eqs. 4–12) generalized to any table, any depth and SGD or Adam.

Work in powers of n of *coordinates*. For layer ℓ with effective weight W̃ = g·W:
  v_ℓ = exponent of g·σ (effective init std), λ_ℓ = exponent of η·g² (SGD) or η·g (Adam),
  f_ℓ = 1 if the fan-in grows with n (hidden, output) else 0.
Forward at init:   a_ℓ = v_ℓ + f_ℓ/2 + a_{ℓ−1}, a_0 = 0      (C1; the output's a_L is C3's f0)
Backward at init:  b_L = max(0, a_L) (loss gradient), b_{ℓ−1} = v_ℓ + [ℓ hidden]/2 + b_ℓ
One step, layer ℓ's own update ΔW̃_ℓ h_{ℓ−1} = −λ δ_ℓ h_{ℓ−1}ᵀ h_{ℓ−1}:
  SGD  own_ℓ = λ_ℓ + b_ℓ + f_ℓ + 2a_{ℓ−1};  Adam (sign-like entries) own_ℓ = λ_ℓ + f_ℓ + a_{ℓ−1}
Passthrough W̃_ℓ Δh_{ℓ−1}: pass_ℓ = v_ℓ + f_ℓ/2 + d_{ℓ−1}, plus 1/2 at the readout, whose few
  outputs sum the n aligned coordinates coherently (Δh_{L−1} lies along W̃_Lᵀ δ_L, digest §4.2).
Update: d_ℓ = max(own_ℓ, pass_ℓ). Then ‖Δh_ℓ‖ ~ n^{d_ℓ + 1/2} (hidden), ‖Δf‖ ~ n^{d_L} (C4),
MAX ratio (C5) ~ n^{own − pass}, UUC: δ_ℓ·Δh_ℓ ~ n^{b_ℓ + d_ℓ + [ℓ hidden]}.
Linearization gap relative to ‖Δf‖ (C8, leading term): ‖Δh‖²/n = n^{2r−1}.
Gradient of the raw weight, ∂L/∂W_ℓ = g_ℓ · δ_ℓ h_{ℓ−1}ᵀ: coordinates ~ n^{m_ℓ + b_ℓ + a_{ℓ−1}}
with m_ℓ the exponent of g_ℓ; this sets Adam's ε (THEORY.md §3, Adam symmetry; docs/adam.md).

Weight updates per layer (issue 14's C14; THEORY.md §3 tables, §4 C5–C6). One SGD step moves
the effective weight by ΔW̃_ℓ = −η_ℓg_ℓ² Σ_batch δ_ℓ h_{ℓ−1}ᵀ: a sum of B (fixed) outer products
of δ_ℓ (coordinates n^{b_ℓ}) and h_{ℓ−1} (n^{a_{ℓ−1}}), so
  an entry ("dW_entry/ℓ"):  u_ℓ = λ_ℓ + b_ℓ + a_{ℓ−1}  (Adam's sign-like first step: u_ℓ = λ_ℓ);
  ‖ΔW̃_ℓ‖_F and ‖ΔW̃_ℓ‖_op ("dW_norm/ℓ"):  u_ℓ + (f_ℓ + o_ℓ)/2,
with o_ℓ = 1 when the fan-out grows with n (input, hidden) else 0: the matrix has rank ≤ B, so
its Frobenius and operator norms agree up to a width-independent factor, and both are an entry
times √(fan_in·fan_out). (For Adam, dW_norm assumes the sign update stays low-rank-coherent.)
In the STP table at richness r (any gauge: these are effective weights) this gives entries
n^{(r−1/2, r−3/2, −1)} and norms n^{(r, r−1/2, −1/2)} for (input, hidden, output); consistent
with C6: ‖ΔW̃_ℓ h_{ℓ−1}‖ = ‖ΔW̃_ℓ‖_op‖h_{ℓ−1}‖ (aligned) = n^{r}, n^{r−1/2+1/2}, n^{−1/2+1/2}.

Attention (THEORY.md §5 "Transformers"; `attention_exponents`): q and k are hidden-role
projections, but their backward signal is not a hidden layer's. With a logit scale c ~ n^{e_c}
(d_head ∝ n), s_ij = c·q_i·k_j. At init q_i and k_j are independent, so q·k is an incoherent
sum of d_head terms (~ n^{1/2}); ∂L/∂A_ij = δo_i·v_j is likewise incoherent (δo from the
downstream weights, v_j = W_v x_j: independent), ~ n^{b_h + 1/2}; the softmax Jacobian is Θ(1)
while the logits are O(1); and δq_i = c Σ_j ∂L/∂s_ij k_j sums T (fixed) keys, so
b_q = e_c + b_h + 1/2 = b_h + (e_c + 1/2): smaller than a hidden layer's b_h by n^{e_c+1/2}
(n^{−r} on the scale, e_c = −1/2 − r). Hence own_q = own_h + e_c + 1/2, pass_q = pass_h (W_q
against the change of the block input), ‖Δq‖ ~ n^{max(own_q, pass_q) + 1/2} = n^r when the
block input moves maximally, and max_ratio_q ~ n^{e_c + 1/2} = n^{−r}. The same for k.
"""

from __future__ import annotations

from dataclasses import dataclass

from richness.scaling.parameterization import Parameterization

__all__ = [
    "Criterion",
    "attention_exponents",
    "criteria",
    "predict_exponents",
    "weight_gradient_exponents",
]

_TOL = 1e-9


def _layer_roles(depth: int, roles: list[str] | None = None) -> list[str]:
    if not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth={depth!r} must be an integer ≥ 2 (input and output layers)")
    if roles is None:
        return ["input"] + ["hidden"] * (depth - 2) + ["output"]
    roles = list(roles)
    inner_ok = all(role in ("input", "hidden") for role in roles[1:-1])
    if len(roles) != depth or roles[0] != "input" or roles[-1] != "output" or not inner_ok:
        raise ValueError(
            f"roles={roles!r} must list depth={depth} roles: 'input' first, 'output' last, "
            "'input' or 'hidden' between"
        )
    return roles


def predict_exponents(
    p: Parameterization, depth: int = 3, roles: list[str] | None = None
) -> dict[str, float]:
    """Predicted width exponents for a network of `depth` weight layers.

    Args:
      p: the table.
      depth: number of weight layers (input + hidden + output); 3 is the tutorial's model.
      roles: the layers' roles in order (None: input, hidden…, output). An "input" layer
        inside the network is input-like: fan-in fixed, fan-out n, each output coordinate fed
        by one input coordinate's k² taps (a ConvMixer's depthwise conv): its σ, η follow the
        input row, its fan-in does not scale, and the gradient it passes back does not sum
        over n. A residual connection around it leaves the exponents as they are (the sum of
        two terms of one exponent).

    Returns:
      A flat dict. Per representation ℓ = 1..depth−1 (hidden): "h_rms/ℓ" (C1), "dh/ℓ" (C2,
      ‖Δh_ℓ‖), "dh_rms/ℓ", "grad_h/ℓ" (C7, ‖∂L/∂h_ℓ‖); per layer ℓ = 2..depth: "max_ratio/ℓ"
      (C5); per layer ℓ = 1..depth: "uuc/ℓ"; for ℓ = depth (the output f), "dh/ℓ" and
      "dh_rms/ℓ" are ‖Δf‖'s exponent and "h_rms/ℓ" that of f after training, max(f0, Δf).
      Summaries: "h_rms" (largest |exponent|), "dh" (the richness r: largest hidden ‖Δh‖
      exponent), "f0" (C3), "df" (C4), "max_ratio" (largest |exponent|), "align" (C6, 0),
      "lin_gap" (C8, 2·dh − 1, relative to ‖Δf‖). Per layer ℓ = 1..depth: "dW_entry/ℓ" (an
      entry of the effective weight's update ΔW̃_ℓ, i.e. ‖ΔW̃_ℓ‖_F/√(fan_in·fan_out)) and
      "dW_norm/ℓ" (‖ΔW̃_ℓ‖_F and ‖ΔW̃_ℓ‖_op, which share one exponent), derived in the module
      docstring (issue 14's C14). They are not Meter keys (the Meter's are "dW_fro", "dW_op"),
      so `predicted_series` does not file them with runs; C14 maps them itself.
    """
    roles = _layer_roles(depth, roles)
    adam = p.optimizer == "adam"
    v, lam, fan, a, b = _init_pass(p, roles)
    n_layers = len(roles)
    d = [float("-inf")]  # d[ℓ]: coordinate exponent of Δh_ℓ; Δh_0 = 0
    own, passthrough = [], []
    for ell in range(1, n_layers + 1):
        i = ell - 1
        if adam:
            own_ell = lam[i] + fan[i] + a[ell - 1]
        else:
            own_ell = lam[i] + b[ell] + fan[i] + 2 * a[ell - 1]
        readout = 0.5 if ell == n_layers else 0.0
        pass_ell = v[i] + fan[i] / 2 + d[ell - 1] + readout
        own.append(own_ell)
        passthrough.append(pass_ell)
        d.append(max(own_ell, pass_ell))
    out: dict[str, float] = {}
    for ell in range(1, n_layers):
        out[f"h_rms/{ell}"] = a[ell]
        out[f"dh/{ell}"] = d[ell] + 0.5
        out[f"dh_rms/{ell}"] = d[ell]
        out[f"grad_h/{ell}"] = b[ell] + 0.5
    # the output layer's "representation" is f itself: its change is Δf, its size f0 + Δf
    out[f"dh/{n_layers}"] = d[n_layers]
    out[f"dh_rms/{n_layers}"] = d[n_layers]
    out[f"h_rms/{n_layers}"] = max(a[n_layers], d[n_layers])
    for ell in range(2, n_layers + 1):
        out[f"max_ratio/{ell}"] = own[ell - 1] - passthrough[ell - 1]
    for ell in range(1, n_layers + 1):
        hidden = 1.0 if ell < n_layers else 0.0
        out[f"uuc/{ell}"] = b[ell] + d[ell] + hidden
    for ell in range(1, n_layers + 1):
        i = ell - 1
        entry = lam[i] if adam else lam[i] + b[ell] + a[ell - 1]
        fan_out = 1.0 if ell < n_layers else 0.0  # the readout's fan-out is fixed
        out[f"dW_entry/{ell}"] = entry
        out[f"dW_norm/{ell}"] = entry + (fan[i] + fan_out) / 2
    dh = max(out[f"dh/{ell}"] for ell in range(1, n_layers))
    out["h_rms"] = max((a[ell] for ell in range(1, n_layers)), key=abs)
    out["dh"] = dh
    out["f0"] = a[n_layers]
    out["df"] = d[n_layers]
    out["max_ratio"] = max((out[f"max_ratio/{ell}"] for ell in range(2, n_layers + 1)), key=abs)
    out["align"] = 0.0
    out["lin_gap"] = 2 * dh - 1
    return {key: _clean(value) for key, value in out.items()}


def _init_pass(
    p: Parameterization, roles: list[str]
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Per-layer exponents v, λ, f and the forward (a) and backward (b) passes at init."""
    exps = p.exponents()
    adam = p.optimizer == "adam"
    v, lam, fan = [], [], []
    for role in roles:
        e = exps[role]
        v.append(e["multiplier"] + e["init_std"])
        lam.append(e["lr"] + (1 if adam else 2) * e["multiplier"])
        fan.append(0.0 if role == "input" else 1.0)
    n_layers = len(roles)
    a = [0.0]  # a[ℓ]: coordinate exponent of h_ℓ; h_0 = x
    for ell in range(n_layers):
        a.append(v[ell] + fan[ell] / 2 + a[ell])
    b = [0.0] * (n_layers + 1)  # b[ℓ]: coordinate exponent of δ_ℓ = ∂L/∂h_ℓ
    b[n_layers] = max(0.0, a[n_layers])
    for ell in range(n_layers - 1, 0, -1):
        fan_out_scales = roles[ell] == "hidden"  # layer ℓ+1 (index ell) sums over n outputs
        b[ell] = v[ell] + (0.5 if fan_out_scales else 0.0) + b[ell + 1]
    return v, lam, fan, a, b


def weight_gradient_exponents(p: Parameterization, depth: int = 3) -> dict[str, float]:
    """Width exponents of the coordinates of ∂L/∂W_ℓ (the raw weight that the optimizer sees).

    ∂L/∂W_ℓ = g_ℓ · δ_ℓ h_{ℓ−1}ᵀ, so a coordinate is ~ n^{m_ℓ + b_ℓ + a_{ℓ−1}} (m_ℓ: exponent of
    g_ℓ; a, b: the forward and backward passes of `predict_exponents`). Unlike the other
    predictions it depends on the gauge: under (θg, σ/θ, ·) the raw gradient scales by θ
    (THEORY.md §3). Adam's ε must follow it (ε ≪ |g| at every width; docs/adam.md).

    Args:
      p: the table.
      depth: number of weight layers.

    Returns:
      {"grad_w/ℓ": exponent} for ℓ = 1..depth, and {"grad_w/<role>": exponent} per role (a
      hidden layer's is the same at every depth for tables on the scale; the first is taken).
    """
    roles = _layer_roles(depth)
    exps = p.exponents()
    _, _, _, a, b = _init_pass(p, roles)
    out: dict[str, float] = {}
    for ell, role in enumerate(roles, start=1):
        value = _clean(exps[role]["multiplier"] + b[ell] + a[ell - 1])
        out[f"grad_w/{ell}"] = value
        out.setdefault(f"grad_w/{role}", value)
    return out


def attention_exponents(p: Parameterization) -> dict[str, float]:
    """Predicted width exponents of an attention block's q and k projections (d_head ∝ n).

    Derived in the module docstring ("Attention"): the logit's backward signal is an incoherent
    sum at init, so q's and k's backward signal is n^{e_c + 1/2} smaller than a generic hidden
    layer's (e_c: the logit scale's exponent, that of the output layer's g·σ, as
    `richness.nn.transformer.attention_scale` sets it).

    Args:
      p: the table (SGD).

    Returns:
      {"logit": exponent of a logit at init, "grad_h/q": of ‖∂L/∂q‖ (a hidden layer's is
      "grad_h_hidden"), "own/q": of ‖ΔW_q x‖, "pass/q": of ‖W_q Δx‖ (the block input moving as
      a hidden representation does), "dh/q": of ‖Δq‖, "max_ratio/q": own − pass; the same for
      "/k"; and "grad_h_hidden", "own_hidden" for comparison}.

    Raises:
      ValueError: an Adam table (its update does not follow the gradient's size).
    """
    if p.optimizer != "sgd":
        raise ValueError(f"optimizer={p.optimizer!r}: attention_exponents derives SGD only")
    v, lam, fan, a, b = _init_pass(p, ["input", "hidden", "hidden", "output"])
    e_c = v[3]  # the output layer's g·σ exponent: the logit scale (attention_scale)
    b_h = b[2]  # a hidden representation's backward signal (coordinates)
    own_h = lam[1] + b_h + fan[1] + 2 * a[1]
    pass_h = v[1] + fan[1] / 2 + max(own_h, lam[0] + b[1] + fan[0] + 2 * a[0])
    b_q = e_c + b_h + 0.5
    own_q = lam[1] + b_q + fan[1] + 2 * a[1]
    out = {
        "logit": e_c + 0.5 + 2 * a[1],
        "grad_h_hidden": b_h + 0.5,
        "own_hidden": own_h + 0.5,
    }
    for name in ("q", "k"):
        out[f"grad_h/{name}"] = b_q + 0.5
        out[f"own/{name}"] = own_q + 0.5
        out[f"pass/{name}"] = pass_h + 0.5
        out[f"dh/{name}"] = max(own_q, pass_h) + 0.5
        out[f"max_ratio/{name}"] = own_q - pass_h
    return {key: _clean(value) for key, value in out.items()}


def _clean(x: float) -> float:
    """Rounds away float noise so that exponents print as 0.25, not 0.24999999999999997."""
    return round(x, 12) + 0.0


@dataclass(frozen=True)
class Criterion:
    """One criterion's verdict: whether it holds, and by what exponent it breaks."""

    name: str
    holds: bool
    exponent: float
    detail: str


def criteria(p: Parameterization, depth: int = 3) -> list[Criterion]:
    """Verdicts for THEORY.md §2: activations Θ(1), NTC, UUC, MAX, and r within [0, 1/2].

    Each `Criterion.exponent` is the offending width exponent (0 when the criterion holds).
    """
    e = predict_exponents(p, depth)
    hidden = range(1, depth)
    layers = range(1, depth + 1)
    verdicts = []
    worst_h = max((e[f"h_rms/{ell}"] for ell in hidden), key=abs)
    bad_f0 = max(e["f0"], 0.0)
    act_exp = worst_h if abs(worst_h) > _TOL else bad_f0
    verdicts.append(
        Criterion(
            "activations",
            abs(worst_h) <= _TOL and bad_f0 <= _TOL,
            act_exp,
            f"hidden coordinates ~ n^{worst_h:+.3g}, initial output ~ n^{e['f0']:+.3g}",
        )
    )
    verdicts.append(
        Criterion("NTC", abs(e["df"]) <= _TOL, e["df"], f"‖Δf‖ after one step ~ n^{e['df']:+.3g}")
    )
    uuc_bad = [(ell, e[f"uuc/{ell}"]) for ell in layers if abs(e[f"uuc/{ell}"]) > _TOL]
    verdicts.append(
        Criterion(
            "UUC",
            not uuc_bad,
            max((x for _, x in uuc_bad), key=abs, default=0.0),
            "every layer's update moves the loss at order one"
            if not uuc_bad
            else "; ".join(f"layer {ell}: δ·Δh ~ n^{x:+.3g}" for ell, x in uuc_bad),
        )
    )
    max_bad = [(ell, e[f"max_ratio/{ell}"]) for ell in range(2, depth + 1)]
    max_bad = [(ell, x) for ell, x in max_bad if abs(x) > _TOL]
    verdicts.append(
        Criterion(
            "MAX",
            not max_bad,
            max((x for _, x in max_bad), key=abs, default=0.0),
            "own update and passthrough are of the same order in every layer"
            if not max_bad
            else "; ".join(f"layer {ell}: ‖ΔW h‖/‖W Δh‖ ~ n^{x:+.3g}" for ell, x in max_bad),
        )
    )
    r = e["dh"]
    off = r if r < 0 else (r - 0.5 if r > 0.5 else 0.0)
    verdicts.append(
        Criterion(
            "scale", abs(off) <= _TOL, off, f"‖Δh‖ ~ n^{r:+.3g}: effective richness r = {r:g}"
        )
    )
    return verdicts
