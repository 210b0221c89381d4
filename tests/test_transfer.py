"""μTransfer: spec validation, the optimum estimator, the drift fit, the CLI end to end, resume.

Covers `richness.sweep.transfer` (spec, expansion, runs) and `richness.analysis.transfer`
(optimal log2 η0, drift, verdicts, figure), which one command joins.
"""

import json
import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from richness.analysis.agreement import asymptotic_widths
from richness.analysis.transfer import (
    drift_slope,
    final_losses,
    optimal_log2_lr,
    transfer_summary,
)
from richness.cli import app
from richness.sweep import SpecError
from richness.sweep.spec import OptimizerSpec, SweepSpec
from richness.sweep.transfer import (
    TransferOptimizerSpec,
    TransferSpec,
    expand_transfer,
    load_transfer_spec,
    parse_transfer_spec,
    run_transfer,
    sweep_specs,
)

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = REPO / ".." / "shared" / "data" / "wikitext-2"

TINY = {
    "name": "tiny",
    "model": {"kind": "mlp", "depth": 3},
    "data": {"kind": "digits", "n_train": 64, "n_test": 32, "n_probe": 8},
    "widths": [8, 16],
    "presets": ["mup", "sp"],
    "seeds": [0, 1],
    "optimizer": {"kind": "sgd"},
    "log2_lr": {"low": -2, "high": 0, "step": 1},
    "steps": 4,
    "batch_size": 16,
    "average_last": 2,
}


def _with(**changes):
    return {**TINY, **changes}


# ------------------------------------------------------------------------------ the spec


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"widths": [16]}, "widths"),
        ({"widths": [16, 16]}, "≥ 2 distinct widths"),
        ({"richness": [0.7]}, "richness values must lie in [0, 0.5]"),
        ({"presets": ["nope"]}, "presets: unknown presets"),
        ({"presets": []}, "at least one richness value or preset"),
        ({"gauges": ["ntk"]}, "gauges"),
        ({"log2_lr": {"low": 0, "high": 0.5}}, "log2_lr: high=0.5 must be ≥ low + 2·step"),
        ({"log2_lr": {"low": 0, "high": 3, "step": 0}}, "log2_lr.step"),
        ({"log2_lr": {"high": 3}}, "log2_lr.low"),
        ({"optimizer": {"kind": "sgd", "lr": 0.1}}, "optimizer.lr"),
        ({"optimizer": {"kind": "lion"}}, "optimizer.kind"),
        ({"average_last": 9}, "average_last=9 must lie in [1, steps=4]"),
        ({"average_last": 0}, "average_last"),
        ({"tolerance": 0}, "tolerance"),
        ({"model": {"kind": "mlp", "depth": 3, "wdith": 3}}, "model.wdith"),
        ({"lrs": [1]}, "lrs"),
        ({"loss": "hinge"}, "loss"),
        ({"data": {"kind": "synthetic"}, "loss": "cross_entropy"}, "loss 'cross_entropy' needs"),
        ({"optimizer": {"kind": "adamw", "schedule": {"kind": "step"}}}, "schedule.kind"),
        ({"optimizer": {"schedule": {"warmup_steps": -1}}}, "schedule.warmup_steps"),
        ({"precision": "bf16", "dtype": "float64"}, "precision 'bf16' needs dtype"),
        ({"measure": {"metrics": []}}, "measure"),
        ({"steps": "4"}, "steps"),  # strict types, as in a sweep spec
        ({"model": {"kind": "hf"}}, "model.architecture"),
    ],
)
def test_bad_transfer_specs_name_the_field(changes, needle):
    with pytest.raises(SpecError) as err:
        parse_transfer_spec(_with(**changes))
    assert needle in str(err.value)


def test_a_transfer_spec_must_be_a_mapping():
    with pytest.raises(SpecError, match="mapping"):
        parse_transfer_spec(["a", "list"])


