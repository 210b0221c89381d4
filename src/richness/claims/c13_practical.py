"""C13 (THEORY.md §3 named points, §4): practical conv nets in the five named parameterizations.

Two forms, one rule (`richness.claims.rules`, C13 v3): digits (no `ctx.data_dir`; v1's checks,
unchanged) and CIFAR-10 (`ctx.data_dir`, key "cifar10" of the rule; docs/c13_cifar.md).

Measures: C13, as the author's mupify CNN experiment (research/paper-digest.md §5, E4): the
five named points' absolute tables (`base_width: "absolute"`): the lazy family NTP ≡ NTP-lr
(r = 0) and the rich family μP ≡ μP-lr ≡ MFP (r = 1/2); members of a family are gauge
transformations of each other (THEORY.md §3). SGD with momentum 0.9, batch 64, MSE on one-hot
targets, uncentered (as the author).

Digits form. The Myrtle-style CNN (`richness.nn.models.CNN`: 4 conv 3×3 layers of n channels,
ReLU, average pools, linear readout) on digits as 1×8×8 images (1000 train, 500 test, 64 probe
images). η0 = 3.2 for every preset: the author trained with lr 1 on `F.mse_loss` (mean over
the 10 outputs) and ReLUs with a √2 gain; our loss ½·Σ_outputs is 5× larger (lr 0.2 matches),
and without the √2 gains the infinite-width NTK of this 5-layer network is 2^{L−1} = 16×
smaller, so 0.2 · 16 = 3.2 gives the author's function-space step. Verdict (seed means; (b)
and (c) at the largest width):
  (a) within each family the test-loss curves coincide: at every measured step and width,
      (max − min)/mean over the family's presets is at most TOL_FAMILY (lazy 0.02, rich
      0.25). Measured at full scale: lazy 0.005 (single seeds 0.013), rich 0.12 (single
      seeds 0.29, around steps 50–100 where the loss drops fastest);
  (b) the rich family's worst final test loss ≤ RATIO_LOSS (0.8) times the lazy family's best
      (measured 0.016 against 0.136 at n = 128, full);
  (c) the rich family's relative movement ‖Δh_ℓ‖/‖h_ℓ(0)‖ (RMS coordinates on the probe
      images, final step) of every conv layer ≥ RATIO_DH (1.5) times the lazy family's
      (measured 3.6–6.8 at n = 128, full);
and every run finishes. Caveat on (b): after 300 steps the lazy family has not fit the training
set (training loss ≈ 0.13), so part of the gap is speed (at 8× longer, n = 64, NTP's test loss
0.031 is still above μP's 0.017). Quick (n = 16, 32; one seed; 100 steps): spreads 5e-5 and
0.007, final test loss 0.11 (rich) against 0.36 (lazy), movement ratios 4.0–6.3. Cost: 45 runs,
about 4.5 min at full scale on two shared cores; quick about 15 s.

CIFAR-10 form (rule v2/v3, written before the runs it judges; docs/c13_cifar.md has the
diagnosis and the numbers). Why v1 failed on real images: one η0 = 3.2, tuned on digits, is
above μP's stability edge on 32×32 images from n = 32 (μP's ReLUs all die, f ≡ 0, loss 0.500)
and 4–8× below NTP's (12.8 stable, 25.6 dies at n = 16), and 100 steps train neither family.
Here: Myrtle5 (`CNN`, depth 4, 3×32×32) and a ConvMixer (`richness.nn.models.ConvMixer`, 4
blocks, patch 4, kernel 5), 512 training images (per-channel standardized, the loader's
default), 500 test, 64 probe; 36 epochs of 8 steps (quick: 4 epochs), measured every 2 epochs
and at the last 4 steps; widths 16, 32, 64 (quick: 16); one seed; η0 per network and family
(`RULE_CIFAR["lr"]`, by the rule's stated procedure: Myrtle5 lazy 12.8, rich 1.6; ConvMixer
lazy 1.6, rich 0.8). Checks per network: (a) the family spreads as above; (b) rich worst ≤
0.95 × lazy best final test loss at n = 64; (c) movement ratio ≥ 1.5 in every layer but the
readout at n = 64; (d1) the lazy family's final training loss (mean mini-batch loss of the last
4 steps) ≤ 0.25; (d2) its ‖Δh‖/‖h0‖ width slope ≤ −0.25 in every layer but the readout (−1/2
predicted); the quick form checks (a)–(c). C2–C5 and C8 on both networks (short centered runs,
STP tables at r ∈ {0, 1/2}, widths 16–128, two seeds; `_scale.fitted_slopes` and `judge`) are
reported in `details["scale_checks"]`, not part of the verdict. Cost: about 20 min at full
scale on two shared cores, quick about 1–2 min.

`ctx.substitute` trains that preset in place of the rich family, at the rich family's η0 (a
lazy table in its place fails (c): tests).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from richness.claims._base import ClaimResult, Context
from richness.claims._figures import plt, save_claim_figure
from richness.claims.rules import rule_of

__all__ = ["CLAIM", "TITLE", "family_spread", "run"]

CLAIM = "C13"
TITLE = "practical CNN: gauge families coincide, the rich family reaches lower test loss"
FAMILIES = {"lazy": ["ntp", "ntp-lr"], "rich": ["mup", "mup-lr", "mf"]}
LR = 3.2
MOMENTUM = 0.9
BATCH = 64
DEPTH = 4
_TOL = rule_of(CLAIM)["tolerance"]  # richness.claims.rules
TOL_FAMILY = _TOL["family_spread"]
RATIO_LOSS = _TOL["rich_over_lazy_loss_at_most"]
RATIO_DH = _TOL["rich_over_lazy_rel_dh_at_least"]
WIDTHS = {"quick": [16, 32], "full": [32, 64, 128]}
SEEDS = {"quick": [0], "full": [0, 1, 2]}
STEPS = {"quick": 100, "full": 300}
MEASURE = {"quick": [0, 25, 50, 100], "full": [0, 25, 50, 100, 150, 200, 300]}
SIZES = {"n_train": 1000, "n_test": 500, "n_probe": 64, "seed": 0}


def spec_for(ctx: Context) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The digits form's sweep spec at the context's scale and the families it trains (after
    substitution); with `ctx.data_dir`, the same spec on CIFAR-10 (v1's form, which the CIFAR
    form of rule v2 replaces in `run`: see `cifar_specs`)."""
    families = {k: list(v) for k, v in FAMILIES.items()}
    if ctx.substitute:
        families["rich"] = [ctx.substitute]
    presets = list(dict.fromkeys(p for members in families.values() for p in members))
    if ctx.data_dir:
        data = {"kind": "cifar10", "data_dir": ctx.data_dir, "as_images": True, **SIZES}
    else:
        data = {"kind": "digits", "as_images": True, **SIZES}
    spec = {
        "name": "c13-practical",
        "model": {"kind": "cnn", "depth": DEPTH, "activation": "relu"},
        "data": data,
        "widths": WIDTHS[ctx.scale],
        "presets": presets,
        "base_width": "absolute",
        "seeds": SEEDS[ctx.scale],
        "optimizer": {"kind": "sgd", "lr": LR, "momentum": MOMENTUM},
        "steps": STEPS[ctx.scale],
        "batch_size": BATCH,
        "center": False,
        "measure": {"steps": MEASURE[ctx.scale], "metrics": ["default"]},
    }
    return spec, families


