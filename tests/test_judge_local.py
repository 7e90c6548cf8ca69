"""A judge against a server on this machine: request settings derived from the server, a
reply cut off at a token limit named as such and never retried unchanged, every raw answer
kept, and each turn stored as soon as it is judged (a run that stops mid-session keeps what
it judged). The server is the scripted one (tests/fake_judge_server.py); the same paths
against llama.cpp's real server are in tests/test_local_server.py."""

from __future__ import annotations

import logging

import pytest
from fake_judge_server import FakeJudgeServer, Reply, verdict_json
from test_judge import GOOD, openai_judge, request

from rpo_bench import openai_client
from rpo_bench.ablate.analysis import _mde
from rpo_bench.evaluate.sysbench.calibrate import agreement
from rpo_bench.judge import JudgeUnavailable
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.openai_client import ChatClient, default_concurrency
from rpo_bench.rollout.openai import OpenAIBackend
from rpo_bench.textcache import prompt_key


@pytest.fixture(autouse=True)
def fresh_props():
    openai_client._PROPS.clear()  # each test's server is new, on a new port
    yield
    openai_client._PROPS.clear()


def test_concurrency_comes_from_the_servers_slots_and_is_logged(caplog):
    caplog.set_level(logging.INFO)
    props = {"total_slots": 3, "default_generation_settings": {"n_ctx": 4096}}
    with FakeJudgeServer(props=props) as server:
        judge = openai_judge(server)
        assert judge.concurrency == 3
    assert "3 parallel requests (the local server's 3 slots)" in caplog.text
    assert "0.1 s per prompt token (local server)" in caplog.text


def test_a_local_server_without_slots_gets_the_local_default_and_a_set_value_wins(caplog):
    caplog.set_level(logging.INFO)
    with FakeJudgeServer() as server:  # /props answers 404, as vLLM's server does
        assert openai_judge(server).concurrency == openai_client.LOCAL_CONCURRENCY == 2
        assert openai_judge(server, concurrency=5).concurrency == 5
        backend = OpenAIBackend("fake", server.url)
        assert backend.concurrency == 2 and backend.client.timeout is None
    assert "2 parallel requests (the default for a local server that reports no slots)" in (
        caplog.text
    )
    # A remote endpoint is never probed: the remote default, a fixed timeout.
    assert default_concurrency("https://api.example.com/v1", remote=8) == (
        8,
        "the default for a remote endpoint",
    )
    assert OpenAIBackend("m", "https://api.example.com/v1").client.timeout == 300.0


def test_the_local_timeout_scales_with_the_prompt():
    local = ChatClient("m", "http://127.0.0.1:9/v1")
    remote = ChatClient("m", "https://api.example.com/v1")
    short, long = (
        [{"role": "user", "content": "x" * 400}],
        [{"role": "user", "content": "x" * 16000}],
    )
    assert local.timeout_for(short) == pytest.approx(120 + 0.1 * 100)
    assert local.timeout_for(long) == pytest.approx(120 + 0.1 * 4000)
    assert remote.timeout_for(long) == openai_client.REMOTE_TIMEOUT
    assert ChatClient("m", "http://localhost:9/v1", timeout=7).timeout_for(long) == 7


def test_a_cut_off_reply_is_named_not_retried_and_kept(tmp_path):
    cut = Reply(
        content='{"reasoning": "逐条核对，第一条',
        finish_reason="length",
        usage={"prompt_tokens": 4000, "completion_tokens": 96},
    )
    props = {"total_slots": 1, "default_generation_settings": {"n_ctx": 4096}}
    cache = tmp_path / "judge.sqlite"
    with FakeJudgeServer({"[cut]": [cut]}, props=props) as server:
        judgement = openai_judge(server, cache=cache).judge(request("[cut]"))
        calls = len(server.requests)
    assert calls == 1  # never retried unchanged
    assert judgement.failure == "cut_off"
    assert judgement.error == "reply cut off at 96 tokens (context 4096)"
    stored = JudgeCache(cache)
    key = prompt_key(openai_judge(server).prompt.messages(request("[cut]")))
    assert stored.get_answers(f"openai|fake-judge|{server.url}/chat/completions", key) == [
        cut.content
    ]


def test_without_props_the_context_is_what_the_request_used():
    cut = Reply(
        content="…", finish_reason="length", usage={"prompt_tokens": 30, "completion_tokens": 8}
    )
    with FakeJudgeServer({"[cut]": [cut]}) as server:
        judgement = openai_judge(server).judge(request("[cut]"))
    assert judgement.error == "reply cut off at 8 tokens (context 38)"


