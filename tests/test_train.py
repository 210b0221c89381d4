"""The one loop: vectorized ensembles equal each member trained alone (float64, 1e-10)."""

import math
from pathlib import Path

import pytest

from richness.config import RunConfig
from richness.sweep.runner import jobs_of
from richness.train import run, run_many, unbatchable

TOL = 1e-10


def _config(r=0.25, seed=0, *, kind="sgd", model="mlp", width=48, lr=0.1, **train):
    return {
        "model": {"kind": model, "depth": 3, "bias": False} if model == "mlp" else {"kind": model},
        "data": {"kind": "digits", "n_train": 128, "n_test": 32, "n_probe": 16, "seed": 0},
        "width": width,
        "r": r,
        "preset": None,
        "gauge": "stp",
        "gamma": 1.0,
        "base_width": 16,
        "seed": seed,
        "center": True,
        "train": {"kind": kind, "lr": lr, "steps": 6, "batch_size": 32, **train},
        "measure": {"steps": [0, 1, 3, 6], "metrics": ["default"]},
        "dtype": "float64",
    }


def _by_key(outcome):
    return {(step, layer, q): v for step, layer, q, v in outcome.rows}


def _assert_same(together, alone, path="ensemble"):
    assert len(together) == len(alone)
    for a, b in zip(together, alone, strict=True):
        assert a.path == path, a.path_reason
        assert b.path == "alone"
        assert (a.status, a.diverged_step) == (b.status, b.diverged_step), b.error
        assert a.identity == b.identity
        rows_a, rows_b = _by_key(a), _by_key(b)
        assert rows_a.keys() == rows_b.keys()
        for key, value in rows_b.items():
            if math.isnan(value):  # e.g. lin_gap = 0/0 at step 0
                assert math.isnan(rows_a[key]), key
                continue
            assert math.isclose(rows_a[key], value, rel_tol=TOL, abs_tol=1e-300), key


MEMBERS = [
    {"r": 0.0, "seed": 0},
    {"r": 0.25, "seed": 1},
    {"r": 0.5, "seed": 2, "gauge": "mup"},
    {"r": None, "preset": "ntp", "gauge": None, "seed": 3},
    {"r": 0.5, "seed": 0, "gauge": "rescaling", "gamma": 2.0},
]


@pytest.mark.parametrize(
    ("kind", "lr", "train"),
    [
        ("sgd", 0.2, {}),
        ("sgd", 0.1, {"momentum": 0.9, "weight_decay": 1e-2}),
        ("sgd", 0.1, {"momentum": 0.9, "batch_size": None}),
        ("adam", 3e-3, {"weight_decay": 1e-3}),
        ("adamw", 3e-3, {"weight_decay": 0.1}),
    ],
)
def test_ensemble_equals_members_alone(kind, lr, train):
    configs = []
    for i, member in enumerate(MEMBERS):
        config = _config(kind=kind, lr=lr * (1 + 0.5 * i), **train)
        configs.append(RunConfig.parse({**config, **member}))
    assert len({c.ensemble_key() for c in configs}) == 1
    _assert_same(run_many(configs), [run(c) for c in configs])


@pytest.mark.parametrize("metrics", [["default"], ["default", "weights", "lin_gap"]])
def test_cnn_ensemble_equals_members_alone(metrics):
    configs = [_config(r, seed, model="cnn", width=8) for r, seed in [(0.0, 0), (0.5, 1)]]
    for config in configs:
        config["data"] = {**config["data"], "as_images": True}
        config["measure"] = {"steps": [0, 1, 6], "metrics": metrics}
    _assert_same(run_many(configs), [run(c) for c in configs])


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ({"kind": "resmlp", "depth": 2}, {}),
        (
            {"kind": "transformer", "depth": 1, "n_heads": 2},
            {"kind": "chars", "n_train": 16, "n_test": 8, "n_probe": 8, "seq_len": 8},
        ),
    ],
)
def test_residual_and_transformer_ensembles_equal_members_alone(model, data):
    configs = []
    for r, seed in [(0.0, 0), (0.5, 1)]:
        config = _config(r, seed, width=16, lr=0.01)
        config["model"] = model
        config["data"] = {**config["data"], **data}
        config["measure"] = {"steps": [0, 6], "metrics": ["default", "weights"]}
        configs.append(config)
    _assert_same(run_many(configs), [run(c) for c in configs])


def test_a_diverging_member_stops_alone_and_the_others_go_on():
    configs = [_config(0.5, 0, lr=0.1), _config(0.5, 1, lr=1e4), _config(0.0, 2, lr=0.1)]
    together = run_many(configs)
    assert [o.status for o in together] == ["done", "diverged", "done"]
    _assert_same(together, [run(c) for c in configs])


