"""Run a sweep: the pending runs of a spec, on local processes or Ray, into one store.

Both backends execute jobs of `richness.train.run_many(configs)`: the runs of a job
share a width and everything but seed, table and η0, and train as one vectorized ensemble
(or one by one where they cannot, each saying why); it never raises: failures and
divergences come back as outcomes. The driver writes each run's outcome to the store in one
transaction, so a killed sweep resumes exactly where it stopped: finished runs are skipped, a
run that was `running` when the sweep died is redone, nothing is stored twice.

Jobs are cut for load balance: an ensemble costs about members · width² per step, and each
job gets at most 1/(2·workers) of the sweep's total (and at most `MAX_MEMBERS` runs), so the
workers finish together; the costliest jobs go first.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from richness.config import RunConfig
from richness.sweep.spec import SweepSpec, expand
from richness.sweep.store import Store, config_hash
from richness.train import RunOutcome, run, run_many

__all__ = ["MAX_MEMBERS", "jobs_of", "run_sweep"]

MAX_MEMBERS = 64
"""The most runs one vectorized job trains at once."""

WORKER_DIED = "the worker process running this config died (killed, out of memory or crashed)"


def _cost(config: RunConfig) -> int:
    return config.width**2


def jobs_of(configs: list[RunConfig], workers: int, ensemble: bool = True) -> list[list[RunConfig]]:
    """Configs grouped into jobs: ensembles of runs that can train together, cut to balance.

    Args:
      configs: resolved run configs.
      workers: how many jobs run at once.
      ensemble: False gives one job per run (every run trained alone).

    Returns:
      Jobs, costliest first; every config in exactly one job.
    """
    if not ensemble:
        return sorted(([c] for c in configs), key=lambda job: -_cost(job[0]))
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(config.ensemble_key(), []).append(config)
    share = sum(map(_cost, configs)) / (2 * max(1, workers))
    jobs = []
    for group in groups.values():
        size = int(min(MAX_MEMBERS, max(1, share // _cost(group[0]))))
        jobs += [group[i : i + size] for i in range(0, len(group), size)]
    return sorted(jobs, key=lambda job: -len(job) * _cost(job[0]))


def _worker_init(threads: int, parent: int | None = None) -> None:
    """Sets a worker's intra-op threads; with `parent` (the driver's pid), dies with it."""
    import torch

    torch.set_num_threads(threads)
    if parent is not None:
        _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """Makes this process exit when process `parent` dies, so a killed driver leaves no workers.

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) has the kernel kill us when the thread that spawned
    us exits (the pool spawns from the driver's thread that submits jobs). Elsewhere, or if prctl
    fails, a daemon thread polls for it (`_poll_parent`). A parent already dead before the
    prctl call is caught by the getppid() check after it.
    """
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:
                os._exit(1)
            return
    _poll_parent(parent)


def _poll_parent(parent: int, interval: float = 0.5) -> None:
    """Starts a daemon thread that exits the process once its parent is no longer `parent`.

    Portable: an orphan is reparented (to init or a subreaper), so getppid() changes.
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="richness-parent-watch", daemon=True).start()


def _local(
    jobs: list[list[RunConfig]], workers: int, threads: int
) -> Iterator[tuple[RunConfig, RunOutcome]]:
    """Runs jobs on `workers` spawned processes; yields (config, outcome) as they finish.

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool: every
    run of an unfinished job is then retried alone in a fresh process, and one that kills that
    process too is reported as failed, so one bad run cannot stop the sweep. Workers exit when
    the driver dies (`_exit_with_parent`): a `kill -9` of the sweep leaves none behind.
    """
    if workers <= 1:
        _worker_init(threads)
        for job in jobs:
            yield from zip(job, run_many(job), strict=True)
        return
    context = multiprocessing.get_context("spawn")  # fork after torch threads start can hang

    def pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            n, mp_context=context, initializer=_worker_init, initargs=(threads, os.getpid())
        )

    retry: list[RunConfig] = []
    with pool(workers) as executor:
        pending = {executor.submit(run_many, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    yield from zip(job, future.result(), strict=True)
                except BrokenProcessPool:
                    retry += job
    # after a worker died, every run that was unfinished is retried alone, one process each
    # time, so the run that kills its process is found and failed, and the others finish
    for config in retry:
        with pool(1) as executor:
            try:
                yield config, executor.submit(run, config).result()
            except BrokenProcessPool:
                yield config, RunOutcome(status="failed", error=WORKER_DIED)


def _ray(
    jobs: list[list[RunConfig]], address: str | None, threads: int
) -> Iterator[tuple[RunConfig, RunOutcome]]:
    """Runs jobs as Ray tasks (retried if a worker dies); yields outcomes as they finish."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)

    @ray.remote(max_retries=2, num_cpus=1)
    def remote_job(job: list[RunConfig]) -> list[RunOutcome]:
        _worker_init(threads)
        return run_many(job)

    try:
        refs = {remote_job.remote(job): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                yield from zip(refs.pop(ref), ray.get(ref), strict=True)
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
    ensemble: bool = True,
    progress: bool = True,
    on_outcome: Callable[[RunConfig, RunOutcome], None] | None = None,
) -> dict[str, int]:
    """Runs every run of `spec` that the store at `db` has not finished.

    Args:
      spec: a validated SweepSpec.
      db: path of the SQLite store (created if missing).
      backend: "local" (processes on this machine) or "ray".
      workers: local processes (default: all cores, at most the number of runs).
      address: Ray cluster address (None starts a local cluster).
      threads: intra-op threads per run (1 per process uses every core without oversubscribing).
      ensemble: train runs that share a width as vectorized ensembles (`richness.train`);
        False trains every run alone.
      progress: show a progress bar (runs done / total, ETA, the run that just finished).
      on_outcome: called with each (config, outcome) after it is stored.

    Returns:
      Counts: {"total", "skipped", "done", "diverged", "failed"} and, of the runs trained now,
      how many trained in a vectorized ensemble ("ensemble") and how many alone ("alone").

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
        "ensemble": 0,
        "alone": 0,
    }
    for config in todo:
        store.mark_running(config_hash(config), config, sweep=spec.name)
    if backend == "local":
        n = min(workers or os.cpu_count() or 1, max(1, len(todo)))
        jobs = jobs_of(todo, n, ensemble)
        outcomes = _local(jobs, min(n, len(jobs)), threads)
    else:
        ray_workers = workers or os.cpu_count() or 1
        outcomes = _ray(jobs_of(todo, ray_workers, ensemble), address, threads)
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
                path=outcome.path,
                path_reason=outcome.path_reason,
                identity=outcome.identity,
            )
            counts[outcome.status] += 1
            counts[outcome.path] += 1
            bar.update(task, advance=1, last=f"{config.label}: {outcome.status}")
            if on_outcome is not None:
                on_outcome(config, outcome)
    return counts
