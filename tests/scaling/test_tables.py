"""The tables of THEORY.md §3, entry by entry."""

import math

import pytest

import richness as rn
from richness.scaling import stp_table

WIDTHS = [64, 256, 1024, 8192]
D = 16.0


@pytest.mark.parametrize("r", [0.0, 0.1, 0.25, 0.4, 0.5])
@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("gamma", [1.0, 2.5])
def test_stp_table_absolute(r, n, gamma):
    p = rn.richness(r, "stp", gamma=gamma)
    alpha = gamma * n**r
    expected = {
        "input": (1.0, 1 / math.sqrt(D), alpha**2 / D, D),
        "hidden": (1.0, 1 / math.sqrt(n), alpha**2 / n, n),
        "output": (1.0, 1 / (alpha * math.sqrt(n)), 1 / n, n),
    }
    for role, (g, std, lr, fan_in) in expected.items():
        s = p.layer(role, width=n, fan_in=fan_in)
        assert s.multiplier == pytest.approx(g, rel=1e-14)
        assert s.init_std == pytest.approx(std, rel=1e-14)
        assert s.lr == pytest.approx(lr, rel=1e-14)


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("n", WIDTHS)
def test_stp_table_base_relative(r, n):
    n0, gamma = 64, 1.5
    m = n / n0
    p = rn.richness(r, "stp", gamma=gamma, base_width=n0)
    s_in = p.layer("input", width=n, fan_in=D)
    s_hid = p.layer("hidden", width=n, fan_in=n)
    s_out = p.layer("output", width=n, fan_in=n)
    assert s_in.lr == pytest.approx(gamma**2 * m ** (2 * r), rel=1e-14)
    assert s_hid.lr == pytest.approx(gamma**2 * m ** (2 * r - 1), rel=1e-14)
    assert s_out.lr == pytest.approx(1 / m, rel=1e-14)
    assert s_out.init_std == pytest.approx(1 / (gamma * math.sqrt(n) * m**r), rel=1e-14)
    assert s_in.init_std == pytest.approx(1 / math.sqrt(D), rel=1e-14)
    assert s_hid.init_std == pytest.approx(1 / math.sqrt(n), rel=1e-14)


@pytest.mark.parametrize("name", ["ntp", "ntp-lr", "mup", "mup-lr", "mf", "sp"])
@pytest.mark.parametrize("gauge_optimizer", ["sgd", "adam"])
def test_every_preset_is_the_standard_model_at_base_width(name, gauge_optimizer):
    """At m = 1, γ = 1 the base-relative tables give g·σ = 1/√fan_in and one LR η0 (THEORY §3)."""
    p = rn.preset(name, optimizer=gauge_optimizer, base_width=128)
    for role, fan_in in [("input", D), ("hidden", 128), ("output", 128)]:
        s = p.layer(role, width=128, fan_in=fan_in)
        assert s.effective_std == pytest.approx(1 / math.sqrt(fan_in), rel=1e-14)
        assert s.effective_lr == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("n", WIDTHS)
def test_mup_lr_is_tp5_mup_for_sgd(n):
    """TP V μP for SGD: input LR ∝ n, hidden ∝ 1, output ∝ 1/n, output init var ∝ 1/n²."""
    p = rn.preset("mup-lr")
    s_in = p.layer("input", width=n, fan_in=D)
    s_hid = p.layer("hidden", width=n, fan_in=n)
    s_out = p.layer("output", width=n, fan_in=n)
    assert s_in.lr == pytest.approx(n / D)
    assert s_hid.lr == pytest.approx(1.0)
    assert s_out.lr == pytest.approx(1 / n)
    assert s_out.init_std**2 == pytest.approx(1 / n**2)
    e = p.exponents()
    assert (e["input"]["lr"], e["hidden"]["lr"], e["output"]["lr"]) == (1.0, 0.0, -1.0)
    assert e["output"]["init_std"] == -1.0


@pytest.mark.parametrize("n", WIDTHS)
def test_mup_gauge_at_half_is_yang_hu_mup(n):
    """Yang & Hu μP: multipliers (√(n/d), 1, 1/√n), σ = 1/√n, one LR (THEORY.md §3)."""
    p = rn.preset("mup")
    got = [p.layer(role, n, f) for role, f in [("input", D), ("hidden", n), ("output", n)]]
    assert [s.multiplier for s in got] == pytest.approx([math.sqrt(n / D), 1.0, 1 / math.sqrt(n)])
    assert [s.init_std for s in got] == pytest.approx([1 / math.sqrt(n)] * 3)
    assert [s.lr for s in got] == pytest.approx([1.0] * 3)