def test_weight_metrics_and_linearization_gap_are_batched():
    configs = [_config(r, seed, momentum=0.9) for r, seed in [(0.0, 0), (0.25, 1), (0.5, 2)]]
    for config in configs:
        config["measure"] = {"steps": [0, 1, 6], "metrics": ["default", "weights", "lin_gap"]}
    together = run_many(configs)
    assert {q for _, _, q, _ in together[0].rows} >= {"dW_op", "max_ratio", "align_w0", "lin_gap"}
    _assert_same(together, [run(c) for c in configs])


def test_runs_that_need_one_module_train_alone_and_say_why():
    config = _config()
    config["measure"] = {"steps": [6], "metrics": ["default", "grad_h"]}
    assert "one module" in unbatchable(RunConfig.parse(config))
    outcomes = run_many([config, {**config, "seed": 1}])
    assert all(o.path == "alone" and "grad_h" in o.path_reason for o in outcomes)
    assert "grad_h" in {q for _, _, q, _ in outcomes[0].rows}


def test_a_failing_ensemble_trains_alone_with_the_error_as_its_reason(monkeypatch):
    import richness.train as train

    def broken(*args, **kwargs):
        raise RuntimeError("no batching rule for my_op")

    monkeypatch.setattr(train._Stacked, "step", broken)
    outcomes = run_many([_config(seed=0), _config(seed=1)])
    assert [o.status for o in outcomes] == ["done", "done"]
    assert all("no batching rule for my_op" in o.path_reason for o in outcomes)


def test_identity_records_layers_roles_and_predictions():
    outcome = run(_config(r=0.25))
    layers = outcome.identity["layers"]
    assert [(e["name"], e["role"], e["ell"]) for e in layers] == [
        ("layers.0", "input", 1),
        ("layers.1", "hidden", 2),
        ("layers.2", "output", 3),
    ]
    assert outcome.identity["predicted"]["dh/layers.1"] == pytest.approx(0.25)
    assert outcome.identity["predicted"]["f0"] == pytest.approx(-0.25)


def test_jobs_cover_every_run_once_and_balance_the_cost():
    configs = [
        RunConfig.parse(_config(r, s, width=w))
        for w in (32, 64, 512)
        for r in (0, 0.5)
        for s in range(4)
    ]
    jobs = jobs_of(configs, workers=2)
    flat = [id(c) for job in jobs for c in job]
    assert sorted(flat) == sorted(map(id, configs))
    for job in jobs:
        assert len({c.ensemble_key() for c in job}) == 1
    costs = [len(job) * job[0].width ** 2 for job in jobs]
    assert costs == sorted(costs, reverse=True)
    assert max(costs) <= sum(costs) / 4  # no job holds more than 1/(2·workers) of the work
    assert all(len(job) == 1 for job in jobs_of(configs, workers=2, ensemble=False))


def test_bf16_trains_close_to_float32_and_measures_in_float32():
    base = {**_config(0.5, 0, width=64), "dtype": "float32"}
    full = run(base)
    bf16 = run({**base, "precision": "bf16"})
    together = run_many([{**base, "precision": "bf16"}, {**base, "seed": 1, "precision": "bf16"}])
    assert together[0].path == "ensemble"
    a, b, c = _by_key(full), _by_key(bf16), _by_key(together[0])
    assert a.keys() == b.keys() == c.keys()
    assert a[(0, "layers.0", "h_rms")] == b[(0, "layers.0", "h_rms")]  # init: no bf16 anywhere
    for key in [(6, "layers.1", "dh"), (6, "", "df"), (6, "", "loss")]:
        assert b[key] == pytest.approx(a[key], rel=0.05)
        assert c[key] == pytest.approx(b[key], rel=1e-4)
    assert "bf16 on the CPU" in unbatchable(
        RunConfig.parse({**base, "precision": "bf16", "width": 512})
    )
    failed = run({**base, "precision": "fp8"})
    assert failed.status == "failed"
    assert "precision" in failed.error


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ({"kind": "mlp", "depth": 3}, {}),
        (
            {"kind": "transformer", "depth": 1, "n_heads": 2},
            {"kind": "chars", "n_train": 16, "n_test": 8, "n_probe": 8, "seq_len": 8},
        ),
    ],
)
@pytest.mark.parametrize("center", [True, False])
def test_cross_entropy_ensembles_equal_members_alone(model, data, center):
    configs = []
    for r, seed in [(0.0, 0), (0.5, 1)]:
        config = _config(r, seed, width=16, kind="adamw", lr=0.01)
        config.update(model=model, loss="cross_entropy", center=center)
        config["data"] = {**config["data"], **data}
        configs.append(config)
    together, alone = run_many(configs), [run(c) for c in configs]
    _assert_same(together, alone)
    losses = [v for _, _, q, v in alone[0].rows if q == "loss"]
    assert losses[-1] < losses[0]  # cross-entropy, and it trains