def _tidy(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics with preset, width and seed of their run."""
    keys = runs[["run_id", "preset", "width", "seed"]]
    return metrics.merge(keys, on="run_id")


def family_spread(curves: pd.DataFrame, members: list[str]) -> float:
    """Max over steps and widths of (max − min)/mean of a quantity across a family's presets.

    Args:
      curves: seed means with columns preset, width, step, value.
      members: the family's presets.

    Returns:
      The largest relative difference (0 for a family of one; NaN when a member is missing).
    """
    part = curves[curves.preset.isin(members)]
    if len(members) < 2:
        return 0.0
    table = part.pivot_table(index=["width", "step"], columns="preset", values="value")
    if set(table.columns) != set(members) or table.isna().any().any():
        return float("nan")
    spread = (table.max(axis=1) - table.min(axis=1)) / table.mean(axis=1)
    return float(spread.max())


def run(ctx: Context) -> ClaimResult:
    """Runs (or reads back) the sweeps and returns the verdict: the CIFAR-10 form when
    `ctx.data_dir` is given (rule v2, `RULE_CIFAR`), the digits form otherwise (rules in the
    docstring)."""
    if ctx.data_dir:
        return _run_cifar(ctx)
    return _run_digits(ctx)


def _run_digits(ctx: Context) -> ClaimResult:
    """The digits form (rule v1's checks, unchanged in v2)."""
    spec, families = spec_for(ctx)
    runs, metrics = ctx.sweep(spec, substitutable=False)
    tidy = _tidy(runs, metrics)
    final, widest = spec["steps"], max(spec["widths"])
    not_done = runs[runs.status != "done"][["preset", "width", "seed", "status"]]

    means = tidy.groupby(["quantity", "layer", "preset", "width", "step"], as_index=False).value
    means = means.mean()
    loss = means[(means.quantity == "test_loss") & (means.layer == "")]
    acc = means[(means.quantity == "test_acc") & (means.layer == "")]
    train = means[(means.quantity == "loss") & (means.layer == "")]  # the step's mini-batch
    h0 = means[(means.quantity == "h_rms") & (means.step == 0)]
    dh = means[(means.quantity == "dh_rms") & (means.step == final)]
    rel = dh.merge(h0, on=["layer", "preset", "width"], suffixes=("", "_h0"))
    rel = rel.assign(rel_dh=rel.value / rel.value_h0)
    convs = [f"convs.{i}" for i in range(DEPTH)]

    def at(frame: pd.DataFrame, preset: str, width: int, step: int) -> float:
        row = frame[(frame.preset == preset) & (frame.width == width) & (frame.step == step)]
        return float(row.value.iloc[0]) if len(row) else float("nan")

    def rel_of(preset: str, width: int, layer: str) -> float:
        row = rel[(rel.preset == preset) & (rel.width == width) & (rel.layer == layer)]
        return float(row.rel_dh.iloc[0]) if len(row) else float("nan")

    spreads = {name: family_spread(loss, members) for name, members in families.items()}
    final_loss = {p: at(loss, p, widest, final) for ps in families.values() for p in ps}
    lazy_best = min(final_loss[p] for p in families["lazy"])
    rich_worst = max(final_loss[p] for p in families["rich"])
    fam_dh = {
        name: {c: float(np.mean([rel_of(p, widest, c) for p in members])) for c in convs}
        for name, members in families.items()
    }
    dh_ratio = {c: fam_dh["rich"][c] / fam_dh["lazy"][c] for c in convs}
    checks = {
        "every run done": not_done.empty,
        **{
            f"(a) {name} family spread ≤ {TOL_FAMILY[name]}": bool(
                spreads[name] <= TOL_FAMILY[name]
            )
            for name in families
        },
        f"(b) rich final test loss ≤ {RATIO_LOSS} × lazy at n={widest}": bool(
            rich_worst <= RATIO_LOSS * lazy_best
        ),
        f"(c) rich ‖Δh‖/‖h‖ ≥ {RATIO_DH} × lazy, every conv layer, n={widest}": bool(
            all(r >= RATIO_DH for r in dh_ratio.values())
        ),
    }
    ok = all(checks.values())

    rows = []
    for name, members in families.items():
        for p in members:
            for w in spec["widths"]:
                rows.append(
                    {
                        "family": name,
                        "preset": p,
                        "width": w,
                        "test_loss": at(loss, p, w, final),
                        "test_mse_author": at(loss, p, w, final) / 5,  # Σ_o/10, mean: F.mse_loss
                        "test_acc": at(acc, p, w, final),
                        "train_loss": at(train, p, w, final),
                        **{f"rel_dh/{c}": rel_of(p, w, c) for c in convs},
                    }
                )
    per_seed = _per_seed_spread(tidy, families)
    log_w = np.log(np.asarray(spec["widths"], dtype=float))

    def width_slope(members: list[str], layer: str) -> float:
        """Slope of log(family-mean ‖Δh‖/‖h(0)‖) against log(width)."""
        moved = [np.mean([rel_of(p, w, layer) for p in members]) for w in spec["widths"]]
        return float(np.polyfit(log_w, np.log(moved), 1)[0])

    # C2 in relative form, n^{r − 1/2} (−1/2 lazy, 0 rich) while updates are small
    dh_slopes = {name: {c: width_slope(m, c) for c in convs} for name, m in families.items()}
    figure = _figure(ctx, loss, rel, families, spec, convs[-1])
    return ClaimResult(
        claim=CLAIM,
        title=TITLE,
        verdict="pass" if ok else "fail",
        measured={
            "family_spread": {k: round(v, 5) for k, v in spreads.items()},
            "final_test_loss": {
                "lazy_best": round(lazy_best, 5),
                "rich_worst": round(rich_worst, 5),
            },
            "rel_dh_ratio": {c: round(v, 3) for c, v in dh_ratio.items()},
        },
        predicted={
            "family_spread": 0.0,
            "final_test_loss": "rich < lazy",
            "rel_dh_ratio": "> 1 (growing as √n)",
        },
        tolerance={
            "family_spread": TOL_FAMILY,
            "rich_over_lazy_loss_at_most": RATIO_LOSS,
            "rich_over_lazy_rel_dh_at_least": RATIO_DH,
        },
        details={
            "checks": checks,
            "data": spec["data"]["kind"],
            "lr": LR,
            "steps": final,
            "widths": spec["widths"],
            "seeds": spec["seeds"],
            "families": families,
            "per_seed_family_spread": per_seed,
            "family_rel_dh": fam_dh,
            "family_rel_dh_width_slope": dh_slopes,
            "final_test_acc": {p: at(acc, p, widest, final) for p in final_loss},
            "not_done": not_done.to_dict("records"),
        },
        figures=[figure],
        table=rows,
    )


def _per_seed_spread(tidy: pd.DataFrame, families: dict[str, list[str]]) -> dict[str, float]:
    """The family spread of single seeds' test-loss curves (worst seed)."""
    loss = tidy[(tidy.quantity == "test_loss") & (tidy.layer == "")]
    out = {}
    for name, members in families.items():
        values = [family_spread(group, members) for _, group in loss.groupby("seed")]
        out[name] = float(np.max(values)) if values else float("nan")
    return out


def _figure(
    ctx: Context,
    loss: pd.DataFrame,
    rel: pd.DataFrame,
    families: dict[str, list[str]],
    spec: dict[str, Any],
    layer: str,
) -> str:
    """Test loss against step at the largest width, final test loss and feature movement
    against width; lazy presets in blues, rich ones in reds."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    colors = {"lazy": plt.cm.Blues, "rich": plt.cm.Reds}
    widest, final = max(spec["widths"]), spec["steps"]
    for name, members in families.items():
        for i, p in enumerate(members):
            color = colors.get(name, plt.cm.Greys)(0.5 + 0.4 * i / max(1, len(members) - 1))
            style = ["-", "--", ":"][i % 3]
            curve = loss[(loss.preset == p) & (loss.width == widest)].sort_values("step")
            axes[0].semilogy(curve.step, curve.value, style, color=color, label=f"{p} ({name})")
            end = loss[(loss.preset == p) & (loss.step == final)].sort_values("width")
            axes[1].loglog(end.width, end.value, "o" + style, color=color, ms=3, label=p)
            moved = rel[(rel.preset == p) & (rel.layer == layer)].sort_values("width")
            axes[2].loglog(moved.width, moved.rel_dh, "o" + style, color=color, ms=3, label=p)
    axes[0].set(xlabel="step", ylabel="test loss ½‖f − y‖²", title=f"n = {widest}, seed mean")
    axes[1].set(xlabel="width n", ylabel=f"test loss at step {final}", title="final test loss")
    axes[2].set(xlabel="width n", ylabel="‖Δh‖/‖h(0)‖", title=f"feature movement, {layer}")
    for ax in axes[1:]:
        ax.set_xticks(spec["widths"], [str(w) for w in spec["widths"]], minor=False)
        ax.set_xticks([], minor=True)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE} ({spec['data']['kind']})")


# ------------------------------------------------------------------------------ CIFAR-10 form

RULE_CIFAR = rule_of(CLAIM)["cifar10"]  # richness.claims.rules: the v2 form on real images


def cifar_specs(ctx: Context) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, list[str]]]:
    """The CIFAR-10 form's sweep specs, {model: {family: spec}}, one spec per family (each
    family trains at its own η0, `RULE_CIFAR["lr"]`), and the families after substitution (the
    substitute trains in the rich family's place, at the rich family's η0)."""
    rule = RULE_CIFAR
    families = {k: list(v) for k, v in FAMILIES.items()}
    if ctx.substitute:
        families["rich"] = [ctx.substitute]
    steps = rule["epochs"][ctx.scale] * rule["steps_per_epoch"]
    every = rule["measure_every_epochs"] * rule["steps_per_epoch"]
    last = rule["final_train_loss_steps"]
    measure = sorted(set(range(0, steps + 1, every)) | set(range(steps - last + 1, steps + 1)))
    data = {"kind": "cifar10", "data_dir": ctx.data_dir, "as_images": True, **rule["data"]}
    specs: dict[str, dict[str, dict[str, Any]]] = {}
    for model, settings in rule["models"].items():
        specs[model] = {}
        for family, members in families.items():
            specs[model][family] = {
                "name": f"c13-cifar-{model}-{family}",
                "model": settings["model"],
                "data": data,
                "widths": settings["widths"][ctx.scale],
                "presets": members,
                "base_width": "absolute",
                "seeds": rule["seeds"][ctx.scale],
                "optimizer": {
                    "kind": "sgd",
                    "lr": settings["lr"][family],
                    "momentum": rule["momentum"],
                },
                "steps": steps,
                "batch_size": rule["batch_size"],
                "center": False,
                "measure": {"steps": measure, "metrics": ["default"]},
            }
    return specs, families


def scale_check_spec(ctx: Context, model: str) -> dict[str, Any]:
    """The short centered run of `model` behind C13's C2–C5 and C8 rows: STP tables at the
    rule's r, base width the smallest width, SGD, full batch (`RULE_CIFAR["scale_checks"]`)."""
    rule = RULE_CIFAR["scale_checks"]
    widths = rule["widths"][ctx.scale]
    return {
        "name": f"c13-cifar-scale-{model}",
        "model": RULE_CIFAR["models"][model]["model"],
        "data": {"kind": "cifar10", "data_dir": ctx.data_dir, "as_images": True, **rule["data"]},
        "widths": widths,
        "richness": rule["r"],
        "gauges": ["stp"],
        "base_width": min(widths),
        "seeds": rule["seeds"][ctx.scale],
        "optimizer": {"kind": "sgd", "lr": rule["lr"]},
        "steps": rule["steps"][ctx.scale],
        "measure": {"steps": [0, 1, rule["steps"][ctx.scale]], "metrics": rule["metrics"]},
        "center": True,
    }


def _family_tables(
    tidy: pd.DataFrame, final: int, last_steps: list[int]
) -> dict[str, pd.DataFrame]:
    """Seed means of the quantities the CIFAR form reads: test loss and accuracy curves, the
    final training loss (mean mini-batch loss over `last_steps`), h(0) and Δh at `final`."""
    means = tidy.groupby(["quantity", "layer", "preset", "width", "step"], as_index=False).value
    means = means.mean()
    model_level = means[means.layer == ""]
    train = model_level[(model_level.quantity == "loss") & model_level.step.isin(last_steps)]
    train = train.groupby(["preset", "width"], as_index=False).value.mean()
    h0 = means[(means.quantity == "h_rms") & (means.step == 0)]
    dh = means[(means.quantity == "dh_rms") & (means.step == final)]
    rel = dh.merge(h0, on=["layer", "preset", "width"], suffixes=("", "_h0"))
    return {
        "loss": model_level[model_level.quantity == "test_loss"],
        "acc": model_level[model_level.quantity == "test_acc"],
        "init_loss": model_level[(model_level.quantity == "loss") & (model_level.step == 0)],
        "train": train,
        "rel": rel.assign(rel_dh=rel.value / rel.value_h0),
    }


def _value(frame: pd.DataFrame, **where: Any) -> float:
    for key, wanted in where.items():
        frame = frame[frame[key] == wanted]
    column = "rel_dh" if "rel_dh" in frame.columns else "value"
    return float(frame[column].iloc[0]) if len(frame) else float("nan")


def _width_slope(widths: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(width) (NaN unless every value is > 0)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or not np.all(np.isfinite(v) & (v > 0)):
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(widths, dtype=float)), np.log(v), 1)[0])


