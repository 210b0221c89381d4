"""A spec is validated whole before any run: strict types, finite rates, sizes that fit.

The issue's 600 mutations of a valid spec: the loader either returns a spec that expands, or
raises `SpecError` naming the field; it never raises anything else and never hangs.
"""

import copy
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from richness.sweep import SpecError, config_hash, expand, parse_spec
from richness.sweep.spec import MAX_DEPTH

VALID = {
    "name": "t",
    "model": {"kind": "mlp", "depth": 3, "activation": "relu", "bias": False},
    "widths": [8, 16],
    "richness": [0.0, 0.5],
    "presets": ["mup"],
    "gauges": ["stp"],
    "gamma": 1.0,
    "base_width": 8,
    "seeds": [0, 1],
    "optimizer": {"kind": "sgd", "lr": 0.05, "momentum": 0.0, "weight_decay": 0.0},
    "steps": 3,
    "batch_size": 16,
    "center": True,
    "measure": {"steps": [0, 3], "metrics": ["default", "weights"]},
    "dtype": "float32",
    "precision": "full",
    "device": "cpu",
    "loss_bound": 1e6,
}


def _with(path: str, value):
    spec = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node[key]
    node[leaf] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("optimizer.lr", math.inf, r"optimizer\.lr.*finite number > 0"),
        ("optimizer.lr", -math.inf, r"optimizer\.lr.*finite number > 0"),
        ("optimizer.lr", math.nan, r"optimizer\.lr.*finite number > 0"),
        ("optimizer.lr", 0.0, r"optimizer\.lr.*finite number > 0"),
        ("optimizer.lr", True, r"optimizer\.lr"),
        ("optimizer.lr", "0.1", r"optimizer\.lr"),
        ("optimizer.momentum", True, r"optimizer\.momentum"),
        ("optimizer.weight_decay", math.inf, r"optimizer\.weight_decay.*finite"),
        ("steps", True, r"steps"),
        ("batch_size", True, r"batch_size"),
        ("model.depth", True, r"model\.depth"),
        ("model.depth", 10**12, rf"model\.depth.*{MAX_DEPTH}.*1000000000000"),
        ("model.bias", 1, r"model\.bias"),
        ("widths", [True, 16], r"widths\.0"),
        ("widths", [10**7], r"widths: the largest, 10000000.*memory"),
        ("seeds", [True], r"seeds\.0"),
        ("seeds", [2**64], r"seeds.*2\*\*63"),
        ("seeds", [-1], r"seeds"),
        ("richness", [True], r"richness\.0"),
        ("gamma", math.inf, r"gamma.*finite"),
        ("gamma", 1e200, r"gamma.*1000000"),
        ("gamma", 1e-300, r"gamma.*0.000001"),
        ("gamma", False, r"gamma"),
        ("loss_bound", math.nan, r"loss_bound.*finite"),
        ("base_width", True, r"base_width"),
        ("center", 1, r"center"),
        ("measure.steps", [True], r"measure\.steps"),
        ("measure.metrics", ["dh", "dW_fr"], r"measure\.metrics.*'dW_fr'"),
        ("measure.metrics", "default", r"measure\.metrics"),
        ("model.depht", 3, r"model\.depht"),
        ("optimizer.learning_rate", 0.1, r"optimizer\.learning_rate"),
        ("measure.metric", ["dh"], r"measure\.metric"),
        ("widhts", [8], r"widhts"),
    ],
)
def test_bad_values_are_refused_naming_the_field(path, value, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(_with(path, value))


def test_an_int_is_still_a_float_and_the_valid_spec_expands():
    spec = parse_spec(_with("optimizer.lr", 1))
    assert spec.optimizer.lr == 1.0 and isinstance(spec.optimizer.lr, float)
    assert len(expand(parse_spec(VALID))) == 2 * (2 + 1) * 2


def test_a_model_too_large_for_memory_names_its_size():
    spec = _with("model", {"kind": "transformer", "depth": 12})
    spec["widths"] = [2**20]  # 12·12·n² ≈ 1.6e14 parameters
    spec["optimizer"]["kind"] = "adam"
    with pytest.raises(SpecError, match=r"widths: .*transformer of depth 12.*4 floats"):
        parse_spec(spec)


# ------------------------------------------------------------------- mutations of VALID

ODD_VALUES = [
    True, False, None, 0, -1, 1, 10**12, 2**64, 10**30, 0.5, -0.0, 1e308,
    math.inf, -math.inf, math.nan, "", "x", "1", "a:b", [], [1], [True], [math.nan], {}, {"a": 1},
]  # fmt: skip


def _paths(node, prefix=()):
    """Every key path and list index of a nested spec (VALID leaves `data` at its default:
    that section, with its files, is validated by `DataSpec` and tested with it)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


PATHS = list(_paths(VALID))


def _clean(spec) -> str | None:
    """None if `spec` loads and expands or is refused by a SpecError, else what went wrong."""
    try:
        parsed = parse_spec(spec)
    except SpecError:
        return None
    except Exception as err:  # the finding: anything but SpecError
        return f"parse_spec raised {type(err).__name__}: {err}"
    try:
        for config in expand(parsed):
            config_hash(config)
    except Exception as err:
        return f"accepted, then expand raised {type(err).__name__}: {err}"
    return None


@pytest.mark.timeout(300)  # a value that hangs the loader fails here, not the session
def test_every_single_odd_value_at_every_path_loads_cleanly():
    found = []
    for path in PATHS:
        for value in ODD_VALUES:
            spec = copy.deepcopy(VALID)
            parent = spec
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
            if (problem := _clean(spec)) is not None:
                found.append(f"{'.'.join(map(str, path))} = {value!r}: {problem}")
    assert not found, "\n".join(found)


@st.composite
def mutated(draw):
    """VALID after one to three mutations: an odd value, a typo'd, dropped or unknown key."""
    spec = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = spec
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
        how = draw(st.sampled_from(["value", "typo", "drop", "extra"]))
        if how == "value":
            parent[path[-1]] = draw(st.sampled_from(ODD_VALUES))
        elif isinstance(parent, dict) and how == "typo":
            parent[f"{path[-1]}x"] = parent.pop(path[-1])
        elif isinstance(parent, dict) and how == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["n_trian"] = draw(st.sampled_from(ODD_VALUES))
    return spec


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_mutated_spec_loads_cleanly_or_raises_spec_error(spec):
    assert _clean(spec) is None
