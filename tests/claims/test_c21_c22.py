"""C21 (finite widths converge to the deep linear limit) and C22 (the transition) at quick scale.

The full forms (widths 256 … 8192, docs/infinite.md) run with `-m slow`.
"""

from __future__ import annotations

import pytest
import torch

from richness.build import load_data
from richness.claims import CLAIMS, ClaimResult, Context
from richness.claims import c21_rich_limit as c21
from richness.claims import c22_transition as c22
from richness.claims._limit import limit_config, limit_of, relative_distance, train_finite
from richness.train import run


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("c21")


@pytest.fixture(scope="module")
def one_thread():
    """Small float64 matrices: one intra-op thread avoids OpenMP spin-waiting on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def c21_quick(out, one_thread) -> ClaimResult:
    return c21.run(Context(out, scale="quick"))


@pytest.fixture(scope="module")
def c22_quick(out, one_thread, c21_quick) -> ClaimResult:
    return c22.run(Context(out, scale="quick"))  # shares C21's cached runs at r = 1/4, 1/2


def test_registered() -> None:
    assert CLAIMS["C21"] == "c21_rich_limit" and CLAIMS["C22"] == "c22_transition"


def test_the_loop_is_train_run(one_thread) -> None:
    # the trajectory recorder rides in the loop's Meter slot: train.run(config) trains the same
    config = limit_config(width=64, seed=3, r=0.5, data=c21.SETUP["data"], depth=3, lr=0.5, steps=4)
    net = train_finite(config)
    outcome = run(config)
    assert outcome.status == "done", outcome.error
    loss = [v for _, _, q, v in outcome.rows if q == "loss"]
    test_loss = [v for _, _, q, v in outcome.rows if q == "test_loss"]
    y_test = load_data(config).y_test
    mine = 0.5 * (net.f_test - y_test).pow(2).sum(-1).mean(-1)
    torch.testing.assert_close(
        torch.tensor(loss, dtype=torch.float64), net.loss, rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        torch.tensor(test_loss, dtype=torch.float64), mine, rtol=1e-12, atol=0
    )
    assert net.f_test.shape == (5, 64, 4) and net.feature_movement.shape == (5, 2)
    lim = limit_of(config)
    assert relative_distance(net.f_test, lim.f_test) < 0.5


def test_c21_quick_passes(c21_quick: ClaimResult) -> None:
    # slope within 0.25 of −1/2 (with its interval) and distance ≤ 0.1 at n = 1024, r = 1/2, 1/4
    assert c21_quick.verdict == "pass", c21_quick.details["checks"]
    for point in ("r=0.5", "r=0.25"):
        m = c21_quick.measured[point]
        assert abs(m["slope"] + 0.5) <= 0.25 and m["distance_n1024"] <= 0.1
    # r = 1/2 networks do not approach the lazy limit: the rich limit is another function
    to_lazy = c21_quick.measured["r=0.5"]["mean_distance_to_lazy_limit"]
    assert min(to_lazy.values()) > 0.3
    assert c21_quick.details["rule"] is c21.RULE
    assert c21_quick.figures and c21_quick.figures[0].endswith("C21.png")


def test_c21_fails_when_the_networks_are_lazy(out, one_thread) -> None:
    # negative control: NTP networks (r = 0) held against the r = 1/2 limit
    result = c21.run(Context(out / "ntp", scale="quick", substitute="ntp"))
    assert result.verdict == "fail"
    assert not result.details["checks"]["r=0.5: distance at n=1024 ≤ 0.1"]
    assert result.details["checks"]["r=0.25: distance at n=1024 ≤ 0.1"]  # lazy ≡ NTP's limit


def test_c22_quick_passes(c22_quick: ClaimResult) -> None:
    assert c22_quick.verdict == "pass", c22_quick.details["checks"]
    assert c22_quick.measured["limit_movement_below_half_max"] == 0.0
    assert min(c22_quick.measured["limit_movement_at_half"]) >= 0.05
    for rate in c22_quick.measured["finite_rates"].values():
        assert rate["agreement"] == "agrees"
    assert c22_quick.details["rule"] is c22.RULE


def test_rules_are_data() -> None:
    for module in (c21, c22):
        assert isinstance(module.RULE, dict)
        assert set(module.RULE["widths"]) == {"quick", "full"}
    assert c21.RULE["widths"]["full"][0] == 256 and c21.RULE["widths"]["full"][-1] == 8192
    assert c21.RULE["distance_at_widest_at_most"]["full"] == 0.05


@pytest.mark.slow
def test_c21_c22_full(tmp_path, one_thread) -> None:
    for module in (c21, c22):
        result = module.run(Context(tmp_path, scale="full"))
        assert result.verdict == "pass", result.details["checks"]
