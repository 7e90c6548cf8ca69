"""Endpoints that cannot work stop a run in seconds, with a message and exit code 2; a run in
which nothing could be judged never ends as a NaN result with exit 0."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_judge_server import FakeJudgeServer, Reply

from rpo_bench.openai_client import PING, ChatClient, EndpointUnavailable

REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "RPO_BENCH_TEST_FAIL_FAST_KEY"
DATA = REPO.parent / "shared" / "data"


def closed_port() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def slow_client(base_url: str) -> ChatClient:
    """A client that would spend minutes retrying what it retries."""
    return ChatClient("m", base_url, api_key_env=KEY_ENV, max_attempts=10, backoff=30.0)


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        (None, "nothing is listening there (connection refused)"),
        ("http://no-such-host.invalid/v1", "its host name does not resolve"),
    ],
)
def test_an_unreachable_endpoint_is_not_retried(base_url, why):
    client = slow_client(base_url or closed_port())
    started = time.monotonic()
    for call in (client.check, lambda: client.request([{"role": "user", "content": "hi"}])):
        with pytest.raises(EndpointUnavailable, match="check base_url") as err:
            call()
        assert why in str(err.value) and client.endpoint in str(err.value)
    assert time.monotonic() - started < 10  # one try each, no backoff


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "unauthorised"), (403, "forbidden"), (404, "not found (model or URL)")],
)
def test_preflight_stops_on_a_status_that_cannot_heal(status, message):
    with FakeJudgeServer({PING: [Reply(status, body='{"error": "no"}')]}) as server:
        with pytest.raises(EndpointUnavailable, match=re.escape(message)):
            slow_client(server.url).check()
        assert server.count(PING) == 1


def test_preflight_passes_a_busy_server_and_asks_once_per_process(caplog):
    with FakeJudgeServer({PING: [Reply(503, body="{}"), Reply(content="OK")]}) as server:
        client = slow_client(server.url)
        client.check()  # 503: the endpoint exists; the run's own retries wait for it
        assert "pre-flight answered HTTP 503" in caplog.text
        client.check()
        client.check()  # answered: not asked again
        assert server.count(PING) == 2


def test_preflight_of_the_openai_api_needs_its_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    client = ChatClient("gpt-4o", "https://api.openai.com/v1", api_key_env=KEY_ENV)
    with pytest.raises(EndpointUnavailable, match=f"\\${KEY_ENV} is not set"):
        client.check()  # said before any request (this machine cannot reach it anyway)


def sysbench(metadata: dict, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`lm_eval` on one SysBench session with the embedded model, as a user runs it."""
    from rpo_bench.models import prepare

    # SysBench's shortest session (system_id 289), greedy, 8 new tokens a turn: the
    # embedded model reads Chinese at ~2 tokens a character, and a slow CPU pays for each.
    metadata = {"decoding": "greedy", **metadata}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
           f"pretrained={prepare()}", "--include_path", str(REPO / "tasks"), "--tasks",
           "sysbench_multiturn", "--samples", '{"sysbench_multiturn": [288]}',
           "--apply_chat_template", "--gen_kwargs", "max_gen_toks=8",
           "--metadata", json.dumps(metadata)]  # fmt: skip
    env = {**os.environ, "RPO_BENCH_DATA": str(DATA), "RPO_BENCH_CACHE": str(tmp_path),
           KEY_ENV: "sk-test"}  # fmt: skip
    env.pop("HF_DATASETS_OFFLINE", None)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


needs_sysbench = pytest.mark.skipif(
    not (DATA / "sysbench" / "sysbench_eval.jsonl").exists(), reason="SysBench data not here"
)


@needs_sysbench
def test_sysbench_with_nothing_listening_stops_before_generating(tmp_path):
    url = closed_port()
    args = {"judge_args": {"base_url": url, "model": "judge", "api_key_env": KEY_ENV,
                           "max_attempts": 10, "backoff": 60}}  # fmt: skip
    started = time.monotonic()
    done = sysbench(args, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    # retried, its 9 waits of 60 s would take 540 s: what it took is start-up and model load
    assert time.monotonic() - started < 300
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sysbench_multiturn: judge judge: http://127.0.0.1:")
    assert "nothing is listening there (connection refused)" in last
    assert "Traceback" not in done.stderr


@needs_sysbench
def test_sysbench_in_which_no_turn_parses_exits_2_not_nan(tmp_path):
    with FakeJudgeServer(respond=lambda prompt: Reply(content="I cannot judge this.")) as server:
        judge = {"base_url": server.url, "model": "judge", "api_key_env": KEY_ENV,
                 "max_attempts": 2, "backoff": 0.01}  # fmt: skip
        args = {"judge_args": judge}
        done = sysbench(args, tmp_path, timeout=600)
        asked = len(server.requests)
    assert done.returncode == 2, done.stderr[-2000:]
    assert asked == 5 * 2  # every turn asked, each twice
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: sysbench_multiturn: none of the 5 turns could be judged")
    assert "Traceback" not in done.stderr and "nan" not in done.stdout.lower()