def test_expansion_is_grid_by_widths_by_points_by_seeds():
    spec = parse_transfer_spec(TINY)
    assert spec.log2_lr.values() == [-2.0, -1.0, 0.0]
    sweeps = sweep_specs(spec)
    assert [s.optimizer.lr for s in sweeps] == [0.25, 0.5, 1.0]
    configs = expand_transfer(spec)
    assert len(configs) == 3 * 2 * 2 * 2
    assert {c.train.lr for c in configs} == {0.25, 0.5, 1.0}
    assert all(c.measure.steps == (3, 4) and c.measure.metrics == () for c in configs)
    assert all(c.base_width == 8 for c in configs)  # default: the smallest width


BUILTIN = sorted(
    p.name for p in (files("richness.sweep") / "specs").iterdir() if p.name.startswith("transfer_")
)


def test_the_builtin_transfer_specs_include_the_mlp_and_the_llama():
    assert {"transfer_mlp.yaml", "transfer_llama_wikitext.yaml"} <= set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_transfer_specs_are_valid(name, monkeypatch):
    path = files("richness.sweep") / "specs" / name
    if "wikitext" in name:
        pytest.importorskip("transformers")
        if not WIKITEXT.is_dir():
            pytest.skip(f"no WikiText-2 copy at {WIKITEXT} (the shared data directory is absent)")
        monkeypatch.chdir(REPO)  # the spec's data paths are relative to the repository root
    spec = load_transfer_spec(str(path))
    assert len(spec.widths) >= 3 and len(spec.seeds) >= 2
    assert len(spec.log2_lr.values()) >= 9


def test_every_sweep_field_but_lr_and_measure_is_a_transfer_field():
    """A field added to sweep specs reaches transfer specs too (loss and schedule once did not)."""
    assert set(SweepSpec.model_fields) - {"measure"} <= set(TransferSpec.model_fields)
    assert set(OptimizerSpec.model_fields) - {"lr"} == set(TransferOptimizerSpec.model_fields)


LLAMA = {"kind": "hf", "architecture": "llama", "depth": 2, "n_heads": 2}
SCHEDULE = {"kind": "cosine", "warmup_steps": 1, "final_ratio": 0.1}


def test_loss_schedule_precision_and_an_hf_model_pass_through_to_every_run():
    spec = parse_transfer_spec(
        _with(
            model=LLAMA,
            data={"kind": "chars", "n_train": 32, "n_test": 8, "n_probe": 4, "seq_len": 8},
            optimizer={"kind": "adamw", "weight_decay": 0.1, "schedule": SCHEDULE},
            loss="cross_entropy",
            precision="bf16",
            center=False,
        )
    )
    configs = expand_transfer(spec)
    assert len(configs) == 3 * 2 * 2 * 2
    for config in configs:
        assert config.loss == "cross_entropy" and config.precision == "bf16" and not config.center
        assert config.model.kind == "hf" and config.model.architecture == "llama"
        assert config.model.n_heads == 2 and config.model.depth == 2
        assert config.train.kind == "adamw" and config.train.weight_decay == 0.1
        assert config.train.schedule is not None
        assert config.train.schedule.model_dump() == SCHEDULE
    assert {c.train.lr for c in configs} == {0.25, 0.5, 1.0}  # the grid is over the peak η0


def test_a_transfer_spec_without_the_new_fields_keeps_its_runs_identities():
    """Stores of transfer sweeps written before loss, precision and schedule existed resume."""
    from richness.sweep import config_hash

    plain = expand_transfer(parse_transfer_spec(TINY))
    written = expand_transfer(
        parse_transfer_spec(
            _with(loss="mse", precision="full", optimizer={"kind": "sgd", "schedule": None})
        )
    )
    assert [config_hash(c) for c in plain] == [config_hash(c) for c in written]


# ------------------------------------------------------------------------------ the estimator


