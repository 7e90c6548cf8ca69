"""An ablation killed with SIGKILL inside every stage kind, and the grid run by parallel
workers: each rerun completes, recomputes no stage that had finished, and the results
equal those of an uninterrupted run.

The kills come from fault points (`rpo_bench.faults`): a stage's work is done and its
folder not yet committed, the latest moment a crash can hit it. The micro grid below has
every stage kind: 2 cells (dpo_count, rpo) that each train one step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

MICRO = """name: micro
data: {n_conversations: 4, heldout_conversations: 2, turns: 1, constraints_per_turn: 3}
sampling: {n: 4, max_new_tokens: 24, batch_size: 16}
pairs: {min_margin: 1, max_pairs_per_turn: 2}
train: {lora: {r: 4, alpha: 8}, lr: 5.0e-4, epochs: 1, batch_size: 2, max_length: 256}
eval: {tasks: [heldout, ifeval_local], limit: 2, max_new_tokens: 12, batch_size: 16,
       bootstrap: 50}
grid: {strategy: [dpo_count, rpo], noise: [0.0], seed: [0]}
"""
# The fault points in the order a run first reaches them: the held-out conversations, the
# base model's evaluation, then the first cell's stages, a trained model's evaluation and
# the report.
POINTS = ("stage:conversations", "stage:eval", "stage:samples", "stage:judged", "stage:pairs",
          "stage:train", "stage:eval", "report")  # fmt: skip


def ablate(folder: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    config = folder / "micro.yaml"
    config.write_text(MICRO)
    env = {k: v for k, v in os.environ.items() if k != "RPO_BENCH_FAULT"}
    if fault:
        env["RPO_BENCH_FAULT"] = f"kill:{fault}"
    cmd = [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
           "--work", str(folder / "work"), "--out", str(folder / "report"), *args]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def finished(work: Path) -> dict[str, int]:
    """Every committed stage folder and when its timing was written (changes if recomputed)."""
    return {
        f"{t.parent.parent.name}/{t.parent.name}": t.stat().st_mtime_ns
        for t in work.glob("*/*/timing.json")
        if "." not in t.parent.name
    }


def comparable(results: dict) -> str:
    """results.json without what differs between any two runs: times, which run computed
    what, and where its stage store is."""
    cells = [{**c, "train": {k: v for k, v in c["train"].items() if k != "seconds"}}
             for c in results["cells"]]  # fmt: skip
    rest = {k: v for k, v in results.items() if k not in ("provenance", "cells")}
    text = json.dumps({**rest, "cells": cells}, sort_keys=True)
    return text.replace(results["work"], "<work>")


def results(folder: Path) -> dict:
    return {**json.loads((folder / "report" / "results.json").read_text()),
            "work": str(folder / "work")}  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The micro grid uninterrupted, computed by 2 parallel workers (`--jobs 2`)."""
    folder = tmp_path_factory.mktemp("reference")
    done = ablate(folder, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return results(folder)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """One process at a time: killed at each fault point in turn, each rerun with --resume;
    then a last rerun without a fault."""
    folder = tmp_path_factory.mktemp("chain")
    work, steps = folder / "work", []
    for point in POINTS:
        before = finished(work) if work.exists() else {}
        done = ablate(folder, "--resume", fault=point)
        steps.append({"point": point, "returncode": done.returncode, "before": before,
                      "after": finished(work), "stderr": done.stderr[-2000:],
                      "partials": sorted(p.parent.name for p in work.glob("*/*.partial")),
                      "report": (folder / "report").exists(),
                      "report_tmp": sorted(p.name for p in folder.glob(".report-*"))})  # fmt: skip
    before = finished(work)
    done = ablate(folder, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"steps": steps, "before_last": before, "after": finished(work),
            "results": results(folder)}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("step", range(len(POINTS)), ids=[f"{i}-{p}" for i, p in enumerate(POINTS)])
def test_a_kill_inside_each_stage_kind_loses_nothing_finished(chain, step):
    s = chain["steps"][step]
    assert s["returncode"] == -signal.SIGKILL, s["stderr"]
    # nothing that had finished was computed again, or lost
    assert {k: s["after"][k] for k in s["before"]} == s["before"]
    if s["point"] == "report":
        # the report's files are written beside its folder and swapped in whole: killed
        # before the swap, there is no report yet, only the unfinished copy beside it
        assert not s["report"] and len(s["report_tmp"]) == 1
        assert set(chain["after"]) == set(s["after"])  # the last rerun only wrote the report
        return
    # the stage it was killed in is left uncommitted, and the next run commits it
    kind = s["point"].split(":")[1]
    assert kind in s["partials"], s["partials"]
    new = set(chain["steps"][step + 1]["after"]) - set(s["after"])
    assert any(name.startswith(f"{kind}/") for name in new)


@pytest.mark.slow
def test_the_rerun_after_every_kill_equals_an_uninterrupted_run(chain, reference):
    assert comparable(chain["results"]) == comparable(reference)
    computed = chain["results"]["provenance"]["computed_this_run"]
    assert computed == []  # the last rerun only wrote the report
    assert [c["train"]["steps"] for c in reference["cells"]] == [1, 1]  # both cells trained


@pytest.mark.slow
def test_parallel_workers_compute_each_stage_once(reference):
    """`--jobs 2`: the workers' stages together are every stage, none computed twice."""
    computed = reference["provenance"]["computed_this_run"]
    assert len(computed) == len(set(computed))
    kinds = {c.split("/")[0] for c in computed}
    assert kinds == {"conversations", "samples", "judged", "pairs", "train", "eval"}
    assert len([c for c in computed if c.startswith("eval/")]) == 3  # base + 2 trained


@pytest.mark.slow
def test_submitit_workers_give_the_same_results(tmp_path, reference):
    """The cluster executor in submitit's local mode (its jobs are local processes)."""
    pytest.importorskip("submitit")
    done = ablate(tmp_path, "--jobs", "2", "--executor", "submitit-local")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert comparable(results(tmp_path)) == comparable(reference)
    assert list((tmp_path / "work" / "jobs" / "submitit").iterdir())  # submitit's own files


@pytest.mark.slow
def test_training_in_two_processes_inside_the_runner(tmp_path, reference):
    """`train.processes: 2` at half the per-process batch: the same global batch, so the
    same per-step losses as the one-process cells (torchrun, gloo)."""
    text = MICRO.replace("batch_size: 2, max_length", "batch_size: 1, processes: 2, max_length")
    text = text.replace("strategy: [dpo_count, rpo]", "strategy: [rpo]")
    (tmp_path / "micro.yaml").write_text(text)
    config = tmp_path / "micro.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "report")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (cell,) = results(tmp_path)["cells"]
    (one,) = [c for c in reference["cells"] if c["strategy"] == "rpo"]

    def pairs(c: dict) -> dict:  # the pair statistics, less where the store is
        return {k: v for k, v in c["pairs"].items() if k != "samples"}

    assert pairs(cell) == pairs(one)
    losses = [r["loss"] for r in cell["train"]["log"]]
    assert losses == pytest.approx([r["loss"] for r in one["train"]["log"]], abs=1e-5)
    # the trainer's start-up line, printed through the runner into the run's log
    assert (
        "global batch 2 = 1 per process x 1 accumulation x 2 processes"
        in (tmp_path / "work" / "ablate.log").read_text()
    )


def test_worker_arguments_leave_out_the_parents_own():
    from rpo_bench.ablate.__main__ import worker_args

    raw = ["--config", "a.yaml", "--jobs", "2", "--executor=slurm", "--out", "r", "--resume",
           "--executor-params", "{}", "--no-wait", "--work", "w"]  # fmt: skip
    assert worker_args(raw) == ["--config", "a.yaml", "--resume", "--work", "w"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs: 0 is not >= 1"),
        (["--jobs", "2", "--executor-params", "[1]"], "--executor-params: expected a JSON object"),
        (["--executor-params", "{oops"], "--executor-params: Expecting property name"),
    ],
)
def test_bad_job_options_exit_2_with_a_message(tmp_path, args, message):
    done = ablate(tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