def _judge_model(
    model: str,
    runs: pd.DataFrame,
    tidy: pd.DataFrame,
    spec: dict[str, Any],
    families: dict[str, list[str]],
    quick: bool,
) -> tuple[dict[str, bool], dict[str, Any], list[dict[str, Any]], dict[str, pd.DataFrame]]:
    """One network's checks (a)–(d) of rule v2's CIFAR form, its details and table rows."""
    rule, tol = RULE_CIFAR, RULE_CIFAR["tolerance"]
    final, widths = spec["steps"], spec["widths"]
    widest = max(widths)
    last_steps = [s for s in spec["measure"]["steps"] if s > final - rule["final_train_loss_steps"]]
    t = _family_tables(tidy, final, last_steps)
    layers = sorted(
        {layer for layer in t["rel"].layer if layer and layer != "readout"},
        key=lambda name: list(dict.fromkeys(tidy.layer)).index(name),
    )
    not_done = runs[runs.status != "done"][["preset", "width", "seed", "status"]]
    members = [p for ps in families.values() for p in ps]
    spreads = {name: family_spread(t["loss"], ps) for name, ps in families.items()}
    final_loss = {
        w: {p: _value(t["loss"], preset=p, width=w, step=final) for p in members} for w in widths
    }
    lazy_best = {w: min(final_loss[w][p] for p in families["lazy"]) for w in widths}
    rich_worst = {w: max(final_loss[w][p] for p in families["rich"]) for w in widths}
    fam_rel = {
        name: {
            w: {
                layer: float(
                    np.mean([_value(t["rel"], preset=p, width=w, layer=layer) for p in ps])
                )
                for layer in layers
            }
            for w in widths
        }
        for name, ps in families.items()
    }
    ratio_dh = {
        layer: fam_rel["rich"][widest][layer] / fam_rel["lazy"][widest][layer] for layer in layers
    }
    slopes = {
        name: {
            layer: _width_slope(widths, [fam_rel[name][w][layer] for w in widths])
            for layer in layers
        }
        for name in families
    }
    lazy_train = max(_value(t["train"], preset=p, width=widest) for p in families["lazy"])
    checks = {
        f"{model}: every run done": not_done.empty,
        **{
            f"{model}: (a) {name} family spread ≤ {tol['family_spread'][name]}": bool(
                spreads[name] <= tol["family_spread"][name]
            )
            for name in families
        },
        f"{model}: (b) rich final test loss ≤ {tol['rich_over_lazy_loss_at_most']} × lazy, "
        f"n={widest}": bool(
            rich_worst[widest] <= tol["rich_over_lazy_loss_at_most"] * lazy_best[widest]
        ),
        f"{model}: (c) rich ‖Δh‖/‖h0‖ ≥ {tol['rich_over_lazy_rel_dh_at_least']} × lazy, every "
        f"layer but the readout, n={widest}": bool(
            all(r >= tol["rich_over_lazy_rel_dh_at_least"] for r in ratio_dh.values())
        ),
        f"{model}: (d1) lazy final training loss ≤ {tol['lazy_train_loss_at_most']}, "
        f"n={widest}": bool(lazy_train <= tol["lazy_train_loss_at_most"]),
        f"{model}: (d2) lazy ‖Δh‖/‖h0‖ width slope ≤ {tol['lazy_rel_dh_slope_at_most']}, "
        "every layer but the readout": bool(
            all(s <= tol["lazy_rel_dh_slope_at_most"] for s in slopes["lazy"].values())
        ),
    }
    if quick:  # rule v2: the quick form checks (a)–(c) only (RULE_CIFAR["quick_form"])
        checks = {k: v for k, v in checks.items() if "(d" not in k}
    rows = []
    for name, ps in families.items():
        for p in ps:
            for w in widths:
                rows.append(
                    {
                        "model": model,
                        "family": name,
                        "preset": p,
                        "width": w,
                        "lr": spec_lr(model, name),
                        "init_train_loss": _value(t["init_loss"], preset=p, width=w),
                        "train_loss": _value(t["train"], preset=p, width=w),
                        "test_loss": final_loss[w][p],
                        "test_acc": _value(t["acc"], preset=p, width=w, step=final),
                        **{
                            f"rel_dh/{layer}": _value(t["rel"], preset=p, width=w, layer=layer)
                            for layer in layers
                        },
                    }
                )
    curves = {
        p: {
            int(w): {
                "step": [int(s) for s in part.step],
                "test_loss": [round(float(v), 5) for v in part.value],
                "test_acc": [
                    round(_value(t["acc"], preset=p, width=w, step=s), 4) for s in part.step
                ],
            }
            for w in widths
            for part in [
                t["loss"][(t["loss"].preset == p) & (t["loss"].width == w)].sort_values("step")
            ]
        }
        for p in members
    }
    details = {
        "widths": widths,
        "steps": final,
        "epochs": final // rule["steps_per_epoch"],
        "lr": {name: spec_lr(model, name) for name in families},
        "family_spread": {k: round(v, 5) for k, v in spreads.items()},
        "per_seed_family_spread": _per_seed_spread(tidy, families),
        "rich_vs_lazy_final_test_loss": {
            int(w): {
                "lazy_best": round(lazy_best[w], 5),
                "rich_worst": round(rich_worst[w], 5),
                "ratio": round(rich_worst[w] / lazy_best[w], 4),
            }
            for w in widths
        },
        "rel_dh_ratio_widest": {k: round(v, 3) for k, v in ratio_dh.items()},
        "family_rel_dh": {
            name: {int(w): {k: round(v, 4) for k, v in by.items()} for w, by in fam.items()}
            for name, fam in fam_rel.items()
        },
        "family_rel_dh_width_slope": {
            name: {k: round(v, 3) for k, v in s.items()} for name, s in slopes.items()
        },
        "lazy_final_train_loss_widest": round(lazy_train, 5),
        "curves": curves,
        "not_done": not_done.to_dict("records"),
    }
    return checks, details, rows, t


