"""C15 (second-order term), C16 (UUC), C19 (lazy = kernel regression), C20 (the crossover
sharpens) at quick scale, with their negative controls.

Each claim's rule is data in its module (RULE), fixed before it was first run; these tests
check that each quick form ends with a verdict its own checks imply, that the measured numbers
are the ones docs/claims_new_2.md reports (loosely), and that every negative control fails.
The controls train extra networks and are slow-marked; the full forms are not run here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from richness.claims import CLAIMS, ClaimResult, Context
from richness.claims import c15_second_order as c15
from richness.claims import c16_useful_updates as c16
from richness.claims import c19_kernel_regression as c19
from richness.claims import c20_sharpening as c20


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("c15")


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def c15_quick(out, one_thread) -> ClaimResult:
    return c15.run(Context(out, scale="quick"))


@pytest.fixture(scope="module")
def c16_quick(out, one_thread, c15_quick) -> ClaimResult:
    return c16.run(Context(out, scale="quick"))  # reads C15's cached runs


@pytest.fixture(scope="module")
def c20_quick(out, one_thread) -> ClaimResult:
    return c20.run(Context(out, scale="quick"))


@pytest.fixture(scope="module")
def c19_quick(out, one_thread) -> ClaimResult:
    return c19.run(Context(out, scale="quick"))  # about 4 minutes on a shared core: slow


@pytest.fixture
def c19_small(monkeypatch, tmp_path, one_thread) -> ClaimResult:
    """C19's code path on a smaller grid (not its rule's setup: consistency only)."""
    setup = dict(c19.SETUP, steps=300, widths={"quick": [32, 64]}, seeds={"quick": [0, 1]})
    monkeypatch.setattr(c19, "SETUP", setup)
    return c19.run(Context(tmp_path, scale="quick"))


def _consistent(result: ClaimResult) -> None:
    checks = result.details["checks"]
    assert checks, "a claim without checks"
    assert result.verdict == ("pass" if all(checks.values()) else "fail")
    json.dumps(result.to_json())  # JSON-safe


def test_registered_with_rules_as_data() -> None:
    for claim, module in (("C15", c15), ("C16", c16), ("C19", c19), ("C20", c20)):
        assert CLAIMS[claim] == module.__name__.rsplit(".", 1)[1]
        assert module.CLAIM == claim
        json.dumps(module.RULE)


def test_crossing_interpolates_log_q() -> None:
    # q = n^(r − ½) exactly: log q is linear in r, so r_q = ½ + ln q / ln n on any grid
    n = 300.0
    grid = np.array(c20.R_GRID)
    q = n ** (grid - 0.5)
    for level in (0.25, 0.5, 0.75):
        assert c20.crossing(grid, q, level) == pytest.approx(0.5 + math.log(level) / math.log(n))
    assert math.isnan(c20.crossing(grid, np.ones_like(grid), 0.5))  # flat: no crossover
    assert math.isnan(c20.crossing(grid, np.zeros_like(grid), 0.5))


def test_c15_quick(c15_quick) -> None:
    _consistent(c15_quick)
    fits = c15_quick.details["fits"]
    # measured at quick scale (docs/claims_new_2.md): the MLP's Hessian term sits at −1 at r = 0
    # while its total gap is flatter (the ReLU kinks are beyond second order) ...
    assert fits["mlp r=0"]["slope"] == pytest.approx(-0.96, abs=0.05)
    assert fits["mlp r=0"]["lin_gap_slope"] > fits["mlp r=0"]["slope"] + 0.15
    # ... the linear net's gap is its second-order term (the cubic term is small) ...
    assert fits["linear r=0"]["share_of_gap_at_widest"] > 0.98
    # ... and at r = ½ the slope lies between the first-step term −½ and the leading 0
    for arch in ("linear", "mlp"):
        assert -0.5 < fits[f"{arch} r=0.5"]["slope"] < 0.0
        assert fits[f"{arch} rise"] > 0.5


def test_c16_quick(c16_quick) -> None:
    _consistent(c16_quick)
    fits = c16_quick.details["fits"]
    slopes = [f["slope"] for f in fits.values()]
    assert max(abs(s) for s in slopes) < 0.2  # every layer's decrease is about flat in n
    assert min(min(f["share"]) for f in fits.values()) > 0.1
    assert c16_quick.details["checks"]["control (frozen layers.1) fails"]
    frozen = c16_quick.details["control_fits"]
    assert all(max(f["D"]) == 0.0 for k, f in frozen.items() if k.endswith(" layers.1"))


def test_c20_quick(c20_quick) -> None:
    _consistent(c20_quick)
    assert c20_quick.verdict == "pass"
    cross = c20_quick.measured["crossover_r_half"]["h1"]
    assert list(cross.values()) == sorted(cross.values())
    assert all(0.3 < v < 0.4 for v in cross.values())


def test_c19_code_path(c19_small) -> None:
    _consistent(c19_small)
    d = c19_small.details
    assert set(d["mean_distance"]) == {32, 64}
    assert all(0 < v < 2 for v in d["init_kernel_distance"].values())
    assert math.isfinite(c19_small.measured["slope"])


@pytest.mark.slow
def test_c19_quick(c19_quick) -> None:
    _consistent(c19_quick)
    d = c19_quick.details
    assert d["kernel_gap_at_T"] < 1e-3
    assert d["max_loss_ratio"] < 1e-3
    assert math.isfinite(c19_quick.measured["slope"])


@pytest.mark.slow
def test_controls_fail(tmp_path, one_thread) -> None:
    """SP fails C15 and C16; μP fails C19 and C20."""
    for module, preset in ((c15, "sp"), (c16, "sp"), (c19, "mup"), (c20, "mup")):
        result = module.run(Context(tmp_path / preset, scale="quick", substitute=preset))
        _consistent(result)
        assert result.verdict == "fail", (module.CLAIM, result.details["checks"])