@pytest.mark.parametrize("true", [-3.3, -1.0, 0.26, 1.49])
def test_the_optimum_of_a_log_parabola_is_recovered_exactly(true):
    """log L = a (x − x*)² + c is a parabola in x: three points determine x* exactly."""
    grid = np.arange(-6.0, 3.01, 0.5)
    losses = np.exp(0.7 * (grid - true) ** 2 - 2.0)
    best, edge = optimal_log2_lr(grid, losses)
    assert abs(float(best) - true) < 1e-9
    assert not edge


def test_the_estimator_is_vectorized_and_takes_uneven_grids():
    grid = np.array([-4.0, -3.0, -2.5, -1.0, 0.0, 2.0])
    truths = np.array([[-2.8, -1.4], [-0.6, -2.2]])
    losses = np.exp(1.3 * (grid - truths[..., None]) ** 2)
    best, edge = optimal_log2_lr(grid, losses)
    assert best.shape == (2, 2) and not edge.any()
    np.testing.assert_allclose(best, truths, rtol=0, atol=1e-9)


def test_edges_divergence_and_dead_curves():
    grid = np.arange(-3.0, 1.01, 1.0)  # -3 .. 1
    rising = np.exp(grid + 4)  # minimum at the smallest LR: censored
    best, edge = optimal_log2_lr(grid, rising)
    assert float(best) == -3.0 and bool(edge)
    cliff = np.array([0.5, 0.3, 0.2, math.inf, math.inf])  # the best LR sits next to divergence
    best, edge = optimal_log2_lr(grid, cliff)
    assert float(best) == -1.0 and not bool(edge)
    best, edge = optimal_log2_lr(grid, np.full(5, math.inf))
    assert math.isnan(float(best)) and not bool(edge)
    with pytest.raises(ValueError, match="strictly increasing"):
        optimal_log2_lr(np.array([0.0, 1.0, 1.0]), np.ones(3))
    with pytest.raises(ValueError, match="losses' last dim"):
        optimal_log2_lr(grid, np.ones(4))


def test_drift_slope_recovers_a_known_slope():
    log2_widths = np.log2([64, 128, 256, 512, 1024])
    optima = np.stack([-1.0 + 0.0 * log2_widths, 2.0 - 1.0 * log2_widths])
    np.testing.assert_allclose(drift_slope(log2_widths, optima), [0.0, -1.0], atol=1e-12)
    with_gap = np.array([1.0, np.nan, 3.0, 4.0, np.nan])
    assert float(drift_slope(log2_widths, with_gap)) == pytest.approx(1.0, abs=1e-12)


def test_the_drift_is_fitted_on_the_asymptotic_widths():
    assert asymptotic_widths([64, 128, 256, 512, 1024]) == [128, 256, 512, 1024]
    assert asymptotic_widths([256, 32, 64, 128]) == [64, 128, 256]
    assert asymptotic_widths([32, 64, 128]) == [32, 64, 128]


def _synthetic_losses(jitter: float = 0.05) -> pd.DataFrame:
    """μP with its optimum at −1 at every width, SP with −1 − log2(n/64); seed jitter; a cliff."""
    rng = np.random.default_rng(0)
    grid = np.arange(-8.0, 2.01, 0.5)
    rows = []
    for label, r, preset, drift in (("mup", 0.5, "mup", 0.0), ("sp", math.nan, "sp", -1.0)):
        for width in (64, 128, 256, 512, 1024):
            center = -1.0 + drift * math.log2(width / 64)
            for seed in range(4):
                shift = rng.normal(0, jitter)
                for x in grid:
                    loss = math.exp(0.5 * (x - center - shift) ** 2 - 3)
                    if x > center + 2.2:
                        loss = math.inf  # diverged
                    rows.append((label, r, preset, width, seed, x, loss, 1.5 * loss))
    columns = ["label", "r", "preset", "width", "seed", "log2_lr", "loss", "test_loss"]
    return pd.DataFrame(rows, columns=columns)


