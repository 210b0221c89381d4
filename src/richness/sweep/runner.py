"""Run a sweep: the pending runs of a spec, on local processes or Ray, into one store.

Both backends execute `richness.train.run(config)` (which never raises: failures and
divergences come back as outcomes) and the driver writes each outcome to the store in one
transaction, so a killed sweep resumes exactly where it stopped: finished runs are skipped,
a run that was `running` when the sweep died is redone, nothing is stored twice.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from richness.sweep.spec import SweepSpec, expand
from richness.sweep.store import Store, config_hash
from richness.train import RunOutcome, run

__all__ = ["run_sweep"]

WORKER_DIED = "the worker process running this config died (killed, out of memory or crashed)"


def _label(config: dict[str, Any]) -> str:
    point = config["preset"] or f"r={config['r']:g} {config['gauge']}"
    return f"n={config['width']} {point} seed={config['seed']}"


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _local(configs: list[dict], workers: int, threads: int) -> Iterator[tuple[dict, RunOutcome]]:
    """Runs configs on `workers` spawned processes; yields (config, outcome) as they finish.

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool: every
    unfinished run is then retried alone in a fresh process, and one that kills that process
    too is reported as failed, so one bad run cannot stop the sweep.
    """
    if workers <= 1:
        _worker_init(threads)
        for config in configs:
            yield config, run(config)
        return
    context = multiprocessing.get_context("spawn")  # fork after torch threads start can hang

    def pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            n, mp_context=context, initializer=_worker_init, initargs=(threads,)
        )

    retry: list[dict] = []
    with pool(workers) as executor:
        pending = {executor.submit(run, config): config for config in configs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                config = pending.pop(future)
                try:
                    yield config, future.result()
                except BrokenProcessPool:
                    retry.append(config)
    # after a worker died, every run that was unfinished is retried alone, one process each
    # time, so the run that kills its process is found and failed, and the others finish
    for config in retry:
        with pool(1) as executor:
            try:
                yield config, executor.submit(run, config).result()
            except BrokenProcessPool:
                yield config, RunOutcome(status="failed", error=WORKER_DIED)


def _ray(
    configs: list[dict], address: str | None, threads: int
) -> Iterator[tuple[dict, RunOutcome]]:
    """Runs configs as Ray tasks (retried if a worker dies); yields outcomes as they finish."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)

    @ray.remote(max_retries=2, num_cpus=1)
    def remote_run(config: dict) -> RunOutcome:
        _worker_init(threads)
        return run(config)

    try:
        refs = {remote_run.remote(config): config for config in configs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                yield refs.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(
    spec: SweepSpec,
    db: str | os.PathLike[str],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int = 1,
    progress: bool = True,
    on_outcome: Callable[[dict, RunOutcome], None] | None = None,
) -> dict[str, int]:
    """Runs every run of `spec` that the store at `db` has not finished.

    Args:
      spec: a validated SweepSpec.
      db: path of the SQLite store (created if missing).
      backend: "local" (processes on this machine) or "ray".
      workers: local processes (default: all cores, at most the number of runs).
      address: Ray cluster address (None starts a local cluster).
      threads: intra-op threads per run (1 per process uses every core without oversubscribing).
      progress: show a progress bar (runs done / total, ETA, the run that just finished).
      on_outcome: called with each (config, outcome) after it is stored.

    Returns:
      Counts: {"total", "skipped", "done", "diverged", "failed"}.

    Raises:
      ValueError: unknown backend.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend={backend!r} is not one of 'local', 'ray'")
    store = Store(db)
    configs = expand(spec)
    ids = store.add_pending(configs, sweep=spec.name)
    todo_ids = set(store.pending(ids))
    todo = [c for c, i in zip(configs, ids, strict=True) if i in todo_ids]
    counts = {
        "total": len(configs),
        "skipped": len(configs) - len(todo),
        "done": 0,
        "diverged": 0,
        "failed": 0,
    }
    for config in todo:
        store.mark_running(config_hash(config), config, sweep=spec.name)
    if backend == "local":
        n = min(workers or os.cpu_count() or 1, max(1, len(todo)))
        outcomes = _local(todo, n, threads)
    else:
        outcomes = _ray(todo, address, threads)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(spec.name, total=len(configs), completed=counts["skipped"], last="")
        for config, outcome in outcomes:
            store.finish(
                config_hash(config),
                outcome.status,
                outcome.rows,
                outcome.seconds,
                diverged_step=outcome.diverged_step,
                error=outcome.error,
            )
            counts[outcome.status] += 1
            bar.update(task, advance=1, last=f"{_label(config)}: {outcome.status}")
            if on_outcome is not None:
                on_outcome(config, outcome)
    return counts
