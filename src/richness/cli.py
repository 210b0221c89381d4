"""The `richness` command line (typer). Every command exits non-zero with a one-line reason."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from richness.scaling import Parameterization, table

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
    try:
        return table(r, preset_name, gauge, gamma, optimizer, base_width)  # type: ignore[arg-type]
    except ValueError as err:
        _fail(str(err))


def _print_counts(name: str, counts: dict[str, int], db: Path) -> None:
    """The sweep's last line, its counts; a failed run fails the command (exit 1), a diverged
    one is a result."""
    console.print(
        f"{name}: {counts['total']} runs: {counts['done']} done, "
        f"{counts['diverged']} diverged, {counts['failed']} failed, {counts['skipped']} "
        f"skipped (already finished); trained {counts['ensemble']} in vectorized ensembles, "
        f"{counts['alone']} alone → {db}",
        soft_wrap=True,  # one line, however narrow the terminal: scripts read the counts
    )
    if counts["failed"]:
        raise typer.Exit(1)


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


def _store_or_fail(path: Path | str):
    """The existing store at `path` (`Store.open_existing`), or a one-line error naming it."""
    from richness.sweep import Store

    try:
        return Store.open_existing(path)
    except ValueError as err:
        _fail(str(err))


def _spec_or_fail(path: Path):
    from richness.sweep import SpecError, load_spec

    try:
        return load_spec(path)
    except FileNotFoundError:
        _fail(f"spec file {path} does not exist")
    except SpecError as err:
        _fail(f"{path}: {err}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="sweep spec (YAML)")],
    db: Annotated[Path, typer.Option(help="SQLite store (created if missing)")] = Path(
        "runs.sqlite"
    ),
    backend: Annotated[str, typer.Option(help="local or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address")] = None,
    workers: Annotated[
        int | None, typer.Option(help="local processes (default: all cores)")
    ] = None,
    threads: Annotated[int, typer.Option(help="intra-op threads per run")] = 1,
    ensemble: Annotated[
        bool, typer.Option(help="train runs that share a width as one vectorized ensemble")
    ] = True,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Run every unfinished run of SPEC into DB (a killed sweep resumes where it stopped)."""
    from richness.sweep import run_sweep

    parsed = _spec_or_fail(spec)
    if backend not in ("local", "ray"):
        _fail(f"--backend={backend!r} is not one of 'local', 'ray'")
    if workers is not None and workers < 1:
        _fail(f"--workers={workers} must be ≥ 1")
    counts = run_sweep(
        parsed,
        db,
        backend=backend,
        address=address,
        workers=workers,
        threads=threads,
        ensemble=ensemble,
        progress=not quiet,
    )
    _print_counts(parsed.name, counts, db)


@app.command()
def report(
    db: Annotated[Path, typer.Argument(help="SQLite store written by `richness sweep`")],
    out: Annotated[Path, typer.Option(help="output directory")] = Path("report"),
) -> None:
    """Write OUT/index.html, OUT/summary.json and the figures for the runs in DB."""
    from richness.analysis.report import write_report

    index = write_report(_store_or_fail(db), out)
    console.print(f"report: {index}")