def test_summary_finds_no_drift_for_mup_and_minus_one_for_sp():
    summary = transfer_summary(_synthetic_losses(), tolerance=0.25, n_boot=200)
    drifts = {(d["label"], d["quantity"]): d for d in summary["drifts"]}
    mup, sp = drifts[("mup", "loss")], drifts[("sp", "loss")]
    assert abs(mup["drift"]) < 0.05  # the seeds' jitter (sd 0.05 in x*) leaves a little
    assert -0.1 < mup["ci_low"] <= mup["drift"] <= mup["ci_high"] < 0.1
    assert sp["drift"] == pytest.approx(-1.0, abs=0.05)
    assert sp["ci_high"] < 0
    np.testing.assert_allclose(sp["local"], -1.0, atol=0.1)  # consecutive widths
    assert sp["fit_widths"] == [128, 256, 512, 1024]
    assert sp["drift_all"] == pytest.approx(-1.0, abs=0.05) and sp["ci_high_all"] < 0
    assert (mup["verdict"], sp["verdict"]) == ("stays", "drifts")
    assert mup["meets"] and sp["meets"] and summary["verdict"] == "pass"
    optima = {(o["label"], o["width"]): o for o in summary["optima"] if o["quantity"] == "loss"}
    for width in (64, 128, 256, 512, 1024):
        o = optima[("sp", width)]
        assert o["log2_lr"] == pytest.approx(-1 - math.log2(width / 64), abs=0.1)
        assert o["ci_low"] <= o["log2_lr"] <= o["ci_high"] and not o["at_edge"]
    json.dumps(summary, allow_nan=False)  # JSON as written


def test_an_optimum_at_the_grid_edge_makes_the_verdict_inconclusive():
    losses = _synthetic_losses()
    losses = losses[losses["log2_lr"] >= -3.5]  # SP's optimum at 512 and 1024 falls off the grid
    summary = transfer_summary(losses, n_boot=50)
    sp = next(d for d in summary["drifts"] if (d["label"], d["quantity"]) == ("sp", "loss"))
    assert sp["edge_widths"] == [512, 1024]
    assert sp["verdict"] == "inconclusive" and summary["verdict"] == "fail"


def test_one_seed_gives_no_interval_and_claims_no_drift():
    losses = _synthetic_losses()
    summary = transfer_summary(losses[losses["seed"] == 0], n_boot=100)
    sp = next(d for d in summary["drifts"] if (d["label"], d["quantity"]) == ("sp", "loss"))
    assert sp["drift"] == pytest.approx(-1.0, abs=0.15)
    assert sp["ci_low"] is None and sp["verdict"] == "inconclusive"


def test_summary_validates_its_arguments():
    losses = _synthetic_losses()
    with pytest.raises(ValueError, match="tolerance"):
        transfer_summary(losses, tolerance=0)
    with pytest.raises(ValueError, match="n_boot"):
        transfer_summary(losses, n_boot=-1)
    with pytest.raises(ValueError, match="≥ 2 widths"):
        transfer_summary(losses[losses["width"] == 64], n_boot=0)


def test_final_losses_average_the_last_steps_and_mark_divergence():
    configs = [
        {"width": 8, "preset": "mup", "seed": 0, "train": {"lr": 0.5}},
        {"width": 8, "preset": "mup", "seed": 0, "train": {"lr": 2.0}},
        {"width": 8, "preset": "mup", "seed": 1, "train": {"lr": 0.5}},
    ]
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "status": ["done", "diverged", "failed"],
            "config": [json.dumps(c) for c in configs],
        }
    )
    metrics = pd.DataFrame(
        [("a", 3, "", "loss", 0.2), ("a", 4, "", "loss", 0.4), ("a", 4, "", "test_loss", 0.5)],
        columns=["run_id", "step", "layer", "quantity", "value"],
    )
    table = final_losses(runs, metrics)
    assert len(table) == 2  # the failed run is left out
    done = table[table["log2_lr"] == -1.0].iloc[0]
    assert done["loss"] == pytest.approx(0.3) and done["test_loss"] == pytest.approx(0.5)
    assert done["label"] == "mup" and done["width"] == 8
    blown = table[table["log2_lr"] == 1.0].iloc[0]
    assert math.isinf(blown["loss"]) and math.isinf(blown["test_loss"])


