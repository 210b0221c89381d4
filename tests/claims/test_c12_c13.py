"""C12 (kernel limit at r = 0) and C13 (practical CNN) at quick scale, with negative controls."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from richness.claims import ClaimResult, Context
from richness.claims import c12_kernel_limit as c12
from richness.claims import c13_practical as c13
from richness.measure import kernel_regression
from richness.sweep import SpecError, parse_spec

# ------------------------------------------------------------------------------------- C12


def _psd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / n + 0.1 * torch.eye(n, dtype=torch.float64)


def test_kernel_dynamics_is_gradient_descent_in_function_space() -> None:
    # f ← f − lr·K/N·(f − y) on train, f* ← f* − lr·K*/N·(f − y) on test, from f = 0
    n, m, o = 12, 5, 3
    k_all = _psd(n + m, 0)
    k_train, k_test = k_all[:n, :n], k_all[n:, :n]
    y = torch.randn(n, o, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lr = 1.0 / float(torch.linalg.eigvalsh(k_train / n)[-1])
    f, f_test = torch.zeros(n, o, dtype=torch.float64), torch.zeros(m, o, dtype=torch.float64)
    for _ in range(7):
        residual = f - y
        f, f_test = f - lr * k_train @ residual / n, f_test - lr * k_test @ residual / n
    got = c12.kernel_dynamics(k_train, k_test, y, lr, 7)
    torch.testing.assert_close(got, f_test, rtol=1e-10, atol=1e-12)
    assert c12.kernel_dynamics(k_train, k_test, y, lr, 0).abs().max() == 0
    converged = c12.kernel_dynamics(k_train, k_test, y, lr, 100_000)
    torch.testing.assert_close(converged, kernel_regression(k_train, k_test, y), rtol=1e-8, atol=0)


@pytest.fixture
def one_thread():
    """C12 trains in-process on small matrices: one intra-op thread is as fast on an idle
    machine and avoids OpenMP spin-waiting (5-10x slower) when other work shares the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def c12_quick(tmp_path_factory) -> ClaimResult:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `one_thread`, for a module-scoped fixture
    try:
        return c12.run(Context(tmp_path_factory.mktemp("c12"), scale="quick"))
    finally:
        torch.set_num_threads(threads)


def test_c12_quick_converges_to_the_kernel_predictor(c12_quick) -> None:
    r = c12_quick
    assert r.verdict == "pass", r.details["checks"]
    assert r.claim == c12.CLAIM and r.title == c12.TITLE
    assert abs(r.measured["slope"] - c12.PREDICTED) <= c12.TOL
    assert r.measured["distance_n512"] <= c12.BOUND["quick"]
    assert len(r.table) == len(c12.WIDTHS["quick"]) * len(c12.SEEDS["quick"])
    # the empirical NTK at init approaches infinite_ntk as n grows
    err = r.details["ntk_init_rel_err"]
    assert err[512] < err[128] and err[512] < 0.15
    assert Path(r.figures[0]).exists()
    json.dumps(r.to_json())


@pytest.mark.parametrize("wrong", ["mup", "sp"])
def test_c12_other_tables_do_not_converge_to_the_kernel_predictor(
    tmp_path, one_thread, wrong
) -> None:
    # r = 1/2 where r = 0 is expected: features move and the distance levels off;
    # SP: its NTK grows with n, the kernel's learning rate is far too large and training diverges
    r = c12.run(Context(tmp_path, scale="quick", substitute=wrong))
    assert r.verdict == "fail"
    assert r.details["trained"] == wrong
    assert not any(r.details["checks"].values())
    json.dumps(r.to_json())


# ------------------------------------------------------------------------------------- C13


def test_family_spread() -> None:
    rows = [
        {"preset": p, "width": w, "step": s, "value": v}
        for w in (8, 16)
        for s, base in ((0, 0.5), (10, 0.2))
        for p, v in (("a", base), ("b", base), ("c", base * (1.1 if s == 10 else 1.0)))
    ]
    curves = pd.DataFrame(rows)
    assert c13.family_spread(curves, ["a", "b"]) == 0.0
    assert c13.family_spread(curves, ["a", "b", "c"]) == pytest.approx(0.1 / (3.1 / 3))
    assert c13.family_spread(curves, ["a"]) == 0.0
    assert math.isnan(c13.family_spread(curves, ["a", "missing"]))


def test_c13_spec_is_valid_and_reads_cifar_when_given(tmp_path) -> None:
    spec, families = c13.spec_for(Context(tmp_path, scale="full"))
    parse_spec(spec)
    assert spec["presets"] == ["ntp", "ntp-lr", "mup", "mup-lr", "mf"]
    assert spec["base_width"] == "absolute" and spec["data"]["kind"] == "digits"
    assert families == c13.FAMILIES
    missing = str(tmp_path / "no-cifar")
    spec, _ = c13.spec_for(Context(tmp_path, scale="quick", data_dir=missing, substitute="ntp"))
    with pytest.raises(SpecError, match="data_dir"):  # refused before any run is stored
        parse_spec(spec)
    cifar = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-subset"
    if not cifar.is_dir():
        pytest.skip(f"no CIFAR-10 copy at {cifar} (the shared data directory is absent)")
    spec, families = c13.spec_for(
        Context(tmp_path, scale="quick", data_dir=str(cifar), substitute="ntp")
    )
    parse_spec(spec)
    assert spec["data"]["kind"] == "cifar10" and spec["data"]["data_dir"] == str(cifar)
    assert spec["presets"] == ["ntp", "ntp-lr"] and families["rich"] == ["ntp"]


@pytest.fixture(scope="module")
def c13_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("c13")


def test_c13_quick_families_coincide_and_rich_wins(c13_out) -> None:
    r = c13.run(Context(c13_out, scale="quick", workers=2))
    assert r.verdict == "pass", r.details["checks"]
    assert r.measured["family_spread"]["lazy"] <= c13.TOL_FAMILY["lazy"]
    assert r.measured["final_test_loss"]["rich_worst"] < r.measured["final_test_loss"]["lazy_best"]
    assert len(r.table) == 5 * len(c13.WIDTHS["quick"])
    assert all(0 <= row["test_acc"] <= 1 for row in r.table)
    assert Path(r.figures[0]).exists()
    json.dumps(r.to_json())


def test_c13_lazy_table_in_place_of_the_rich_family_fails(c13_out) -> None:
    # reuses the lazy runs of the test above from the store: no training
    r = c13.run(Context(c13_out, scale="quick", workers=2, substitute="ntp"))
    assert r.verdict == "fail"
    checks = r.details["checks"]
    assert not any(v for k, v in checks.items() if k.startswith(("(b)", "(c)")))
