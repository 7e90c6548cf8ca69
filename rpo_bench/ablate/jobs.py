"""Grid cells in parallel: N workers over the locked stage store, on this machine or on a
cluster through submitit (the `cluster` extra).

The grid's independent units (each model's base evaluation, then the cells; `Runner.tasks`)
are dealt out round-robin: worker i computes units i, i+N, ... A stage that two units share
(conversations, samples, judged) is computed by whichever worker comes first; the others
wait on its lock and reuse it (`ablate.store`). The parent then runs the grid once more,
reusing every stage, and writes the report, so the numbers are those of one process.

Each worker writes `<work>/jobs/<i>.json` (the stages it computed) when it is done; a
worker that fails leaves none, and the parent stops naming it and its output file. On a
cluster the work folder must be on a file system all nodes share, with working file locks.
submitit pickles each job, a command line, into `<work>/jobs/submitit`; results come back
through the JSON files, so nothing a job wrote is unpickled here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rpo_bench.files import write_atomic

EXECUTORS = ("local", "submitit-local", "slurm")


def share(tasks: list, index: int, jobs: int) -> list:
    """Worker `index`'s units of `jobs` workers."""
    return tasks[index::jobs]


def done_file(work: Path, index: int) -> Path:
    return work / "jobs" / f"{index}.json"


def write_done(work: Path, index: int, computed: list[str], stale: list[str]) -> None:
    write_atomic(done_file(work, index), json.dumps({"computed": computed, "stale": stale}))


def worker_command(args: list[str], index: int, jobs: int) -> list[str]:
    """The command of worker `index`: this run's own arguments, as one worker."""
    return [sys.executable, "-m", "rpo_bench.ablate", *args, "--worker", f"{index}/{jobs}"]


def run_workers(
    args: list[str], work: Path, jobs: int, executor: str = "local", params: dict | None = None
) -> tuple[list[str], list[str]]:
    """Run `jobs` workers to completion; the stages they computed and the stale ones they
    reused. A failed worker is a RuntimeError naming its output."""
    folder = work / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(jobs):  # a finished file from an earlier run says nothing of this one
        done_file(work, index).unlink(missing_ok=True)
    commands = [worker_command(args, i, jobs) for i in range(jobs)]
    if executor == "local":
        outputs = _run_local(commands, folder)
    else:
        outputs = _run_submitit(commands, folder, executor, params or {})
    computed: list[str] = []
    stale: list[str] = []
    for index, output in enumerate(outputs):
        path = done_file(work, index)
        if not path.exists():
            raise RuntimeError(f"worker {index}/{jobs} failed; its output: {output}")
        report = json.loads(path.read_text())
        computed += report["computed"]
        stale += [s for s in report["stale"] if s not in stale]
    return computed, stale


def _run_local(commands: list[list[str]], folder: Path) -> list[Path]:
    """Subprocesses on this machine, the cores split between them; output to files."""
    threads = str(max(1, (os.cpu_count() or 1) // len(commands)))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    outputs, procs = [], []
    for index, cmd in enumerate(commands):
        output = folder / f"{index}.out"
        outputs.append(output)
        with output.open("w") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        for proc in procs:
            proc.wait()
    finally:  # interrupted: no worker outlives the run
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return outputs


def _run_submitit(
    commands: list[list[str]], folder: Path, executor: str, params: dict[str, Any]
) -> list[Path]:
    """One submitit job per worker: Slurm, or submitit's local executor (its test mode)."""
    try:
        import submitit
    except ImportError:
        raise RuntimeError(
            f"--executor {executor} needs submitit: pip install -e '.[cluster]'"
        ) from None
    cluster = "local" if executor == "submitit-local" else "slurm"
    ex = submitit.AutoExecutor(folder=folder / "submitit", cluster=cluster)
    ex.update_parameters(**{"timeout_min": 24 * 60, **params})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cwd = os.getcwd()  # relative --config and --work paths mean the same to every job
    jobs = [ex.submit(submitit.helpers.CommandFunction(cmd, cwd=cwd, env=env)) for cmd in commands]
    while not all(job.done() for job in jobs):
        time.sleep(1)
    return [Path(job.paths.stdout) for job in jobs]