# ------------------------------------------------------------------------------ end to end


def test_cli_transfer_writes_json_and_png_and_resumes(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(TINY))  # JSON is YAML
    db, out = tmp_path / "t.sqlite", tmp_path / "out"
    args = ["transfer", str(spec), "--db", str(db), "--out", str(out), "--workers", "1"]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--quiet", "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    assert "24 runs: 22 done, 2 diverged, 0 failed, 0 skipped" in result.output
    summary = json.loads((out / "transfer.json").read_text())
    assert (out / "transfer_tiny.png").stat().st_size > 10_000
    assert summary["name"] == "tiny" and summary["grid"] == [-2.0, -1.0, 0.0]
    assert {d["label"] for d in summary["drifts"]} == {"mup", "sp"}
    assert len(summary["optima"]) == 2 * 2 * 2  # labels × quantities × widths
    assert summary["spec"]["log2_lr"] == {"low": -2.0, "high": 0.0, "step": 1.0}
    again = runner.invoke(app, [*args, "--quiet", "--n-boot", "50"])
    assert again.exit_code == 0, again.output
    assert "24 runs: 0 done, 0 diverged, 0 failed, 24 skipped" in again.output


def test_a_llama_transfer_with_cross_entropy_and_a_schedule_runs_on_wikitext(tmp_path):
    """The real-text spec's shape at toy size: HF Llama, AdamW, warmup + cosine, WikiText-2."""
    pytest.importorskip("transformers")
    if not WIKITEXT.is_dir():
        pytest.skip(f"no WikiText-2 copy at {WIKITEXT} (the shared data directory is absent)")
    spec = parse_transfer_spec(
        _with(
            model=LLAMA,
            data={
                "kind": "text",
                "path": str(WIKITEXT / "wiki.valid.txt"),
                "test_path": str(WIKITEXT / "wiki.test.txt"),
                "tokenizer": "char",
                "seq_len": 16,
                "n_train": 64,
                "n_test": 16,
                "n_probe": 4,
            },
            widths=[16, 32],
            seeds=[0],
            optimizer={"kind": "adamw", "weight_decay": 0.1, "schedule": SCHEDULE},
            log2_lr={"low": -10, "high": -6, "step": 2},
            loss="cross_entropy",
            center=False,
        )
    )
    db = tmp_path / "t.sqlite"
    counts = run_transfer(spec, db, workers=1, progress=False)
    assert (counts["total"], counts["done"], counts["failed"]) == (12, 12, 0)
    from richness.analysis.transfer import final_losses
    from richness.sweep import Store, config_hash

    store = Store(db)
    ids = [config_hash(c) for c in expand_transfer(spec)]
    table = final_losses(store.runs(), store.metrics(quantity=["loss", "test_loss"], run_ids=ids))
    assert len(table) == 12 and table["loss"].notna().all() and table["test_loss"].notna().all()
    assert table["loss"].between(0, 10).all()  # cross-entropy in nats: about ln V = 4.8 at most
    summary = transfer_summary(table, n_boot=0)
    assert {d["label"] for d in summary["drifts"]} == {"mup", "sp"}
    assert all(d["ci_low"] is None for d in summary["drifts"])  # one seed: no interval
    assert run_transfer(spec, db, workers=1, progress=False)["skipped"] == 12  # resumes


def test_cli_transfer_bad_inputs_exit_nonzero_with_a_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(_with(log2_lr={"low": 0, "high": 0.5})))
    runner = CliRunner()
    for args, needle in [
        (["transfer", str(tmp_path / "missing.yaml")], "does not exist"),
        (["transfer", str(bad)], "log2_lr"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and needle in result.output, result.output
