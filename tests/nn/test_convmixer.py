"""ConvMixer: its richness roles, its predictions and a coordinate check across widths."""

from __future__ import annotations

import pytest
import torch

import richness as rn
from richness.build import identity
from richness.config import RunConfig
from richness.coordcheck import coord_check
from richness.measure.meter import Meter, measured_layers
from richness.nn.models import ConvMixer
from richness.nn.roles import infer_roles
from richness.sweep import SpecError, config_hash
from richness.sweep.spec import ModelSpec


def test_roles_patch_input_depthwise_input_pointwise_hidden_readout_output() -> None:
    model, base = ConvMixer(3, 32, 10, depth=2, kernel_size=5), ConvMixer(3, 16, 10, depth=2)
    roles = infer_roles(model, base=base)
    assert roles["patch.weight"].role == "input" and roles["patch.weight"].fan_in == 3 * 16
    for i in range(2):
        depthwise = roles[f"blocks.{i}.depthwise.weight"]
        assert (depthwise.role, depthwise.fan_in, depthwise.width) == ("input", 25, 32)
        pointwise = roles[f"blocks.{i}.pointwise.weight"]
        assert (pointwise.role, pointwise.fan_in, pointwise.width) == ("hidden", 32, 32)
    assert roles["readout.weight"].role == "output" and roles["readout.weight"].fan_in == 32
    # μP (absolute): the depthwise conv gets the input row, fan-in k² fixed: LR factor n/k²
    p = rn.preset("mup-lr")
    rn.parameterize(model, p, base=base)
    rows = {row["name"]: row for row in rn.nn.table_of(model)}
    assert rows["blocks.0.depthwise.weight"]["lr_factor"] == pytest.approx(32 / 25, rel=1e-6)
    assert rows["blocks.0.pointwise.weight"]["lr_factor"] == pytest.approx(1.0)
    assert rows["readout.weight"]["lr_factor"] == pytest.approx(1 / 32, rel=1e-6)


def test_identity_predicts_by_the_recorded_roles() -> None:
    config = RunConfig.parse(
        {
            "model": {"kind": "convmixer", "depth": 2, "patch_size": 2, "kernel_size": 3},
            "data": {"kind": "digits", "as_images": True, "n_train": 32, "n_test": 0},
            "width": 32,
            "seed": 0,
            "r": 0.5,
            "base_width": 16,
            "train": {"kind": "sgd", "lr": 0.1, "steps": 1},
            "measure": {"steps": [0, 1]},
        }
    )
    model, _ = rn.build.setup(config)
    layers = measured_layers(model)
    record = identity(model, layers, config.parameterization())
    roles = [entry["role"] for entry in record["layers"]]
    assert roles == ["input", "input", "hidden", "input", "hidden", "output"]
    pred = config.parameterization().predict(len(roles), roles=roles)
    # a depthwise conv inside the net: fan-in fixed, input row; at r = 1/2 everything moves
    # by Θ(1) coordinates and MAX holds in every layer
    for name in layers[:-1]:
        assert record["predicted"][f"dh_rms/{name}"] == 0.0
    for ell in range(2, len(roles) + 1):
        assert pred[f"max_ratio/{ell}"] == 0.0
    with pytest.raises(ValueError, match="roles"):
        config.parameterization().predict(3, roles=["hidden", "hidden", "output"])


