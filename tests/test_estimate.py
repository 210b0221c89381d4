"""The richness meter on the library's own runs at known r (THEORY.md §3, C2; §4 C4, C9).

One small sweep (ReLU MLP 64 → n → n → 10 on digits, STP and μP gauges relative to base
width 64, widths 128–1024, 4 seeds, 5 full-batch SGD steps at η0 = 0.05, centered, float32:
the README's demo recipe) is stored once; every estimator reads it.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import richness as rn
from richness.analysis.laziness import laziness_index
from richness.analysis.richness_meter import estimate_store
from richness.cli import app
from richness.estimate import estimate_richness
from richness.sweep.store import Store, config_hash
from richness.train import run

WIDTHS = (128, 256, 512, 1024)
SEEDS = (0, 1, 2, 3)
SCALE = [(0.0, None), (0.25, None), (0.5, None)]  # STP gauge
PRESETS = [(None, "ntp"), (None, "mup"), (None, "sp")]  # μP gauge; SP off the scale
TOLERANCE = 0.05  # |r̂ − r| at these widths (finite-width terms, docs/meter.md)


def _config(width, seed, r, preset):
    return {
        "model": {"kind": "mlp", "depth": 3, "activation": "relu", "bias": False},
        "data": {"kind": "digits", "n_train": 256, "n_test": 0, "n_probe": 128, "seed": 0},
        "width": width,
        "seed": seed,
        "r": r,
        "preset": preset,
        "gauge": "stp" if preset is None else None,
        "gamma": 1.0,
        "base_width": 64,
        "optimizer": "sgd",
        "center": True,
        "train": {"kind": "sgd", "lr": 0.05, "steps": 5},
        "measure": {"steps": [5], "metrics": ["default"]},
        "threads": 1,
    }


def _fill(store, families):
    for r, preset in families:
        for width in WIDTHS:
            for seed in SEEDS:
                config = _config(width, seed, r, preset)
                run_id = config_hash(config)
                store.mark_running(run_id, config)
                outcome = run(config)
                store.finish(
                    run_id,
                    outcome.status,
                    outcome.rows,
                    outcome.seconds,
                    identity=outcome.identity,
                )


@pytest.fixture(scope="module")
def scale_store(tmp_path_factory):
    """The richness scale r = 0, 1/4, 1/2 (48 runs, about 10 s on one core)."""
    store = Store(tmp_path_factory.mktemp("meter") / "runs.sqlite")
    _fill(store, SCALE)
    return store


@pytest.fixture(scope="module")
def store(scale_store):
    """The same store with NTP, μP and SP added (48 more runs)."""
    _fill(scale_store, PRESETS)
    return scale_store


@pytest.mark.parametrize(("r", "verdict"), [(0.0, "lazy"), (0.25, "intermediate"), (0.5, "rich")])
def test_multiwidth_recovers_r_on_own_runs(scale_store, r, verdict):
    est = {e.label: e for e in estimate_store(scale_store, n_boot=500)}[f"r={r:g} · stp"]
    assert est.r_hat == pytest.approx(r, abs=TOLERANCE)
    assert est.ci_low <= r <= est.ci_high
    assert est.verdict == verdict
    for layer in est.layers.itertuples():
        assert layer.r_hat == pytest.approx(r, abs=TOLERANCE)


@pytest.fixture(scope="module")
def estimates(store):
    return {e.label: e for e in estimate_store(store, n_boot=500)}


@pytest.mark.parametrize(
    ("label", "verdict"), [("ntp", "lazy"), ("mup", "rich"), ("sp", "ill-scaled")]
)
def test_verdicts_of_presets(estimates, label, verdict):
    est = estimates[label if label == "sp" else f"{label} · mup"]
    assert est.verdict == verdict, str(est)
    df = est.checks.set_index("signal").loc["df", "value"]
    if label == "sp":
        assert df > 0.5  # SP at a fixed LR: ‖Δf‖ grows with width (C9)
    else:
        assert abs(df) < 0.05


def test_one_width_index_orders_the_scale(store):
    """At n = 1024 (n/n0 = 16), NTP-gauge references (seeds 0, 1) place STP runs (seeds 2, 3)."""
    metrics = store.metrics()
    runs = store.runs()

    def at(r, preset, seeds):
        out = []
        for seed in seeds:
            run_id = config_hash(_config(1024, seed, r, preset))
            assert runs.set_index("run_id").loc[run_id, "status"] == "done"
            rows = metrics[(metrics["run_id"] == run_id) & (metrics["step"] == 5)]
            out.append(
                {
                    (f"{q}/{lay}" if lay else q): v
                    for lay, q, v in rows[["layer", "quantity", "value"]].itertuples(index=False)
                }
            )
        return out

    lazy, rich = at(None, "ntp", (0, 1)), at(None, "mup", (0, 1))
    found = {r: laziness_index(at(r, None, (2, 3)), lazy, rich) for r in (0.0, 0.25, 0.5)}
    assert found[0.0].r_hat < found[0.25].r_hat < found[0.5].r_hat
    for r, est in found.items():
        assert est.r_hat == pytest.approx(r, abs=0.02)
    assert [found[r].verdict for r in (0.0, 0.25, 0.5)] == ["lazy", "intermediate", "rich"]


def test_cli_meter_prints_one_row_per_family(store):
    result = CliRunner().invoke(app, ["meter", str(store.path)])
    assert result.exit_code == 0, result.output
    for text in ("r=0.25 · stp", "intermediate", "ill-scaled", "lazy", "rich"):
        assert text in result.output
    bad = CliRunner().invoke(app, ["meter", "no-such-store"])
    assert bad.exit_code != 0 and "no-such-store" in bad.output


def _mlp(width):
    return torch.nn.Sequential(
        torch.nn.Linear(8, width, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 1, bias=False),
    )


def test_estimate_richness_on_a_user_loop():
    """A user loop (centered loss, own optimizer): μP reads rich, SP at a fixed LR ill-scaled."""
    torch.manual_seed(0)
    x, y, probe = torch.randn(64, 8), torch.randn(64, 1), torch.randn(32, 8)
    p = rn.preset("mup", base_width=32)

    def loop(model, opt):
        with torch.no_grad():
            f0 = model(x)
        for _ in range(3):
            opt.zero_grad()
            (0.5 * (model(x) - f0 - y).pow(2).sum(1).mean()).backward()
            opt.step()

    def make_mup(width):
        return rn.parameterize(_mlp(width), p, base=_mlp(32))

    mup = estimate_richness(
        make_mup, lambda m: loop(m, rn.optimizer(m, lr=0.1)), probe, widths=[128, 256, 512]
    )
    assert mup.r_hat == pytest.approx(0.5, abs=TOLERANCE) and mup.verdict == "rich", str(mup)
    sp = estimate_richness(
        _mlp,
        lambda m: loop(m, torch.optim.SGD(m.parameters(), lr=0.1)),
        probe,
        widths=[128, 256, 512],
    )
    assert sp.verdict == "ill-scaled", str(sp)
    with pytest.raises(ValueError, match="widths"):
        estimate_richness(_mlp, lambda m: None, probe, widths=[128])
