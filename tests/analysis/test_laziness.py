"""The one-width laziness index on synthetic measurements (THEORY.md §3, C11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from richness.analysis.laziness import laziness_index

BASE = 64


def _records(r, *, seeds, widths, noise, rng_seed):
    """Meter-like dicts: ‖Δh_ℓ‖ = c_ℓ·n^r·(1 + noise), h_rms = 1, ‖Δf‖ = 1."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for n in widths:
        for _ in seeds:
            record = {}
            for ell, c in ((1, 0.3), (2, 0.5)):
                dh = c * n**r * math.exp(noise * rng.standard_normal())
                record[f"dh/layers.{ell - 1}"] = dh
                record[f"dh_rms/layers.{ell - 1}"] = dh / n**0.5
                record[f"h_rms/layers.{ell - 1}"] = 1.0
            record["dh/layers.2"] = record["df"] = 1.0
            out.append(record)
    return out


def _one_width(r, n=1024, gamma=1.0, seeds=range(3), noise=0.01, rng_seed=0):
    """Base-relative runs at width n: ‖Δh‖ ~ α = γ·(n/n0)^r, as the tables give (§3)."""
    out = _records(0.0, seeds=seeds, widths=(n,), noise=noise, rng_seed=rng_seed)
    for record in out:
        for name in ("layers.0", "layers.1"):
            record[f"dh_rms/{name}"] *= gamma * (n / BASE) ** r
        record["lin_gap"] = 0.3 * (gamma * (n / BASE) ** r) ** 2 / n
    return out


def test_laziness_index_reads_r_between_references():
    lazy, rich = _one_width(0.0, rng_seed=1), _one_width(0.5, rng_seed=2)
    for r in (0.0, 0.25, 0.5):
        est = laziness_index(_one_width(r, rng_seed=3), lazy, rich)
        assert est.r_hat == pytest.approx(r, abs=0.01)
        assert est.ci_low <= r <= est.ci_high and est.interval == "seed bootstrap"
        assert est.checks.set_index("signal").loc["lin_gap", "value"] == pytest.approx(r, abs=0.01)


def test_laziness_index_reads_gamma_as_richness_and_says_so():
    """One width cannot separate γ from n^r (C11): γ = 8^{1/4} at n/n0 = 16 reads as r + 3/16."""
    lazy, rich = _one_width(0.0), _one_width(0.5)
    est = laziness_index(_one_width(0.25, gamma=8**0.25), lazy, rich)
    assert est.r_hat == pytest.approx(0.25 + 0.25 * math.log(8) / math.log(16), abs=0.01)
    assert any("activity" in note for note in est.notes)


def test_laziness_index_one_seed_reports_signal_spread():
    est = laziness_index(_one_width(0.25)[0], _one_width(0.0)[0], _one_width(0.5)[0])
    assert est.interval == "signal spread"
    assert est.ci_low <= est.r_hat <= est.ci_high


def test_laziness_index_at_the_base_width_is_undetermined():
    est = laziness_index(_one_width(0.25, n=BASE), _one_width(0.0, n=BASE), _one_width(0.5, n=BASE))
    assert est.verdict == "undetermined" and math.isnan(est.r_hat)


def test_laziness_index_needs_hidden_layers():
    with pytest.raises(ValueError, match="dh_rms"):
        laziness_index({"df": 1.0}, {"df": 1.0}, {"df": 1.0})