@app.command()
def transfer(
    spec: Annotated[Path, typer.Argument(help="transfer spec (YAML, with log2_lr)")],
    db: Annotated[Path, typer.Option(help="SQLite store (created if missing)")] = Path(
        "runs.sqlite"
    ),
    out: Annotated[Path, typer.Option(help="output directory")] = Path("transfer"),
    workers: Annotated[
        int | None, typer.Option(help="local processes (default: all cores)")
    ] = None,
    threads: Annotated[int, typer.Option(help="intra-op threads per run")] = 1,
    n_boot: Annotated[int, typer.Option(help="seed-bootstrap resamples")] = 1000,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """μTransfer: sweep η0 at every width; write OUT/transfer.json and OUT/transfer_<name>.png."""
    from richness.analysis.transfer import final_losses, write_transfer
    from richness.sweep import SpecError, Store, config_hash
    from richness.sweep.transfer import expand_transfer, load_transfer_spec, run_transfer

    try:
        parsed = load_transfer_spec(spec)
    except FileNotFoundError:
        _fail(f"spec file {spec} does not exist")
    except SpecError as err:
        _fail(f"{spec}: {err}")
    if workers is not None and workers < 1:
        _fail(f"--workers={workers} must be ≥ 1")
    if n_boot < 0:
        _fail(f"--n-boot={n_boot} must be ≥ 0")
    counts = run_transfer(parsed, db, workers=workers, threads=threads, progress=not quiet)
    _print_counts(parsed.name, counts, db)
    store = Store(db)
    ids = [config_hash(c) for c in expand_transfer(parsed)]
    runs = store.runs()
    losses = final_losses(
        runs[runs["run_id"].isin(ids)], store.metrics(quantity=["loss", "test_loss"], run_ids=ids)
    )
    json_path, png, summary = write_transfer(
        losses,
        out,
        parsed.name,
        tolerance=parsed.tolerance,
        n_boot=n_boot,
        extra=parsed.model_dump(mode="json"),
    )
    table = Table(title=f"{parsed.name}: optimal log2 η0 per width (training loss)")
    optima = {(o["label"], o["quantity"], o["width"]): o for o in summary["optima"]}
    widths = sorted({o["width"] for o in summary["optima"]})
    fitted = min(min(d["fit_widths"]) for d in summary["drifts"])
    heads = (
        f"drift / doubling (n ≥ {fitted})",
        "interval (seed bootstrap)",
        "all widths",
        "verdict",
    )
    for col in ("parameterization", *map(str, widths), *heads):
        table.add_column(col)
    for d in summary["drifts"]:
        if d["quantity"] != "loss":
            continue
        cells = []
        for w in widths:
            o = optima[(d["label"], "loss", w)]
            value = "–" if o["log2_lr"] is None else f"{o['log2_lr']:+.2f}"
            cells.append(value + (" (edge)" if o["at_edge"] else ""))
        ci = "–" if d["ci_low"] is None else f"[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
        drift = "–" if d["drift"] is None else f"{d['drift']:+.3f}"
        expected = "" if d["expected"] is None else f" (expected {d['expected']})"
        drift_all = "–" if d["drift_all"] is None else f"{d['drift_all']:+.3f}"
        table.add_row(d["label"], *cells, drift, ci, drift_all, d["verdict"] + expected)
    console.print(table)
    console.print(f"verdict: {summary['verdict']} · {json_path} · {png}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("demo-out"),
    workers: Annotated[
        int | None, typer.Option(help="local processes (default: all cores)")
    ] = None,
) -> None:
    """Run the built-in richness-scale sweep on digits and write its report to OUT."""
    from importlib.resources import files

    from richness.analysis.report import write_report
    from richness.sweep import load_spec, run_sweep

    spec = load_spec(Path(str(files("richness.sweep") / "specs" / "demo.yaml")))
    out.mkdir(parents=True, exist_ok=True)
    db = out / "runs.sqlite"
    console.print(
        f"demo: {spec.model.kind} on {spec.data.kind}, widths {spec.widths}, "
        f"r ∈ {spec.richness}, {len(spec.seeds)} seeds, {spec.steps} SGD steps"
    )
    run_sweep(spec, db, workers=workers)
    index = write_report(db, out)
    _print_richness_scale(out / "summary.json", spec.steps)
    console.print(f"report: {index}")


def _print_richness_scale(summary_path: Path, step: int) -> None:
    """The headline: fitted ‖Δh‖ exponent of each hidden layer against r."""
    import json

    fits = json.loads(summary_path.read_text())["fits"]
    table = Table(title=f"the richness scale: fitted exponent of ‖Δh‖ after {step} steps")
    for col in ("r", "layer", "measured slope", "interval (seed bootstrap)", "predicted"):
        table.add_column(col)
    for fit in fits:
        hidden = fit.get("ell", 0) is not None and 0 < fit.get("ell", 0) < fit.get("depth", 0)
        if fit["quantity"] == "dh" and fit.get("step") == step and hidden:
            table.add_row(
                f"{fit['r']:g}",
                fit["layer"],
                f"{fit['slope']:+.3f}",
                f"[{fit['ci_low']:+.3f}, {fit['ci_high']:+.3f}]",
                f"{fit['predicted']:+.3g}",
            )
    console.print(table)


@app.command()
def check(
    factory: Annotated[str, typer.Argument(help="'module:function', f(width) -> nn.Module")],
    widths: Annotated[str, typer.Option(help="comma-separated widths")] = "64,128,256,512",
    r: Annotated[float | None, typer.Option(help="parameterize at richness r first")] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help="parameterize with a preset first")
    ] = None,
    gauge: Annotated[str | None, typer.Option(help="stp, mup or rescaling")] = None,
    base_width: Annotated[float | None, typer.Option(help="base width n0")] = None,
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 3,
    lr: Annotated[
        float | None, typer.Option(help="base learning rate η0 (default: a stable one, chosen)")
    ] = None,
    optimizer_kind: Annotated[str, typer.Option("--optimizer", help="sgd, adam or adamw")] = "sgd",
    loss: Annotated[str, typer.Option(help="mse or cross_entropy")] = "mse",
    data: Annotated[
        str | None,
        typer.Option(help="'module:function' returning a batch x or (x, y) of your data"),
    ] = None,
    seeds: Annotated[int, typer.Option(help="seeds per width")] = 3,
    input_shape: Annotated[
        str | None, typer.Option(help="one input's shape, e.g. 3,32,32 (default: d_in)")
    ] = None,
) -> None:
    """Coordinate check of your model: fitted width exponents against the theory."""
    from richness.coordcheck import UnstableError, coord_check, load_factory

    try:
        make = load_factory(factory)
        batch = load_factory(data) if data else None
        width_list = [int(w) for w in widths.split(",") if w.strip()]
        shape = [int(s) for s in input_shape.split(",")] if input_shape else None
        if loss not in ("mse", "cross_entropy"):
            raise ValueError(f"--loss={loss!r} is not one of 'mse', 'cross_entropy'")
        p = None
        if r is not None or preset_name is not None:
            family = "sgd" if optimizer_kind == "sgd" else "adam"
            p = _table_for(r, preset_name, gauge, 1.0, family, base_width)
        if steps < 1 or seeds < 1:
            raise ValueError(f"--steps={steps} and --seeds={seeds} must be ≥ 1")
        _, _, fits = coord_check(
            make,
            width_list,
            p=p,
            steps=steps,
            lr=lr,
            optimizer_kind=optimizer_kind,
            loss=loss,
            data=batch,
            seeds=range(seeds),
            input_shape=shape,
        )
    except UnstableError as err:
        console.print(str(err))
        raise typer.Exit(1) from None
    except ValueError as err:
        _fail(str(err))
    what = "as given (one learning rate)" if p is None else p.name
    how = "chosen: stable at the smallest width" if fits.attrs["lr_chosen"] else "given"
    console.print(f"lr {fits.attrs['lr']:g} ({how}), {optimizer_kind}, {loss}")
    table = Table(title=f"coordinate check of {factory}: {what}, widths {widths}, step {steps}")
    for col in ("quantity", "layer", "slope", "interval (seed bootstrap)", "expected", "verdict"):
        table.add_column(col)
    shown = {"agrees": "[green]ok[/green]", "disagrees": "[red]off[/red]", "undetermined": "?"}
    for row in fits.sort_values(["quantity", "ell"]).itertuples():
        table.add_row(
            row.quantity,
            row.layer or "(output)",
            f"{row.slope:+.3f}",
            f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]",
            "" if row.expected != row.expected else f"{row.expected:+.3g}",
            shown.get(row.agreement, ""),
        )
    console.print(table)


