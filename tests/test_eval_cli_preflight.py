"""`rpo-bench eval` and `rpo-lm-eval` stop before the model loads, with exit code 2, one
message and no traceback, on a misspelled task name (the valid ones listed, a close match
offered) and on Multi-IF data that is neither local nor reachable (no hub retries).

The model given is an empty folder: reaching it would end in a different error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager

from rpo_bench.evaluate import preflight

from conftest import REPO

RPO_BENCH = [sys.executable, "-m", "rpo_bench.cli", "eval"]
RPO_LM_EVAL = [os.path.join(os.path.dirname(sys.executable), "rpo-lm-eval")]
TASKS = str(REPO / "tasks")
OURS = ["ifbench", "ifeval_local", "multi_if", "multi_if_chinese", "multi_if_english"]
MULTI_IF_ADVICE = "Put multiIF_20241018.csv in $RPO_BENCH_DATA/multi_if/"


def run(
    cmd: list[str], tmp_path: Path, **env: str | None
) -> tuple[subprocess.CompletedProcess, float]:
    """`cmd` in `tmp_path`, RPO_BENCH_DATA an empty folder, `env` set (None: unset)."""
    (tmp_path / "no_data").mkdir(exist_ok=True)
    environ = {**os.environ, "RPO_BENCH_DATA": str(tmp_path / "no_data"), **env}
    environ = {k: v for k, v in environ.items() if v is not None}
    started = time.monotonic()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=tmp_path, env=environ, timeout=300
    )
    return proc, time.monotonic() - started


def assert_refused(proc: subprocess.CompletedProcess, prog: str, *messages: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Retrying" not in proc.stderr, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"{prog}: error: "), error
    for message in messages:
        assert message in error, error


def model_dir(tmp_path: Path) -> str:
    (tmp_path / "model").mkdir()
    return str(tmp_path / "model")


def test_rpo_bench_eval_lists_the_tasks_for_a_misspelled_one(tmp_path):
    cmd = [
        *RPO_BENCH,
        "--model",
        model_dir(tmp_path),
        "--tasks",
        "ifbench,ifeval_locl",
        "--out",
        "out",
    ]
    proc, _ = run(cmd, tmp_path)
    assert_refused(
        proc,
        "rpo-bench",
        "unknown task 'ifeval_locl' (did you mean 'ifeval_local'?); valid tasks: ",
        ", ".join(OURS),
        "sysbench_multiturn, or any of",
    )
    assert "'ifbench'" not in proc.stderr  # checked name by name: ifbench is fine
    assert not (tmp_path / "out").exists()


def test_rpo_lm_eval_lists_the_tasks_for_a_misspelled_one(tmp_path):
    cmd = [*RPO_LM_EVAL, "--model", "hf", "--model_args", f"pretrained={model_dir(tmp_path)}",
           "--include_path", TASKS, "--tasks", "ifeval_locl"]  # fmt: skip
    proc, _ = run(cmd, tmp_path)
    assert_refused(
        proc,
        "rpo-lm-eval",
        "unknown task 'ifeval_locl' (did you mean 'ifeval_local'?); valid tasks: ",
        ", ".join(OURS),
    )


def test_the_message_names_every_unknown_task_and_the_missing_include_path():
    ours = TaskManager(include_path=TASKS, include_defaults=False)
    preflight.check_tasks(
        ["ifbench", "multi_if_*", str(REPO / "tasks/ifbench/ifbench.yaml")], TASKS, ours
    )
    with pytest.raises(preflight.UnknownTask) as err:
        preflight.check_tasks(["multi_if_englsh", "ifbench", "zzz"], TASKS, ours)
    assert str(err.value).startswith(
        "unknown tasks 'multi_if_englsh' (did you mean 'multi_if_english'?), 'zzz'; "
        f"valid tasks: {', '.join(OURS)}"
    )
    # Without --include_path lm-eval does not know rpo_bench's tasks: say how to add them.
    with pytest.raises(preflight.UnknownTask) as err:
        preflight.check_tasks(["ifeval_local"], None, TaskManager(include_defaults=False))
    assert str(err.value).startswith(
        f"unknown task 'ifeval_local'; valid tasks: none; with --include_path {TASKS}: ifbench, "
    )


def test_multi_if_without_data_offline_stops_at_once(tmp_path):
    cmd = [*RPO_BENCH, "--model", model_dir(tmp_path), "--tasks", "multi_if", "--out", "out"]
    proc, seconds = run(cmd, tmp_path, HF_HUB_OFFLINE="1")
    assert_refused(proc, "rpo-bench", "Multi-IF data not found", "HF_HUB_OFFLINE", MULTI_IF_ADVICE)
    assert seconds < 20


def test_multi_if_without_data_and_no_hub_stops_after_one_quick_try(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on: the hub refuses at once
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cmd = [*RPO_LM_EVAL, "--model", "hf", "--model_args", f"pretrained={model_dir(tmp_path)}",
           "--include_path", TASKS, "--tasks", "multi_if_english"]  # fmt: skip
    proc, _ = run(cmd, tmp_path, HF_HUB_OFFLINE=None, HF_ENDPOINT=endpoint)
    assert_refused(proc, "rpo-lm-eval", f"({endpoint} unreachable;", MULTI_IF_ADVICE)