def spec_lr(model: str, family: str) -> float:
    """η0 of `family` on `model` (a substitute in the rich family's place trains at rich's)."""
    return RULE_CIFAR["models"][model]["lr"][family]


def scale_check_rows(ctx: Context, model: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """C2–C5 and C8 on `model`: fitted width exponents of dh (hidden layers), f0 (step 0), df,
    max_ratio (every layer) and lin_gap at the last step, each judged against its prediction
    by `_scale.judge` at its claim's tolerance plus the conv-net allowance (C8: rises with r).
    """
    from richness.claims._scale import fitted_slopes, judge

    rule = RULE_CIFAR["scale_checks"]
    spec = scale_check_spec(ctx, model)
    runs, metrics = ctx.sweep(spec)
    step = spec["steps"]
    allowance = {"extra_tolerance": {model: rule["extra_tolerance"]}}
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for claim, quantity, layers, at in (
        ("C2", "dh", "hidden", step),
        ("C3", "f0", "model", 0),
        ("C4", "df", "model", step),
        ("C5", "max_ratio", "all", step),
    ):
        part = fitted_slopes(
            runs,
            metrics,
            spec,
            model,
            quantity,
            at,
            layers=layers,
            with_local=True,
            substitute=ctx.substitute,
        )
        ok, worst = judge(part, {"tolerance": rule["tolerance"][claim], "allowances": allowance})
        for row in part:
            row["claim"] = claim
        rows += part
        summary[claim] = {"verdict": "pass" if ok else "fail", "worst_gap": round(worst, 4)}
    gap = sorted(
        fitted_slopes(
            runs,
            metrics,
            spec,
            model,
            "lin_gap",
            step,
            layers="model",
            with_local=True,
            substitute=ctx.substitute,
        ),
        key=lambda row: row["r"],
    )
    for row in gap:
        row["claim"] = "C8"
        row["kink_term"] = row["r"] / 2 - 0.75
    slack = rule["tolerance"]["C8_rises_slack"]
    rises = bool(gap) and all(b["slope"] >= a["slope"] - slack for a, b in itertools.pairwise(gap))
    rows += gap
    summary["C8"] = {
        "verdict": "pass" if rises else "fail",
        "check": f"rises with r (slack {slack})",
    }
    return rows, summary


def _run_cifar(ctx: Context) -> ClaimResult:
    """Rule v2's CIFAR-10 form (`richness.claims.rules`, C13 "cifar10"): both networks, five
    named points, per-family η0; verdict on (a)–(d) of both networks; C2–C5 and C8 reported."""
    specs, families = cifar_specs(ctx)
    checks: dict[str, bool] = {}
    details: dict[str, Any] = {"data": "cifar10", "families": families, "rule_form": "cifar10"}
    table: list[dict[str, Any]] = []
    plotted: dict[str, dict[str, Any]] = {}
    for model, by_family in specs.items():
        parts = [ctx.sweep(spec, substitutable=False) for spec in by_family.values()]
        runs = pd.concat([r for r, _ in parts], ignore_index=True)
        tidy = pd.concat([_tidy(r, m) for r, m in parts], ignore_index=True)
        spec = next(iter(by_family.values()))
        model_checks, model_details, rows, t = _judge_model(
            model, runs, tidy, spec, families, quick=ctx.scale == "quick"
        )
        checks.update(model_checks)
        details[model] = model_details
        table += rows
        plotted[model] = {"t": t, "spec": spec}
    scale: dict[str, Any] = {}
    for model in specs:
        rows, summary = scale_check_rows(ctx, model)
        scale[model] = {"summary": summary, "rows": rows}
    details["scale_checks"] = {
        "enters_verdict": False,
        "summary": {m: s["summary"] for m, s in scale.items()},
        "rows": [row for s in scale.values() for row in s["rows"]],
    }
    details["checks"] = checks
    ok = all(checks.values())
    figure = _cifar_figure(ctx, plotted, families)
    first = {m: details[m]["rich_vs_lazy_final_test_loss"] for m in specs}
    return ClaimResult(
        claim=CLAIM,
        title=TITLE + " (CIFAR-10: Myrtle5, ConvMixer)",
        verdict="pass" if ok else "fail",
        measured={
            m: {
                "family_spread": details[m]["family_spread"],
                "rich_over_lazy_final_test_loss": {
                    w: v["ratio"] for w, v in details[m]["rich_vs_lazy_final_test_loss"].items()
                },
                "rel_dh_ratio_widest": details[m]["rel_dh_ratio_widest"],
                "lazy_final_train_loss_widest": details[m]["lazy_final_train_loss_widest"],
                "lazy_rel_dh_width_slope": details[m]["family_rel_dh_width_slope"]["lazy"],
            }
            for m in specs
        },
        predicted={
            "family_spread": 0.0,
            "final_test_loss": "rich < lazy",
            "rel_dh_ratio": "> 1 (growing as √n)",
            "lazy_rel_dh_width_slope": -0.5,
        },
        tolerance=RULE_CIFAR["tolerance"],
        details=details,
        figures=[figure],
        table=table,
        first_rule_verdict=_v1_verdict(first, details, specs),
    )


def _v1_verdict(
    ratios: dict[str, dict[int, dict[str, float]]], details: dict[str, Any], specs: dict
) -> str:
    """The same runs under rule v1's checks: (a) spreads 0.02 / 0.25, (b) ratio ≤ 0.8, (c)
    movement ratio ≥ 1.5 at the largest width (v1 had one network, one η0 and no (d))."""
    v1 = rule_of(CLAIM)["tolerance"]
    ok = True
    for model in specs:
        d = details[model]
        widest = max(d["widths"])
        ok &= all(d["family_spread"][k] <= v1["family_spread"][k] for k in d["family_spread"])
        ok &= (
            d["rich_vs_lazy_final_test_loss"][widest]["ratio"] <= v1["rich_over_lazy_loss_at_most"]
        )
        ok &= all(
            r >= v1["rich_over_lazy_rel_dh_at_least"] for r in d["rel_dh_ratio_widest"].values()
        )
        ok &= not d["not_done"]
    return "pass" if ok else "fail"


def _cifar_figure(
    ctx: Context, plotted: dict[str, dict[str, Any]], families: dict[str, list[str]]
) -> str:
    """Per network: test loss and test accuracy against epoch at the largest width (the
    every-2-epochs measurements), the final test loss and the feature movement ‖Δh‖/‖h0‖ of a
    middle layer against width; lazy presets in blues, rich ones in reds."""
    models = list(plotted)
    fig, axes = plt.subplots(len(models), 4, figsize=(17, 3.6 * len(models)), squeeze=False)
    colors = {"lazy": plt.cm.Blues, "rich": plt.cm.Reds}
    per_epoch = RULE_CIFAR["steps_per_epoch"]
    every = RULE_CIFAR["measure_every_epochs"] * per_epoch
    for row, model in enumerate(models):
        t, spec = plotted[model]["t"], plotted[model]["spec"]
        widest, final = max(spec["widths"]), spec["steps"]
        layers = [name for name in dict.fromkeys(t["rel"].layer) if name and name != "readout"]
        middle = layers[len(layers) // 2]
        for name, members in families.items():
            for i, p in enumerate(members):
                color = colors.get(name, plt.cm.Greys)(0.5 + 0.4 * i / max(1, len(members) - 1))
                style = ["-", "--", ":"][i % 3]
                for ax, frame in ((axes[row, 0], t["loss"]), (axes[row, 1], t["acc"])):
                    c = frame[(frame.preset == p) & (frame.width == widest)].sort_values("step")
                    c = c[(c.step % every == 0) | (c.step == final)]
                    ax.plot(c.step / per_epoch, c.value, style, color=color, label=f"{p} ({name})")
                end = t["loss"][(t["loss"].preset == p) & (t["loss"].step == final)]
                end = end.sort_values("width")
                axes[row, 2].plot(end.width, end.value, "o" + style, color=color, ms=3, label=p)
                moved = t["rel"][(t["rel"].preset == p) & (t["rel"].layer == middle)]
                moved = moved.sort_values("width")
                axes[row, 3].loglog(
                    moved.width, moved.rel_dh, "o" + style, color=color, ms=3, label=p
                )
        title = f"{model}, n = {widest}"
        axes[row, 0].set(xlabel="epoch", ylabel="test loss ½‖f − y‖²", title=title)
        axes[row, 1].set(xlabel="epoch", ylabel="test accuracy", title=title)
        axes[row, 2].set(
            xlabel="width n",
            ylabel=f"test loss at epoch {final // per_epoch}",
            xscale="log",
            title=f"{model}: final test loss",
        )
        axes[row, 3].set(
            xlabel="width n", ylabel="‖Δh‖/‖h(0)‖", title=f"{model}: feature movement, {middle}"
        )
        for ax in axes[row, 2:]:
            ax.set_xticks(spec["widths"], [str(w) for w in spec["widths"]], minor=False)
            ax.set_xticks([], minor=True)
        for ax in axes[row]:
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    return save_claim_figure(fig, ctx.out, CLAIM, f"{CLAIM}: {TITLE} (cifar10)")