def test_a_reply_that_parses_late_keeps_the_failed_answers_too(tmp_path):
    cache = tmp_path / "judge.sqlite"
    script = {
        "[late]": [Reply(content="not json"), Reply(content="still not"), Reply(content=GOOD)]
    }
    with FakeJudgeServer(script) as server:
        judge = openai_judge(server, cache=cache)
        judgement = judge.judge(request("[late]"))
    assert judgement.error is None and judgement.attempts == 3
    key = prompt_key(judge.prompt.messages(request("[late]")))
    assert JudgeCache(cache).get_answers(judge.identity, key) == ["not json", "still not", GOOD]


def test_each_turn_is_stored_as_it_is_judged(tmp_path):
    """A run that stops at its third turn (the server refuses from then on) keeps the first
    two; the run after it asks only for the third."""
    cache = tmp_path / "judge.sqlite"
    turns = [request(f"[turn {k}]") for k in (1, 2, 3)]
    script = {"[turn 3]": [Reply(401, body='{"error": "key revoked"}'), Reply(content=GOOD)]}
    with FakeJudgeServer(script) as server:  # one server: the cache is per endpoint
        with pytest.raises(JudgeUnavailable):
            openai_judge(server, cache=cache, concurrency=1).judge_many(turns)
        first = [r["prompt"].split("推荐一个景点 ")[-1][:8] for r in server.requests]
        judged = openai_judge(server, cache=cache, concurrency=1).judge_many(turns)
        asked = [r["prompt"].split("推荐一个景点 ")[-1][:8] for r in server.requests]
    assert first == ["[turn 1]", "[turn 2]", "[turn 3]"]
    assert asked == [*first, "[turn 3]"]
    assert [j.cached for j in judged] == [True, True, False]
    assert all(j.error is None for j in judged)


def test_failures_are_counted_by_kind():
    script = {
        "[cut]": [Reply(content="{", finish_reason="length")],
        "[garbage]": [Reply(content="no verdicts here")],
        "[good]": [Reply(content=verdict_json({"1": "是", "2": "否", "3": "是"}))],
    }
    with FakeJudgeServer(script) as server:
        judged = openai_judge(server, max_attempts=2).judge_many(
            [request("[cut]"), request("[garbage]"), request("[good]")]
        )
    assert [j.failure for j in judged] == ["cut_off", "unparseable", None]


def test_a_prompt_longer_than_the_context_is_named_too_long_and_not_retried():
    # llama.cpp's server refuses it with HTTP 400 and this body (exceed_context_size_error).
    refusal = Reply(
        400,
        body='{"error": {"code": 400, "message": "the request exceeds the available context '
        'size, try increasing it", "type": "exceed_context_size_error"}}',
    )
    script = {"[long]": [refusal], "[bad]": [Reply(400, body='{"error": "bad request"}')]}
    with FakeJudgeServer(script) as server:
        judged = openai_judge(server).judge_many([request("[long]"), request("[bad]")])
        calls = len(server.requests)
    assert [j.failure for j in judged] == ["too_long", "request"]
    assert calls == 2 and "exceeds the available context size" in judged[0].error


def test_a_local_llama_cpp_judge_keys_its_cache_by_model_file_not_port(tmp_path):
    """A restarted server gets a new port; the turns it judged before stay judged."""
    props = {"total_slots": 1, "model_path": "/cache/gguf/qwen2.5-coder-0.5b.gguf"}
    cache = tmp_path / "judge.sqlite"
    with FakeJudgeServer(props=props) as first:
        judge = openai_judge(first, cache=cache)
        assert judge.judge(request("[a]")).cached is False
    with FakeJudgeServer(props=props) as second:
        again = openai_judge(second, cache=cache)
        assert again.identity == judge.identity == "openai|fake-judge|local:qwen2.5-coder-0.5b.gguf"
        assert again.judge(request("[a]")).cached is True and not second.requests
    # Options that change the answer key it too; a server without /props keys by URL.
    with FakeJudgeServer() as plain:
        assert openai_judge(plain).identity == f"openai|fake-judge|{plain.url}/chat/completions"
        assert openai_judge(plain, max_tokens=64).identity.endswith("|max_tokens=64")


def test_kappa_is_rounded_and_an_mde_of_zero_stays_zero():
    # A judge that always says no against a mixed reference: kappa is 0 exactly, not -8e-17.
    pairs = [(False, True), (False, False), (False, True)] * 7
    assert str(agreement(pairs)["kappa"]) == "0.0"
    assert _mde({"mde_points": 0.0}) == 0.0
    assert _mde({"mde_points": None}) == float("inf")
