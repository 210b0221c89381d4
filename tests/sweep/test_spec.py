"""Sweep spec validation: every mistake names its field, value and what is allowed."""

import pytest

from richness.sweep import SpecError, expand, load_spec, parse_spec
from richness.sweep.spec import run_count

BASE = {
    "name": "t",
    "model": {"kind": "mlp", "depth": 3},
    "data": {"kind": "digits", "n_train": 32, "n_probe": 16, "n_test": 16},
    "widths": [32, 64],
    "richness": [0.0, 0.5],
    "gauges": ["stp", "mup"],
    "seeds": [0, 1],
    "optimizer": {"kind": "sgd", "lr": 0.05},
    "steps": 2,
}


def _with(**changes):
    spec = {**BASE}
    for key, value in changes.items():
        spec[key] = value
    return spec


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"richness": [0.7]}, "richness"),
        ({"widths": [0, 64]}, "widths"),
        ({"widths": []}, "widths"),
        ({"gauges": ["ntk"]}, "gauges"),
        ({"presets": ["spp"]}, "presets"),
        ({"optimizer": {"kind": "sgd", "lr": -1}}, "optimizer.lr"),
        ({"optimizer": {"kind": "lion", "lr": 0.1}}, "optimizer.kind"),
        ({"model": {"kind": "rnn"}}, "model.kind"),
        ({"model": {"kind": "mlp", "n_heads": 4}}, "model.n_heads"),
        ({"model": {"kind": "cnn", "zero_readout": True}}, "model.zero_readout"),
        ({"model": {"kind": "mlp", "depth": 1}}, "model.depth"),
        ({"model": {"kind": "factory"}}, "model.factory"),
        ({"data": {"kind": "mnist"}}, "data.kind"),
        ({"steps": 0}, "steps"),
        ({"gamma": 0}, "gamma"),
        ({"dtype": "float16"}, "dtype"),
        ({"precision": "fp8"}, "precision"),
        ({"precision": "bf16", "dtype": "float64"}, "precision 'bf16' needs dtype 'float32'"),
        ({"richness": [], "presets": []}, "at least one richness value or preset"),
        ({"measure": {"steps": [0, 9]}}, "measure.steps"),
        ({"widhts": [1]}, "widhts"),
    ],
)
def test_bad_specs_name_the_field(changes, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(_with(**changes))


def test_expand_is_the_product_and_hashes_are_distinct():
    from richness.sweep import config_hash

    spec = parse_spec(_with(presets=["sp"]))
    configs = expand(spec)
    assert len(configs) == run_count(spec) == 2 * (2 * 2 + 1) * 2
    assert len({config_hash(c) for c in configs}) == len(configs)
    first = configs[0]
    assert first.base_width == 32  # default: the smallest width
    assert first.precision == "full"
    assert expand(parse_spec(_with(precision="bf16")))[0].precision == "bf16"


def test_run_configs_round_trip_through_their_json_and_read_pre_typed_dicts():
    from richness.config import RunConfig
    from richness.sweep import config_hash

    config = expand(parse_spec(_with()))[0]
    stored = config.as_json()
    assert RunConfig.parse(stored) == config
    assert config_hash(RunConfig.parse(stored)) == config_hash(config)
    legacy = {**stored, "depth": 3, "layers": ["layers.0", "layers.1", "layers.2"]}
    del legacy["precision"]  # a store written before the typed config
    assert RunConfig.parse(legacy) == config
    with pytest.raises(SpecError, match="train.lr"):
        RunConfig.parse({**stored, "train": {**stored["train"], "lr": -1.0}})


def test_load_spec_reads_yaml_safely(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nwidths: [8]\nrichness: [0.25]\noptimizer: {lr: 0.1}\n")
    assert load_spec(path).widths == [8]
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="YAML"):
        load_spec(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(path)


def test_builtin_specs_are_valid():
    from importlib.resources import files

    specs = sorted(
        p
        for p in (files("richness.sweep") / "specs").iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("transfer_")  # test_transfer.py
    )
    assert {p.name for p in specs} >= {"demo.yaml", "adam.yaml"}
    for path in specs:
        spec = load_spec(str(path))
        assert spec.richness == [0.0, 0.25, 0.5]
