"""The HTML report and summary.json (DESIGN.md: `richness report runs.sqlite --out DIR`)."""

from __future__ import annotations

import json
import math

import pytest
from _synthetic import synth_frames

from richness.analysis import write_report

FIT_KEYS = {"quantity", "layer", "r", "gauge", "slope", "ci_low", "ci_high", "predicted"}
QUICK = {"n_boot": 100, "coord_quantities": ("dh", "df")}


def _strict_json(text: str):
    def reject(name):
        raise ValueError(f"summary.json holds {name}, which is not JSON")

    return json.loads(text, parse_constant=reject)


@pytest.fixture(scope="module")
def report(tmp_path_factory, frames):
    out = tmp_path_factory.mktemp("report")
    index = write_report(frames, out, **QUICK)
    return out, index


def test_writes_index_summary_and_pngs(report):
    out, index = report
    assert index == out / "index.html"
    summary = _strict_json((out / "summary.json").read_text(encoding="utf-8"))
    assert {"fits", "criteria"} <= set(summary)
    assert summary["fits"] and summary["criteria"]
    for fit in summary["fits"]:
        assert FIT_KEYS <= set(fit)
        assert list(fit)[:8] == [
            "quantity",
            "layer",
            "r",
            "gauge",
            "slope",
            "ci_low",
            "ci_high",
            "predicted",
        ]
    assert summary["figures"]
    for name in summary["figures"]:
        png = out / name
        assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert {"richness_scale.png", "phase_diagram.png"} <= set(summary["figures"])


def test_summary_values(report):
    out, _ = report
    summary = _strict_json((out / "summary.json").read_text(encoding="utf-8"))
    by = {(f["label"], f["quantity"], f["layer"], f["step"]): f for f in summary["fits"]}
    dh = by[("r=0.25", "dh", "layers.1", 3)]
    assert dh["r"] == 0.25 and dh["gauge"] == "stp" and dh["predicted"] == 0.25
    assert dh["ci_low"] <= 0.25 <= dh["ci_high"]
    sp = by[("sp", "df", "", 3)]
    assert sp["r"] is None and sp["gauge"] is None and sp["predicted"] == 1.0
    assert by[("r=0", "loss", "", 3)]["predicted"] is None  # NaN written as null
    ntc = [c for c in summary["criteria"] if c["label"] == "sp" and c["criterion"] == "NTC"]
    assert ntc[0]["verdict"] == "fail"
    assert summary["centered"] is True
    assert summary["runs"]["by_status"] == {"done": 80, "diverged": 1, "failed": 1}
    assert summary["runs"]["widths"] == [64, 128, 256, 512, 1024]


def test_html_is_self_contained_and_complete(report, frames):
    _, index = report
    page = index.read_text(encoding="utf-8")
    for text in (
        "How to read this",
        "measured ‖Δh‖ exponent against r",
        "Criteria verdicts",
        "Figures",
        "Diverged and failed runs",
        "centered",
        "RuntimeError: out of memory",  # a failed run's error line
    ):
        assert text in page, text
    runs, _ = frames
    for run_id in runs.loc[runs["status"] != "done", "run_id"]:
        assert run_id in page
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_from_store_path(tmp_path):
    """A store written by `richness.sweep.store.Store` reads back into the same report."""
    store_mod = pytest.importorskip("richness.sweep.store")
    runs, metrics = synth_frames(points=(("r", 0.5),), seeds=(0, 1), steps=(0, 1))
    store = store_mod.Store(tmp_path / "runs.sqlite")
    for row in runs.to_dict("records"):
        config = json.loads(row["config"])
        run_id = store_mod.config_hash(config)
        store.mark_running(run_id, config, sweep="synthetic")
        rows = metrics[metrics["run_id"] == row["run_id"]]
        error = row.get("error")
        error = None if isinstance(error, float) and math.isnan(error) else error
        step = row.get("diverged_step")
        step = None if step is None or math.isnan(step) else int(step)
        store.finish(
            run_id,
            row["status"],
            rows,
            seconds=0.1,
            diverged_step=step,
            error=error,
            identity=row["identity"],
        )
    index = write_report(tmp_path / "runs.sqlite", tmp_path / "out", n_boot=50, coord_quantities=())
    summary = _strict_json((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    fit = next(
        f
        for f in summary["fits"]
        if f["quantity"] == "dh" and f["layer"] == "layers.0" and f["step"] == 1
    )
    assert fit["predicted"] == 0.5 and fit["n_seeds"] == 2
    assert summary["runs"]["by_status"]["failed"] == 1
    assert "RuntimeError: out of memory" in index.read_text(encoding="utf-8")


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="store"):
        write_report(tmp_path / "missing.sqlite", tmp_path / "out")
    with pytest.raises(TypeError, match="source"):
        write_report(42, tmp_path / "out")


def test_nothing_to_fit(tmp_path, frames):
    """A sweep whose runs all failed still gets a page that says so."""
    runs, metrics = frames
    runs = runs.assign(status="failed")
    index = write_report((runs, metrics), tmp_path, n_boot=10)
    summary = _strict_json((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["fits"] == [] and summary["criteria"] == []
    page = index.read_text(encoding="utf-8")
    assert "No series had two usable widths" in page and "failed" in page
