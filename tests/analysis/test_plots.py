"""Figures: files exist, are PNGs, and the module stays off pyplot and torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _synthetic import synth_frames

from richness.analysis import (
    fit_exponents,
    local_slopes,
    plot_coord_check,
    plot_phase_diagram,
    plot_richness_scale,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def small():
    return synth_frames(points=(("r", 0.0), ("r", 0.5), ("preset", "sp")), seeds=(0, 1, 2))


def test_coord_check_one_png_per_parameterization(small, tmp_path):
    runs, metrics = small
    fits = fit_exponents(runs, metrics, quantities=["dh", "df"], n_boot=50)
    paths = plot_coord_check(runs, metrics, tmp_path, quantities=["dh", "df"], fits=fits)
    assert sorted(p.name for p in paths) == [
        "coord_r=0.5_stp.png",
        "coord_r=0_stp.png",
        "coord_sp_none.png",
    ]
    assert all(_is_png(p) for p in paths)


def test_richness_scale_and_phase_diagram(small, tmp_path):
    runs, metrics = small
    quantities = ["dh", "lin_gap"]
    fits = fit_exponents(runs, metrics, quantities=quantities, n_boot=50)
    local = local_slopes(runs, metrics, quantities=quantities, n_boot=50)
    scale = plot_richness_scale(fits, local, tmp_path / "scale.png")
    assert scale is not None and _is_png(scale)
    scale = plot_richness_scale(fits, None, tmp_path / "scale_no_local.png")
    assert scale is not None and _is_png(scale)
    phase = plot_phase_diagram(runs, metrics, tmp_path / "phase.png")
    assert phase is not None and _is_png(phase)


def test_figures_without_r_are_skipped(tmp_path):
    runs, metrics = synth_frames(points=(("preset", "sp"),), broken_runs=False)
    fits = fit_exponents(runs, metrics, quantities=["dh"], n_boot=0)
    assert plot_richness_scale(fits, None, tmp_path / "scale.png") is None
    assert plot_phase_diagram(runs, metrics, tmp_path / "phase.png") is None
    assert not (tmp_path / "scale.png").exists()


def test_analysis_imports_neither_torch_nor_pyplot():
    """Floor 3 without torch; figures on the Agg canvas, never through pyplot's global state."""
    code = (
        "import sys, richness.analysis; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