@pytest.mark.parametrize("n", WIDTHS)
def test_ntp_is_jacot(n):
    p = rn.preset("ntp")
    got = [p.layer(role, n, f) for role, f in [("input", D), ("hidden", n), ("output", n)]]
    assert [s.multiplier for s in got] == pytest.approx(
        [1 / math.sqrt(D), 1 / math.sqrt(n)] * 1 + [1 / math.sqrt(n)]
    )
    assert [s.init_std for s in got] == pytest.approx([1.0] * 3)
    assert [s.lr for s in got] == pytest.approx([1.0] * 3)
    # r = 0: μP gauge and rescaling gauge coincide
    q = rn.richness(0.0, "rescaling")
    for role, f in [("input", D), ("hidden", n), ("output", n)]:
        assert q.layer(role, n, f) == p.layer(role, n, f)


@pytest.mark.parametrize("n", WIDTHS)
def test_mean_field(n):
    """MFP: σ = 1, multipliers (1/√d, 1/√n, 1/n), one LR n·η0."""
    p = rn.preset("mf")
    got = [p.layer(role, n, f) for role, f in [("input", D), ("hidden", n), ("output", n)]]
    assert [s.multiplier for s in got] == pytest.approx([1 / math.sqrt(D), 1 / math.sqrt(n), 1 / n])
    assert [s.init_std for s in got] == pytest.approx([1.0] * 3)
    assert [s.lr for s in got] == pytest.approx([float(n)] * 3)


def test_mupify_notebook_numbers():
    """dkarkada/mupify example.ipynb, MLP 784→512→512→10, mup-lr (digest §3.6)."""
    p = rn.preset("mup-lr")
    fc1 = p.layer("input", 512, 784)
    fc2 = p.layer("hidden", 512, 512)
    fc3 = p.layer("output", 512, 512)
    assert [round(s.init_std, 4) for s in (fc1, fc2, fc3)] == [0.0357, 0.0442, 0.002]
    assert [round(s.lr, 4) for s in (fc1, fc2, fc3)] == [0.6531, 1.0, 0.002]


def test_adam_tp5_mup():
    """Adam μP (TP V Table 3, fan-in convention): LR (1/d, 1/n, 1/n) in the STP gauge."""
    p = rn.richness(0.5, "stp", optimizer="adam")
    assert p.layer("input", 1024, D).lr == pytest.approx(1 / D)
    assert p.layer("hidden", 1024, 1024).lr == pytest.approx(1 / 1024)
    assert p.layer("output", 1024, 1024).lr == pytest.approx(1 / 1024)


def test_stp_table_has_three_roles():
    assert set(stp_table(0.25, 1.0, "sgd", relative=False)) == {"input", "hidden", "output"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"r": 0.7}, "r=0.7"),
        ({"r": -0.1}, "r=-0.1"),
        ({"r": 0.2, "gamma": 0.0}, "gamma"),
        ({"r": 0.2, "gamma": -1.0}, "gamma"),
        ({"r": 0.2, "gauge": "ntk"}, "gauge"),
        ({"r": 0.2, "optimizer": "rmsprop"}, "optimizer"),
        ({"r": 0.2, "base_width": 0}, "base_width"),
    ],
)
def test_richness_refuses_bad_input(kwargs, field):
    with pytest.raises(ValueError, match=field):
        rn.richness(**kwargs)


def test_off_scale_is_allowed_on_request():
    p = rn.richness(0.75, allow_off_scale=True)
    assert p.predict()["dh"] == pytest.approx(0.75)


def test_preset_refuses_bad_input():
    with pytest.raises(ValueError, match="preset"):
        rn.preset("ntk")
    with pytest.raises(ValueError, match="gauge"):
        rn.preset("sp", gauge="stp")


def test_layer_refuses_bad_input():
    p = rn.preset("mup")
    with pytest.raises(ValueError, match="role"):
        p.layer("middle", width=10, fan_in=10)
    with pytest.raises(ValueError, match="width"):
        p.layer("hidden", width=0, fan_in=10)
    with pytest.raises(ValueError, match="fan_in"):
        p.layer("hidden", width=10, fan_in=-3)


def test_parameterization_refuses_missing_roles():
    p = rn.preset("mup")
    with pytest.raises(ValueError, match="missing"):
        rn.Parameterization(roles={"input": p.roles["input"]})