@app.command()
def meter(
    source: Annotated[
        str, typer.Argument(help="a sweep store (runs.sqlite) or a factory 'module:function'")
    ],
    step: Annotated[int | None, typer.Option(help="store: step to judge (default: last)")] = None,
    widths: Annotated[str, typer.Option(help="factory: comma-separated widths")] = "128,256,512",
    r: Annotated[float | None, typer.Option(help="factory: parameterize at r first")] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help="factory: parameterize with a preset first")
    ] = None,
    base_width: Annotated[float | None, typer.Option(help="factory: base width n0")] = None,
    steps: Annotated[int, typer.Option(help="factory: SGD steps")] = 5,
    lr: Annotated[float, typer.Option(help="factory: base learning rate η0")] = 0.05,
    seeds: Annotated[int, typer.Option(help="factory: seeds per width")] = 4,
    residual_normalized: Annotated[
        bool,
        typer.Option(help="store: ‖Δh‖ over each run's initial residual (uncentered MSE runs)"),
    ] = False,
) -> None:
    """Effective richness r̂ (width exponent of ‖Δh‖) per family, with CI and verdict."""
    from richness.analysis import load_frames
    from richness.analysis.richness_meter import estimate_store
    from richness.analysis.richness_meter import residual_normalized as normalized

    try:
        if ":" not in source or Path(source).exists():
            store = _store_or_fail(source)
            frames = normalized(*load_frames(store)) if residual_normalized else store
            estimates = estimate_store(frames, step=step)
            what = source + (" (‖Δh‖ / ‖f0 − y‖)" if residual_normalized else "")
        else:
            from richness.coordcheck import coord_check, load_factory

            p = None
            if r is not None or preset_name is not None:
                p = _table_for(r, preset_name, None, 1.0, "sgd", base_width)
            if steps < 1 or seeds < 1:
                raise ValueError(f"--steps={steps} and --seeds={seeds} must be ≥ 1")
            width_list = [int(w) for w in widths.split(",") if w.strip()]
            runs, metrics, _ = coord_check(
                load_factory(source), width_list, p=p, steps=steps, lr=lr, seeds=range(seeds)
            )
            estimates = estimate_store((runs, metrics), step=steps)
            what = f"{source} ({'as given' if p is None else p.name}, SGD lr {lr:g})"
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    if not estimates:
        _fail(f"{source}: no family measured at two or more widths with dh")
    colors = {"lazy": "cyan", "rich": "green", "intermediate": "yellow", "ill-scaled": "red"}
    table = Table(title=f"effective richness of {what}: ‖Δh‖ ~ n^r̂, 0 lazy to ½ rich")
    for col in ("family", "r̂", "interval (seed bootstrap)", "lazy→rich", "‖Δf‖ exp.", "verdict"):
        table.add_column(col)
    for est in estimates:
        df = est.checks[est.checks["signal"] == "df"]["value"]
        color = colors.get(est.verdict, "white")
        table.add_row(
            est.label or "(as given)",
            f"{est.r_hat:+.3f}",
            f"[{est.ci_low:+.3f}, {est.ci_high:+.3f}]",
            f"{100 * est.position:.0f}%",
            f"{df.iloc[0]:+.2f}" if len(df) else "",
            f"[{color}]{est.verdict}[/{color}]",
        )
    console.print(table)
    for est in estimates:
        for note in est.notes:
            console.print(f"  {est.label or '(as given)'}: {note}")


