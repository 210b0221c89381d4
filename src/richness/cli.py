"""The `richness` command line (typer). Every command exits non-zero with a one-line reason."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from richness.scaling import Parameterization, preset, richness

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The richness scale of wide networks: lazy (NTK, r = 0) to rich (μP, r = 1/2).",
)
console = Console()


@app.callback()
def _root() -> None:
    """The richness scale of wide networks: lazy (NTK, r = 0) to rich (μP, r = 1/2)."""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _table_for(
    r: float | None,
    preset_name: str | None,
    gauge: str | None,
    gamma: float,
    optimizer: str,
    base_width: float | None,
) -> Parameterization:
    if (r is None) == (preset_name is None):
        _fail("give exactly one of --r or --preset")
    if preset_name is not None:
        return preset(preset_name, gauge, gamma, optimizer, base_width)  # type: ignore[arg-type]
    return richness(r, gauge or "stp", gamma, optimizer, base_width)  # type: ignore[arg-type]


def render_explanation(p: Parameterization, width: int, d_in: int, depth: int) -> None:
    """Prints the per-role table, the width exponents and the criteria verdicts."""
    rows = [("input", d_in), ("hidden", width), ("output", width)]
    where = (
        "absolute (w = n)" if p.base_width is None else f"base-relative (m = n/{p.base_width:g})"
    )
    title = f"{p.name} · optimizer {p.optimizer} · width {width} · {where}"
    table = Table(title=title)
    for col in ("role", "fan_in", "multiplier g", "init std σ", "LR factor η", "g·σ", "eff. LR"):
        table.add_column(col, justify="right" if col != "role" else "left")
    exps = p.exponents()
    for role, fan_in in rows:
        s = p.layer(role, width=width, fan_in=fan_in)  # type: ignore[arg-type]
        table.add_row(
            role,
            str(fan_in),
            f"{s.multiplier:.6g}",
            f"{s.init_std:.6g}",
            f"{s.lr:.6g}",
            f"{s.effective_std:.6g}",
            f"{s.effective_lr:.6g}",
        )
    console.print(table)
    expo = Table(title="width exponents (powers of n; input fan-in fixed)")
    for col in ("role", "g", "σ", "η"):
        expo.add_column(col)
    for role, e in exps.items():
        expo.add_row(role, *(f"{e[q]:+.3g}" for q in ("multiplier", "init_std", "lr")))
    console.print(expo)
    pred = p.predict(depth)
    labels = {
        "dh": "‖Δh‖ (C2)",
        "f0": "‖f0‖ (C3)",
        "df": "‖Δf‖ (C4)",
        "max_ratio": "MAX ratio (C5)",
        "lin_gap": "lin. gap / ‖Δf‖ (C8)",
    }
    console.print(
        "predicted exponents: "
        + ", ".join(f"{label} n^{pred[key]:+.3g}" for key, label in labels.items())
    )
    for c in p.criteria(depth):
        mark = "[green]holds[/green]" if c.holds else f"[red]breaks (n^{c.exponent:+.3g})[/red]"
        console.print(f"  {c.name:<11} {mark}  {c.detail}")


@app.command()
def explain(
    r: Annotated[float | None, typer.Option(help="richness r in [0, 0.5]")] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help="sp, ntp, ntp-lr, mup, mup-lr or mf")
    ] = None,
    gauge: Annotated[str | None, typer.Option(help="stp, mup or rescaling")] = None,
    gamma: Annotated[float, typer.Option(help="prefactor γ of α = γ·n^r")] = 1.0,
    optimizer: Annotated[str, typer.Option(help="sgd or adam")] = "sgd",
    width: Annotated[int, typer.Option(help="width n")] = 1024,
    base_width: Annotated[
        float | None, typer.Option(help="base width n0 (omit for absolute tables)")
    ] = None,
    d_in: Annotated[int, typer.Option(help="input dimension (the input layer's fan-in)")] = 64,
    depth: Annotated[int, typer.Option(help="number of weight layers")] = 3,
) -> None:
    """Print the per-role table (multiplier, init std, LR factor) and the predicted exponents."""
    try:
        p = _table_for(r, preset_name, gauge, gamma, optimizer, base_width)
        if width < 1 or d_in < 1:
            raise ValueError(f"width={width} and d_in={d_in} must be ≥ 1")
        render_explanation(p, width, d_in, depth)
    except ValueError as err:
        _fail(str(err))


def main() -> None:
    """Entry point for `python -m richness`."""
    app()
