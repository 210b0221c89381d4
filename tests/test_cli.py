"""The command line: output, and a one-line reason with a non-zero exit on bad input."""

from typer.testing import CliRunner

from richness.cli import app

runner = CliRunner()


def test_explain_mup():
    result = runner.invoke(
        app, ["explain", "--preset", "mup", "--width", "1024", "--base-width", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "‖Δh‖ (C2) n^+0.5" in result.output
    assert "NTC" in result.output and "holds" in result.output


def test_explain_sp_breaks_ntc():
    result = runner.invoke(app, ["explain", "--preset", "sp"])
    assert result.exit_code == 0
    assert "breaks (n^+1)" in result.output


def test_bad_inputs_exit_nonzero_with_a_reason():
    cases = [
        (["explain", "--r", "0.7"], "r=0.7"),
        (["explain", "--r", "0.2", "--gauge", "ntk"], "gauge"),
        (["explain", "--preset", "nope"], "preset"),
        (["explain"], "exactly one of --r or --preset"),
        (["explain", "--r", "0.2", "--width", "0"], "width"),
        (["sweep", "does-not-exist.yaml"], "does not exist"),
        (["report", "missing.sqlite"], "does not exist"),
        (["check", "no_colon"], "module:function"),
        (["check", "nosuchmodule_xyz:f"], "can't be imported"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, args)
        assert result.exit_code != 0, args
        assert needle in result.output, (args, result.output)


def test_sweep_reports_spec_errors(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("widths: [8]\nrichness: [0.9]\noptimizer: {lr: 0.1}\n")
    result = runner.invoke(app, ["sweep", str(spec), "--db", str(tmp_path / "x.sqlite")])
    assert result.exit_code == 2
    assert "richness" in result.output and "0.9" in result.output


def _sweep_spec(tmp_path, **changes):
    import yaml

    spec = {
        "name": "exit",
        "model": {"kind": "mlp", "depth": 3},
        "data": {"kind": "digits", "n_train": 32, "n_probe": 16, "n_test": 16},
        "widths": [8, 16],
        "richness": [0.5],
        "optimizer": {"kind": "sgd", "lr": 0.05},
        "steps": 2,
        **changes,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_exits_nonzero_after_all_runs_when_one_failed(tmp_path, monkeypatch):
    from richness.sweep import Store

    (tmp_path / "failmodels.py").write_text(
        "import torch\n"
        "def make(width):\n"
        "    if width > 8:\n"
        "        raise RuntimeError('no model this wide')\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.Linear(width, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _sweep_spec(tmp_path, model={"kind": "factory", "factory": "failmodels:make"})
    db = tmp_path / "f.sqlite"
    args = ["sweep", str(spec), "--db", str(db), "--workers", "1", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "2 runs: 1 done, 0 diverged, 1 failed, 0 skipped" in result.output.splitlines()[-1]
    assert sorted(Store(db).runs().status) == ["done", "failed"]  # the sweep ran them all


def test_sweep_with_a_diverged_run_exits_zero(tmp_path):
    spec = _sweep_spec(tmp_path, widths=[8], optimizer={"kind": "sgd", "lr": 1e5}, loss_bound=1e3)
    db = tmp_path / "d.sqlite"
    result = runner.invoke(app, ["sweep", str(spec), "--db", str(db), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 runs: 0 done, 1 diverged, 0 failed, 0 skipped" in result.output.splitlines()[-1]


def test_a_path_that_is_not_a_store_gives_one_line_naming_it(tmp_path):
    import sqlite3

    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes\n" * 50)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    cases = {
        notes: "not an SQLite file",
        tmp_path / "missing.sqlite": "does not exist",
        tmp_path: "is a directory",
        other: "without a runs table",
    }
    for path, reason in cases.items():
        for command in (["report", str(path), "--out", str(tmp_path / "r")], ["meter", str(path)]):
            result = runner.invoke(app, command)
            assert result.exit_code != 0, (command, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), command
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], lines
    assert not (tmp_path / "missing.sqlite").exists()  # a reader never creates a store