@app.command()
def reproduce(
    claim: Annotated[
        str | None, typer.Argument(help="C1 … C22, several separated by commas, or 'all'")
    ] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("reproduction"),
    scale: Annotated[str, typer.Option(help="full (the docs) or quick (seconds)")] = "full",
    markdown: Annotated[
        Path | None, typer.Option(help="write the write-up here (default OUT/reproduction.md)")
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="CIFAR-10 directory for C13 (digits otherwise)")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="local processes")] = None,
    optimizer: Annotated[
        str, typer.Option(help="sgd or adam: the scale experiment of C1–C8 (docs/adam.md)")
    ] = "sgd",
    archs: Annotated[
        str | None, typer.Option(help="scale-experiment architectures, e.g. linear,mlp (all)")
    ] = None,
    max_width: Annotated[
        int | None, typer.Option(help="run the scale experiment only at widths ≤ this")
    ] = None,
    rules: Annotated[
        bool,
        typer.Option("--rules", help="print the verdict rules (of CLAIM, or all) as JSON and exit"),
    ] = False,
) -> None:
    """Run claims of THEORY.md §4; write OUT/claims.json, figures and a markdown write-up."""
    import shlex
    import sys

    if rules:
        import json

        from richness.claims.rules import RULES, rules_json

        wanted = None if claim in (None, "all") else [c.strip().upper() for c in claim.split(",")]
        unknown = [c for c in wanted or [] if c not in RULES]
        if unknown:
            _fail(f"no rule for {unknown}; claims with rules: {list(RULES)}")
        print(json.dumps(rules_json(wanted), indent=2, ensure_ascii=False))
        return
    if claim is None:
        _fail("give the claims to run (C1 … C22, comma-separated, or 'all'), or --rules")

    from richness.claims import reproduce as run_claims
    from richness.claims._base import Context
    from richness.claims._summary import richness_scale_figure, write_markdown

    ids = [c.strip() for c in claim.split(",") if c.strip()]  # type: ignore[union-attr]
    arch_list = None if archs is None else [a.strip() for a in archs.split(",") if a.strip()]
    try:
        results = run_claims(
            ids if ids != ["all"] else "all",
            out,
            scale=scale,
            data_dir=data_dir,
            workers=workers,
            progress=True,
            optimizer=optimizer,
            archs=arch_list,
            max_width=max_width,
        )
    except ValueError as err:
        _fail(str(err))
    summary = None
    if any(r.claim in ("C2", "C8") for r in results):
        ctx = Context(
            out,
            scale=scale,  # type: ignore[arg-type]
            optimizer=optimizer,  # type: ignore[arg-type]
            archs=None if arch_list is None else tuple(arch_list),
            max_width=max_width,
        )
        summary = richness_scale_figure(ctx)
    command = "richness " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = write_markdown(results, markdown or out / "reproduction.md", command, summary)
    table = Table(title=f"claims ({scale} scale)")
    for col in ("claim", "verdict", "title"):
        table.add_column(col)
    for r in results:
        color = "green" if r.verdict == "pass" else "red"
        table.add_row(r.claim, f"[{color}]{r.verdict}[/{color}]", r.title)
    console.print(table)
    console.print(f"write-up: {path}")


def main() -> None:
    """Entry point for `python -m richness`."""
    app()
