"""The LLM filter of triggered constraints (the authors' `triggered: llm`), against a fake
OpenAI-compatible server: parsed, validated, cached; a bad answer keeps every constraint
and is counted."""

from __future__ import annotations

import pytest
from fake_judge_server import FakeJudgeServer, Reply

from rpo_bench.judge.triggered import TriggeredSelector, parse_triggered, triggered_messages
from rpo_bench.llm import OpenAICompleter
from rpo_bench.textcache import TextCache

SYSTEM = "You are a weather assistant for Wuhan."
RULES = ["Answer in English.", "Give the temperature in Celsius.", "Refuse travel bookings."]


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("[1, 3]", 3, [1, 3]),
        ("The message triggers [3, 1, 3].", 3, [1, 3]),
        ("[]", 3, None),
        ("[4]", 3, None),
        ("constraints 1 and 2", 3, None),
    ],
)
def test_parse_by_hand(text, n, expected):
    assert parse_triggered(text, n) == expected


def test_selector_against_a_fake_server(tmp_path, monkeypatch):
    monkeypatch.setenv("RPO_TEST_TRIGGER_KEY", "sk-x")
    script = {
        "How hot is it": [Reply(content="[1, 2]")],
        "Book me a hotel": [Reply(content="[1, 3]")],
        "Tell me a joke": [Reply(content="none of them")],
    }
    asks = [(SYSTEM, q, RULES) for q in ("How hot is it?", "Book me a hotel.", "Tell me a joke.")]
    cache = TextCache(tmp_path / "t.sqlite", "triggered")
    with FakeJudgeServer(script) as server:
        completer = OpenAICompleter("fake", base_url=server.url, api_key_env="RPO_TEST_TRIGGER_KEY")
        selector = TriggeredSelector(completer, cache)
        assert selector.select(asks) == [[0, 1], [0, 2], [0, 1, 2]]
        assert (selector.calls, selector.unparsed) == (3, 1)
        again = TriggeredSelector(completer, cache)
        assert again.select(asks) == [[0, 1], [0, 2], [0, 1, 2]]
        assert again.calls == 1  # only the unparsed one is asked again
    assert server.requests[0]["body"]["messages"] == triggered_messages(
        SYSTEM, "How hot is it?", RULES
    )
