"""Every LLM role against a real server: llama.cpp's `llama-server` (built once per machine
from the pinned sdist, `rpo_bench.local_server`) serving the embedded model's GGUF on
127.0.0.1. The scripted server (fake_judge_server.py) stays for faults a real one cannot
be made to produce on demand.

What a 135M model answers is not the point here: every request, setting and file the
pipeline makes is real. The judge asks for a schema-constrained answer (`json_schema`),
so a model this small still answers in the judge's format.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_freetext_ablation import run_preset

from rpo_bench import faults, local_server, openai_client
from rpo_bench.judge import make_judge
from rpo_bench.judge.types import JudgeRequest
from rpo_bench.models import gguf_file
from rpo_bench.paths import sysbench_file

from conftest import REPO

SLOTS, CONTEXT = 2, 8192  # SmolLM2's trained context, the most llama.cpp gives a slot; SysBench
# turns take ~3 tokens a Chinese character for its tokenizer, so the tests judge turns 1-3
CHECKLIST = [
    {"criteria_id": 1, "criteria_content": "回答须使用中文", "criteria_type": "格式约束"},
    {"criteria_id": 2, "criteria_content": "语气友好", "criteria_type": "风格约束"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with local_server.LocalServer(gguf_file("smollm2-135m"), SLOTS, CONTEXT, log_file=log) as s:
        yield s


@pytest.fixture(scope="module")
def sysbench():
    try:
        return sysbench_file("sysbench_eval.jsonl"), sysbench_file("judge_labels/gpt4o.jsonl")
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (set RPO_BENCH_DATA): {err}")


def turn(marker: str = "") -> JudgeRequest:
    return JudgeRequest("你是旅游助手。", [], f"推荐一个景点{marker}", "推荐黄鹤楼。", CHECKLIST)


def judge(server, **options):
    return make_judge(
        "openai", model="smollm2-135m", base_url=server.url, prompt="rpo_bench", **options
    )


def test_the_judge_takes_its_settings_from_the_server(server):
    openai_client._PROPS.clear()
    assert judge(server).concurrency == SLOTS  # llama.cpp's /props total_slots


def test_a_schema_constrained_answer_parses_and_a_cut_off_one_is_named(server):
    judged = judge(server, json_schema=True, cache=None).judge(turn())
    assert judged.error is None and set(judged.verdicts) == {"1", "2"}, judged.error
    cut = judge(server, json_schema=True, cache=None, max_tokens=6).judge(turn(" (短)"))
    assert cut.failure == "cut_off" and cut.attempts == 1  # never retried unchanged
    n_ctx = openai_client.server_props(server.url)["default_generation_settings"]["n_ctx"]
    assert cut.error == f"reply cut off at 6 tokens (context {n_ctx})" and n_ctx == CONTEXT
    assert cut.outputs and cut.outputs[0].startswith("{")


def calibrate_cmd(server, sysbench, cache, rows) -> list[str]:
    data, labels = sysbench
    return [sys.executable, "-m", "rpo_bench.cli", "judge-calibrate", "--judge", "openai",
            "--base-url", server.url, "--model", "smollm2-135m", "--prompts", "rpo_bench",
            "--json-schema", "--labels", str(labels), "--data", str(data), "--limit", "3",
            "--concurrency", "1", "--cache", str(cache), "--rows", str(rows)]  # fmt: skip


def judged_in(cache) -> int:
    """Turns with a stored answer (judged, or failed with its answer kept)."""
    try:
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_judging_killed_mid_session_resumes_without_judging_a_turn_twice(
    server, sysbench, tmp_path
):
    """kill -9 after two of a session's first three turns are judged; the rerun judges only the
    third, and its rows equal those of a run never killed."""
    killed_cache = tmp_path / "killed.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = calibrate_cmd(server, sysbench, killed_cache, tmp_path / "killed.jsonl")
    # SIGKILL once the second turn is stored (a timer would race five quick judgements)
    killed = subprocess.run(cmd, cwd=REPO, env={**env, faults.ENV: "kill:judged-2"},
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    kept = judged_in(killed_cache)
    assert kept == 2

    cmd = calibrate_cmd(server, sysbench, killed_cache, tmp_path / "resumed.jsonl")
    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["cached_turns"] == kept  # no judged turn asked again

    cmd = calibrate_cmd(server, sysbench, tmp_path / "whole.sqlite", tmp_path / "whole.jsonl")
    whole = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]

    def rows(name: str) -> list[tuple]:
        lines = (tmp_path / name).read_text().splitlines()
        return [(r["system_id"], r["round_index"], r["verdicts"]) for r in map(json.loads, lines)]

    assert rows("resumed.jsonl") == rows("whole.jsonl")
    assert len(rows("whole.jsonl")) == 3


def test_sysbench_multiturn_through_stock_lm_eval_judged_by_the_server(
    server, sysbench, tmp_path, prepared_model_dir
):
    metadata = {
        "judge": "openai",
        "judge_prompt": "rpo_bench",
        "judge_args": {"model": "smollm2-135m", "base_url": server.url, "json_schema": True,
                       "cache": str(tmp_path / "judge.sqlite")},
        "sysbench_file": str(sysbench[0]),
    }  # fmt: skip
    model = prepared_model_dir
    cmd = [str(Path(sys.executable).parent / "rpo-lm-eval"), "--model", "rpo_fast",
           "--model_args", f"pretrained={model},engine=fast", "--tasks", "sysbench_multiturn",
           "--include_path", str(REPO / "tasks"), "--limit", "1", "--apply_chat_template",
           "--gen_kwargs", "max_gen_toks=48", "--metadata", json.dumps(metadata),
           "--output_path", str(tmp_path / "out")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = (tmp_path / "out").rglob("results_*.json")
    metrics = json.loads(results.read_text())["results"]["sysbench_multiturn"]
    assert metrics["judge_errors,none"] == 0 and metrics["judge_cut_off,none"] == 0
    assert 0 <= metrics["csr,none"] <= 100


def test_free_text_smoke_with_every_role_on_the_server(server, tmp_path):
    """smoke_freetext.yaml end to end: judge, triggered filter, reverser and teacher all
    llama-server; exit 0, a report, pairs counted. Every role's answers are bounded (the
    teacher's by sampling.max_new_tokens, the others' by max_tokens): unbounded, the 135M
    model writes until its slot's context is full."""
    started = time.perf_counter()
    done = run_preset(tmp_path, server.url, model="smollm2-135m", timeout=1200)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert (tmp_path / "report" / "report.md").exists()
    judging = results["judging"]["smollm2-135m"]
    assert judging["judged"] + judging["unjudged"] == judging["responses"] > 0
    counts = {c["strategy"]: c["pairs"]["pairs"] for c in results["cells"]}
    assert set(counts) == {"dpo_count", "rpo"}
    print(json.dumps({"seconds": round(seconds), "pairs": counts, "judging": judging}))


def test_repacking_is_off_on_a_cpu_with_amx_only(tmp_path):
    """The pinned build's AMX kernels crash at the first decode (docs/local_server.md)."""
    xeon, epyc = tmp_path / "xeon", tmp_path / "epyc"
    xeon.write_text("flags\t\t: fpu avx512f avx512_vnni amx_bf16 amx_tile amx_int8\n")
    epyc.write_text("flags\t\t: fpu avx512f avx512_vnni avx512_bf16\n")
    assert local_server._repack_options(xeon) == ["--no-repack"]
    assert local_server._repack_options(epyc) == []
    assert local_server._repack_options(tmp_path / "none") == []