def test_cross_entropy_is_the_mean_negative_log_likelihood_per_position():
    from richness.train import cross_entropy

    torch = pytest.importorskip("torch")
    logits = torch.randn(2, 5, 3 * 4, dtype=torch.float64)  # (M, N, T·C), T = 3, C = 4
    classes = torch.randint(0, 4, (5, 3))
    y = torch.nn.functional.one_hot(classes, 4).flatten(1).double()
    expected = torch.stack(
        [torch.nn.functional.cross_entropy(m.reshape(15, 4), classes.reshape(15)) for m in logits]
    )
    torch.testing.assert_close(cross_entropy(logits, 0.0, y, 4), expected, rtol=1e-12, atol=0)


def test_cross_entropy_refuses_targets_that_are_not_one_hot_naming_the_shape():
    config = _config()
    config["loss"] = "cross_entropy"
    config["data"] = {**config["data"], "center_targets": True}
    outcome = run(config)
    assert outcome.status == "failed"
    assert "needs one-hot targets" in outcome.error and "(128, 10)" in outcome.error
    from richness.sweep import SpecError

    regression = {**_config(), "loss": "cross_entropy"}
    regression["data"] = {"kind": "synthetic", "n_train": 16, "n_test": 8, "n_probe": 8}
    with pytest.raises(SpecError, match="needs class or token targets"):
        RunConfig.parse(regression)


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_lr_schedules_go_through_torch_and_ensembles_follow_them(kind):
    from richness.train import build_optimizer, build_scheduler, setup

    schedule = {"kind": kind, "warmup_steps": 2, "final_ratio": 0.1}
    configs = [
        _config(r, seed, kind="adamw", lr=0.01, schedule=schedule)
        for r, seed in [(0.0, 0), (0.5, 1)]
    ]
    _assert_same(run_many(configs), [run(c) for c in configs])
    config = RunConfig.parse(configs[1])
    model, _ = setup(config)
    opt = build_optimizer(config, model)
    first = [g["lr"] for g in opt.param_groups]
    scheduler = build_scheduler(config, opt)
    seen = []
    for _ in range(config.train.steps):
        seen.append([g["lr"] / lr for g, lr in zip(opt.param_groups, first, strict=True)])
        opt.step()
        scheduler.step()
    factors = [row[0] for row in seen]
    assert all(row == pytest.approx([row[0]] * len(row)) for row in seen)  # per-layer ratios stay
    assert factors[:2] == pytest.approx([0.5, 1.0])  # warmup (k + 1) / 2
    end = {"linear": 0.1, "cosine": 0.1, "constant": 1.0}[kind]
    assert factors[-1] == pytest.approx(end)


WIKITEXT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wikitext-2"


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_hf_causal_lm_on_text_trains_the_same_alone_and_vectorized(architecture):
    pytest.importorskip("transformers")
    if not WIKITEXT.is_dir():
        pytest.skip(f"no WikiText-2 copy at {WIKITEXT} (the shared data directory is absent)")
    config = _config(None, 0, width=32, kind="adamw", lr=0.01, steps=3)
    config.update(
        model={"kind": "hf", "architecture": architecture, "depth": 1, "n_heads": 2},
        preset="mup",
        gauge=None,
        base_width=16,
        loss="cross_entropy",
        data={
            "kind": "text",
            "path": str(WIKITEXT / "wiki.valid.txt"),
            "test_path": str(WIKITEXT / "wiki.test.txt"),
            "seq_len": 16,
            "n_train": 32,
            "n_test": 16,
            "n_probe": 8,
        },
        measure={"steps": [0, 3], "metrics": ["default", "weights"]},
    )
    configs = [config, {**config, "seed": 1}]
    _assert_same(run_many(configs), [run(c) for c in configs])


def test_a_table_a_config_cannot_name_trains_the_configs_recipe():
    import richness as rn

    off = rn.richness(0.75, base_width=16, allow_off_scale=True)
    outcome = run(_config(0.25), table=off)
    assert outcome.status == "done", outcome.error
    assert outcome.identity["predicted"]["dh/layers.1"] == pytest.approx(0.75)
    assert _by_key(outcome) != _by_key(run(_config(0.25)))
