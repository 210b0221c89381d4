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
