"""The OpenAI-compatible rollout backend against a scripted server on 127.0.0.1: settings
sent, n samples, bounded concurrency, retries, fatal errors, key hygiene, multi-turn play."""

from __future__ import annotations

import pytest
from fake_judge_server import CHOICE, ECHO_AUTH, FakeJudgeServer, Reply

from rpo_bench.openai_client import EndpointUnavailable, RequestFailed
from rpo_bench.rollout.multiturn import Conversation, play
from rpo_bench.rollout.openai import OpenAIBackend
from rpo_bench.rollout.settings import GenerationSettings

SECRET = "sk-test-ROLLOUT-never-shown-42"
KEY_ENV = "RPO_TEST_ROLLOUT_KEY"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def backend(server: FakeJudgeServer, **options) -> OpenAIBackend:
    options = {"api_key_env": KEY_ENV, "backoff": 0.01, "max_backoff": 0.05, **options}
    return OpenAIBackend("fake-model", server.url, **options)


def chat(marker: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": marker}]


def test_replies_in_order_with_settings_sent_and_bounded_concurrency():
    script = {f"[q{i}]": [Reply(content=f"answer {i}", delay=0.1)] for i in range(6)}
    settings = GenerationSettings(temperature=0.7, top_p=0.9, max_new_tokens=33, seed=5)
    with FakeJudgeServer(script) as server:
        replies = backend(server, concurrency=3).generate([chat(m) for m in script], settings)
    assert replies == [[f"answer {i}"] for i in range(6)]
    # Exactly three requests were open at once at the peak: parallel, and bounded.
    assert server.max_in_flight == 3
    for r in server.requests:
        body = r["body"]
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
            0.7,
            0.9,
            33,
            5,
        )
        assert "n" not in body and body["model"] == "fake-model"
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert r["auth"] == f"Bearer {SECRET}" and r["path"] == "/v1/chat/completions"


def test_n_samples_by_parameter_or_by_seeded_repeats():
    settings = GenerationSettings(temperature=1.0, max_new_tokens=8, seed=10, n=3)
    script = {"[a]": [Reply(content=f"sample {CHOICE}")], "[b]": [Reply(content="one")]}
    with FakeJudgeServer(script) as server:
        replies = backend(server).generate([chat("[a]"), chat("[b]")], settings)
        assert replies[0] == ["sample 0", "sample 1", "sample 2"]
        assert replies[1] == ["one", "one", "one"]
        assert [r["body"]["n"] for r in server.requests] == [3, 3]
        server.requests.clear()
        repeated = backend(server, use_n=False, concurrency=1).generate([chat("[a]")], settings)
        assert repeated == [["sample 0"] * 3]
        assert [r["body"]["seed"] for r in server.requests] == [10, 11, 12]
        assert all("n" not in r["body"] for r in server.requests)


def test_transient_errors_are_retried_with_backoff():
    script = {
        "[flaky]": [Reply(500, body='{"error": "boom"}'), Reply(content="recovered")],
        "[busy]": [Reply(429, body="{}", headers={"Retry-After": "0.02"}), Reply(content="ok")],
        "[garbled]": [Reply(body="<html>not json</html>"), Reply(content="fine")],
    }
    with FakeJudgeServer(script) as server:
        replies = backend(server).generate([chat(m) for m in script], GenerationSettings())
    assert replies == [["recovered"], ["ok"], ["fine"]]
    assert {m: server.count(m) for m in script} == {"[flaky]": 2, "[busy]": 2, "[garbled]": 2}


def test_persistent_failure_and_rejection_raise_without_the_key():
    script = {
        "[down]": [Reply(503, body=f'{{"error": "overloaded for {ECHO_AUTH}"}}')],
        "[toolong]": [Reply(400, body='{"error": "context too long"}')],
    }
    with FakeJudgeServer(script) as server:
        with pytest.raises(RequestFailed) as down:
            backend(server, max_attempts=3).generate([chat("[down]")], GenerationSettings())
        with pytest.raises(RequestFailed, match="HTTP 400"):
            backend(server).generate([chat("[toolong]")], GenerationSettings())
    assert server.count("[down]") == 3 and server.count("[toolong]") == 1
    assert "3 attempts" in str(down.value) and "HTTP 503" in str(down.value)
    assert "Bearer ***" in str(down.value) and SECRET not in str(down.value)


def test_unauthorised_is_fatal_at_once_and_never_shows_the_key():
    script = {"[auth]": [Reply(401, body=f'{{"error": "bad key {ECHO_AUTH}"}}')]}
    base_url = None
    with FakeJudgeServer(script) as server:
        base_url = server.url
        with pytest.raises(EndpointUnavailable) as info:
            backend(server).generate([chat("[auth]")], GenerationSettings())
        assert server.count("[auth]") == 1  # no retries on a configuration error
    message = str(info.value)
    assert "401" in message and KEY_ENV in message and SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with_query = OpenAIBackend("m", f"https://u:pw@host/v1?api-key={SECRET}")
    assert SECRET not in repr(with_query) and "pw" not in repr(with_query)
    assert base_url.startswith("http://127.0.0.1:")


def test_multiturn_play_sends_the_models_own_replies():
    script = {"[t2]": [Reply(content="second reply")], "[t1]": [Reply(content="first reply")]}
    convs = [Conversation("c", ["[t1] hello", "[t2] and now?"], system="sys")]
    with FakeJudgeServer(script) as server:
        samples = play(backend(server), convs, GenerationSettings(max_new_tokens=4))
    assert samples == [[["first reply"], ["second reply"]]]
    turn2 = server.requests[-1]["body"]["messages"]
    assert turn2 == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "[t1] hello"},
        {"role": "assistant", "content": "first reply"},
        {"role": "user", "content": "[t2] and now?"},
    ]
