"""LLM reversal of free-text constraints: the prompt's rules, parsing, the SQLite cache, the
local (embedded model) and openai backends, and the rule that measures agreement with the
exact reversal (sound on every reversible id, hand-checked cases)."""

from __future__ import annotations

import pytest
import torch
from fake_judge_server import FakeJudgeServer, Reply

from rpo_bench.constraints import NON_REVERSIBLE, from_ifeval
from rpo_bench.constraints.constraint import INSTRUCTION_IDS
from rpo_bench.constraints.llm_reversal import (
    LLMReverser,
    ReversalCache,
    check_reversal,
    parse_reversal,
    reversal_messages,
)
from rpo_bench.constraints.reversal_agreement import (
    examples,
    matches_exact_reversal,
    stated_bounds,
)
from rpo_bench.llm import OpenAICompleter
from rpo_bench.rollout.hf import HFBackend, HFCompleter

WORDS = from_ifeval("length_constraints:number_words", {"num_words": 300, "relation": "at least"})
RIVER = from_ifeval("keywords:existence", {"keywords": ["river"]})
NO_COMMA = from_ifeval("punctuation:no_comma")


def test_the_rule_is_sound_on_every_reversible_id():
    cases = examples()
    assert {c.instruction_id for c in cases} == set(INSTRUCTION_IDS) - set(NON_REVERSIBLE)
    for c in cases:
        r = c.reverse()
        assert matches_exact_reversal(c, r.describe()), c
        assert not matches_exact_reversal(c, c.describe()), c
        assert matches_exact_reversal(r, c.describe()), c  # and back
        assert not matches_exact_reversal(r, r.describe()), c


@pytest.mark.parametrize(
    ("constraint", "text", "agree"),
    [
        (WORDS, "Answer with at most 299 words.", True),
        (WORDS, "Answer with fewer than 300 words.", True),
        (WORDS, "Answer with at most 300 words.", False),  # the authors' off-by-one
        (WORDS, "Do not answer with more than 299 words.", True),
        (WORDS.reverse(), "Do not answer with more than 299 words.", False),  # the original
        (WORDS, "Do not write 300 words or more.", False),  # states no bound we parse
        (WORDS, "Answer with at least 300 words.", False),
        (RIVER, "Never use the word 'river'.", True),
        (RIVER, "Do not use the word 'lake'.", False),  # the keyword is lost
        (RIVER, "Please include the keyword 'river'.", False),  # no flip
        (NO_COMMA, "Use at least one comma.", True),
        (NO_COMMA, "Do not use commas at all.", False),
        (NO_COMMA, "", False),
    ],
)
def test_agreement_by_hand(constraint, text, agree):
    assert matches_exact_reversal(constraint, text) == agree


def test_stated_bounds():
    assert stated_bounds("at least three times") == {(">=", 3)}
    assert stated_bounds("more than 4 words and at most 9") == {(">=", 5), ("<", 10)}
    assert stated_bounds("Do not use more than 2 sections.") == {("<", 3)}
    assert stated_bounds("Never mention it.") == {("<", 1)}
    assert stated_bounds("Mention it.") == {(">=", 1)}


def test_prompt_holds_the_authors_rules_and_parse_takes_one_line():
    messages = reversal_messages("Always greet the user.")
    rules = messages[0]["content"]
    for rule in ("modal", "fails the original", "explicit", "at most 3"):
        assert rule in rules
    assert messages[-1] == {"role": "user", "content": "Instruction: Always greet the user."}
    assert parse_reversal('\n Reversed: "Never greet the user."\nbecause ...') == (
        "Never greet the user."
    )
    assert parse_reversal("   \n") == ""


class Counting:
    """Counts the chats a completer is asked for (the cache must spare them)."""

    def __init__(self, inner):
        self.inner, self.identity, self.calls = inner, inner.identity, 0

    def complete_many(self, chats):
        self.calls += len(chats)
        return self.inner.complete_many(chats)


def test_embedded_model_reversal_is_greedy_and_cached(prepared_model_dir, tmp_path):
    from rpo_bench import models

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = models.load(str(prepared_model_dir))
        completer = Counting(HFCompleter(HFBackend(loaded.model, loaded.tokenizer), 16))
        texts = ["Do not use any commas in your response.", "Mention the river."]
        cache = tmp_path / "rev.sqlite"
        first = LLMReverser(completer, cache).reverse_many(texts)
        assert completer.calls == 2 and all(isinstance(t, str) for t in first)
        again = LLMReverser(completer, cache).reverse_many([*texts, texts[0]])
        assert again == [*first, first[0]] and completer.calls == 2  # all from the cache
        uncached = LLMReverser(completer).reverse_many(texts)
        assert uncached == first and completer.calls == 4  # greedy: the same answers
        assert len(ReversalCache(cache)) == sum(bool(t) for t in first)
    finally:
        torch.set_num_threads(before)


def test_openai_backend_at_temperature_zero():
    script = {"Instruction: Always greet": [Reply(content="Reversed: Never greet the user.")]}
    with FakeJudgeServer(script) as server:
        reverser = LLMReverser(OpenAICompleter("fake", base_url=server.url, backoff=0))
        assert reverser.reverse("Always greet the user.") == "Never greet the user."
        (request,) = server.requests
        assert request["body"]["temperature"] == 0.0
        assert request["body"]["messages"] == reversal_messages("Always greet the user.")


@pytest.mark.parametrize(
    ("original", "reversal", "why"),
    [
        ("Always greet the user.", "Never greet the user.", None),
        (
            'End with the phrase "Any questions?".',
            'Do not end with the phrase "Any questions?".',
            None,
        ),
        ("Always greet the user.", "", "empty"),
        ("Always greet the user.", "always greet the user.", "same as the original"),
        ("Always greet the user.", "Never greet.\nAlso be rude.", "more than one line"),
        (
            'End with the phrase "Any questions?".',
            "Do not end with a question.",
            "quoted 'Any questions?' not copied",
        ),
        ("Be brief.", "Be " + "very " * 40 + "long.", "much longer than the original"),
    ],
)
def test_check_reversal_by_hand(original, reversal, why):
    assert check_reversal(original, reversal) == why


def test_reverse_checked_drops_and_counts_the_failures():
    script = {
        "Instruction: Always greet": [Reply(content="Never greet the user.")],
        "Instruction: Use the word": [Reply(content="Reversed: Use the word 'sun'.")],  # unchanged
        "Instruction: Mention": [Reply(content="")],
    }
    texts = ["Always greet the user.", "Use the word 'sun'.", "Mention the river."]
    with FakeJudgeServer(script) as server:
        reverser = LLMReverser(OpenAICompleter("fake", base_url=server.url, backoff=0))
        out, failures = reverser.reverse_checked(texts)
    assert out == ["Never greet the user.", None, None]
    assert failures == {"same as the original": 1, "empty": 1}