def test_spec_validation_and_old_hashes_unchanged() -> None:
    ModelSpec(kind="convmixer", depth=2, patch_size=4, kernel_size=5)
    with pytest.raises(ValueError, match="odd"):
        ModelSpec(kind="convmixer", kernel_size=4)
    with pytest.raises(ValueError, match="convmixer"):
        ModelSpec(kind="cnn", patch_size=4)
    # the fields added for it are not written while unset: other models' run ids stay
    cnn = ModelSpec(kind="cnn", depth=4).model_dump(mode="json")
    assert "patch_size" not in cnn and "kernel_size" not in cnn
    config = {
        "model": {"kind": "cnn", "depth": 4, "activation": "relu"},
        "data": {"kind": "digits", "as_images": True},
        "width": 16,
        "seed": 0,
        "preset": "ntp",
        "train": {"kind": "sgd", "lr": 3.2, "steps": 100},
        "measure": {"steps": [0, 100]},
    }
    assert "patch_size" not in RunConfig.parse(config).as_json()["model"]
    assert len(config_hash(RunConfig.parse(config))) == 16
    with pytest.raises(SpecError):
        RunConfig.parse({**config, "model": {"kind": "convmixer", "kernel_size": 2}})


def test_meter_weight_metrics_of_a_depthwise_conv_match_a_dense_computation() -> None:
    torch.manual_seed(0)
    model = ConvMixer(3, 8, 4, depth=1, patch_size=2, kernel_size=3)
    x = torch.randn(5, 3, 8, 8)
    meter = Meter(model, x, metrics=["max_ratio", "dW_op", "align"])
    conv = model.blocks[0].depthwise
    w0 = conv.weight.detach().clone()
    captured = {}
    hook = conv.register_forward_hook(lambda m, i, o: captured.setdefault("x0", i[0].detach()))
    model(x)
    hook.remove()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    got = meter.measure()
    hook = conv.register_forward_hook(lambda m, i, o: captured.__setitem__("x", i[0].detach()))
    model(x)
    hook.remove()
    dw = conv.weight.detach() - w0
    own = torch.nn.functional.conv2d(captured["x"], dw, padding=1, groups=8)  # ΔW x
    through = torch.nn.functional.conv2d(captured["x"] - captured["x0"], w0, padding=1, groups=8)
    per = lambda t: t.reshape(5, -1).norm(dim=-1).mean()  # noqa: E731  (per probe, mean)
    name = "blocks.0.depthwise"
    assert got[f"max_ratio/{name}"] == pytest.approx(float(per(own) / per(through)), rel=1e-4)
    # the operator norm of a depthwise conv (block-diagonal): its largest channel kernel
    assert got[f"dW_op/{name}"] == pytest.approx(float(dw.flatten(1).norm(dim=1).max()), rel=1e-3)


def test_coordinate_check_mup_updates_are_width_independent() -> None:
    """μP (r = 1/2): every pointwise (hidden) and depthwise layer's update grows as ‖Δh‖ ~
    n^{1/2} (RMS Θ(1)); NTP (r = 0): ‖Δh‖ ~ n^0 (RMS n^{−1/2}); ‖Δf‖ ~ n^0 in both. Widths
    32-256 and 3 seeds leave a finite-width offset common to both tables (+0.06 to +0.2 at 3
    steps, the same seeds and data): each slope is held to ±0.25, their difference to ±0.05."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.randn(192, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randn(192, 10, generator=torch.Generator().manual_seed(1)) / 10**0.5
    slopes = {}
    try:
        for r in (0.5, 0.0):
            _, _, fits = coord_check(
                lambda n: ConvMixer(3, n, 10, depth=2, patch_size=2, kernel_size=3),
                [32, 64, 128, 256],
                p=rn.richness(r, base_width=32),
                steps=3,
                lr=0.02,
                data=lambda: (x, y),
                seeds=(0, 1, 2),
                n_probe=64,
            )
            dh = fits[(fits.quantity == "dh") & fits.layer.str.startswith("blocks.")]
            assert len(dh) == 4 and (dh.expected == r).all()
            assert ((dh.slope - r).abs() <= 0.25).all(), dh[["layer", "slope", "expected"]]
            df = fits[fits.quantity == "df"].iloc[0]
            assert abs(df.slope) <= 0.1, df
            slopes[r] = dh.set_index("layer").slope
    finally:
        torch.set_num_threads(threads)
    difference = slopes[0.5] - slopes[0.0]
    assert ((difference - 0.5).abs() <= 0.05).all(), difference
