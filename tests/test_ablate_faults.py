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
    """The micro grid uninterrupted, computed by 2 parallel workers through the cluster
    executor in submitit's local mode (its jobs are local processes); the plain local
    executor runs in the `train.processes` test below."""
    pytest.importorskip("submitit")
    folder = tmp_path_factory.mktemp("reference")
    done = ablate(folder, "--jobs", "2", "--executor", "submitit-local")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert list((folder / "work" / "jobs" / "submitit").iterdir())  # submitit's own files
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
def test_training_in_two_processes_inside_the_runner(tmp_path, reference):
    """`train.processes: 2` at half the per-process batch: the same global batch, so the
    same per-step losses as the one-process cells (torchrun, gloo). The base evaluation
    and the cell run in 2 local workers (`--jobs 2`)."""
    text = MICRO.replace("batch_size: 2, max_length", "batch_size: 1, processes: 2, max_length")
    text = text.replace("strategy: [dpo_count, rpo]", "strategy: [rpo]")
    (tmp_path / "micro.yaml").write_text(text)
    config = tmp_path / "micro.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "report"), "--jobs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "work" / "jobs").glob("*.json")) == [
        "0.json",
        "1.json",
    ]
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
        (["--out", "."], "holds files that are no report's"),  # would be replaced whole
        (["--jobs", "0"], "--jobs: 0 is not >= 1"),
        (["--jobs", "2", "--executor-params", "[1]"], "--executor-params: expected a JSON object"),
        (["--executor-params", "{oops"], "--executor-params: Expecting property name"),
    ],
)
def test_bad_job_options_exit_2_with_a_message(tmp_path, capsys, args, message):
    from rpo_bench.ablate.__main__ import main

    (tmp_path / "micro.yaml").write_text(MICRO)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(tmp_path / "micro.yaml"), "--work", str(tmp_path / "w"), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


# --- judge endpoint faults in the middle of an ablation ------------------------------------

KEY_ENV = "RPO_TEST_ABLATE_JUDGE_KEY"
SECRET = "sk-ablate-fault-0123456789abcdef"


@pytest.mark.slow
def test_judge_faults_mid_ablation_are_retried_counted_and_never_scored(tmp_path):
    """An LLM judge (OpenAI-compatible, a fake on 127.0.0.1) judging the sampling stage:
    each fault is retried with backoff and counted; a response never judged gets no verdict,
    its turn no pairs; the key reaches no file and no output."""
    from fake_judge_server import ECHO_AUTH, FakeJudgeServer, Reply, official_json

    from rpo_bench.data.verifiable import build

    tasks = [c.turns[0].task for c in build(8, 1, 3, 0, "train", "user")]
    good = Reply(content=official_json({"1": "是", "2": "否", "3": "是"}))  # SysBench format
    faults = [  # (replies, the turn's outcome, calls for its 2 responses)
        ([Reply(429, body="{}", headers={"Retry-After": "0.05"}), good], "judged", 3),
        ([Reply(500, body='{"error": "boom"}'), good], "judged", 3),
        ([Reply(content=good.content, delay=1.5), good], "judged", 3),  # a timeout
        ([Reply(reset=True), good], "judged", 3),
        ([Reply(body='{"choices": [{"message": {"content": "{\\"verd'), good], "judged", 3),
        ([Reply(content=official_json({"1": "是", "4": "否"})), good], "judged", 3),  # wrong ids
        ([Reply(content=f"all fine {ECHO_AUTH}")], "unjudged", 6),  # never parses: 3 attempts
    ]
    script = {task[:40]: replies for task, (replies, _, _) in zip(tasks, faults, strict=False)}
    with FakeJudgeServer(script) as server:
        judge = (f"judge: {{kind: openai, model: fake, base_url: '{server.url}', options: "
                 f"{{api_key_env: {KEY_ENV}, timeout: 1.0, max_attempts: 3, backoff: 0.01, "
                 "max_backoff: 0.05, concurrency: 2}}\n")  # fmt: skip
        text = MICRO.replace("n_conversations: 4, heldout_conversations: 2",
                             "n_conversations: 8, heldout_conversations: 1")  # fmt: skip
        text = text.replace("n: 4,", "n: 2,").replace("[dpo_count, rpo]", "[rpo]") + judge
        text = text.replace("tasks: [heldout, ifeval_local]", "tasks: [heldout]")
        config = tmp_path / "judged.yaml"
        config.write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
             "--work", str(tmp_path / "work"), "--out", str(tmp_path / "report")],
            cwd=REPO, env={**os.environ, KEY_ENV: SECRET}, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        calls = {marker: server.count(marker) for marker in script}
    assert done.returncode == 0, done.stderr[-3000:]
    (samples,) = (tmp_path / "work" / "samples").iterdir()
    rows = {r["task"][:40]: r for r in map(json.loads, (samples / "samples.jsonl").open())}
    for marker, (_, outcome, expected) in zip(script, faults, strict=True):
        assert calls[marker] == expected, (marker, calls)
        row = rows[marker]
        if outcome == "unjudged":  # no verdict at all: neither a pass nor a fail
            assert row["unjudged"] == [0, 1]
            assert [r["verdicts"] for r in row["responses"]] == [None, None]
        else:
            assert "unjudged" not in row
            assert [r["verdicts"] for r in row["responses"]] == [[True, False, True]] * 2
    out = results(tmp_path)
    assert out["judging"]["smollm2-135m"] == {
        "judge": "llm:fake", "responses": 16, "judged": 14, "unjudged": 2,
        "retried": 6, "attempts": 14 + 6 + 2 * 3,  # 6 judged after one retry; 2 x 3 failed
    }  # fmt: skip
    (cell,) = out["cells"]
    assert (cell["pairs"]["turns_unjudged"], cell["pairs"]["responses_unjudged"]) == (1, 2)
    assert cell["pairs"]["turns"] == 7  # the judged turns, all the pairs are built from
    report = (tmp_path / "report" / "report.md").read_text()
    assert "2 unjudged (their turns get no pairs)" in report
    # nothing half-written, and the key nowhere: stages, judge cache, log, report, output
    assert not list(tmp_path.glob("work/*/*.partial"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("judge.sqlite") for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in done.stdout + done.stderr
