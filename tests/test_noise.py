"""Constraint judges: the rule judge (hand-checked verdicts), the seeded noise wrapper
(rate, order independence, nested noise levels, true verdicts kept) and the LLM adapter
against a fake OpenAI-compatible server."""

from __future__ import annotations

import random

import pytest
from fake_judge_server import FakeJudgeServer, Reply, official_json

from rpo_bench.constraints import from_ifeval
from rpo_bench.judge import OpenAIJudge
from rpo_bench.judge.noise import NoisyJudge, add_noise, uniform
from rpo_bench.judge.rule import RuleJudge
from rpo_bench.judge.verdicts import LLMConstraintJudge, VerdictRequest, judge_request

NO_COMMA = from_ifeval("punctuation:no_comma")
LOWER = from_ifeval("change_case:english_lowercase")
FIVE_WORDS = from_ifeval(
    "length_constraints:number_words", {"num_words": 5, "relation": "at least"}
)
TITLE = from_ifeval("detectable_format:title")
CONSTRAINTS = [NO_COMMA, FIVE_WORDS, TITLE]
PROMPT = [{"role": "user", "content": "Say something."}]


def test_rule_judge_verdicts_by_hand():
    judge = RuleJudge()
    assert judge.verdicts(PROMPT, "hello there, friend", CONSTRAINTS) == [False, False, False]
    assert judge.verdicts(PROMPT, "<<Joy>> one two three four", CONSTRAINTS) == [
        True,
        True,
        True,
    ]
    assert judge.verdicts(PROMPT, "", CONSTRAINTS) == [False, False, False]  # IFEval's rule
    assert judge.verdicts(PROMPT, "", [c.reverse() for c in CONSTRAINTS]) == [True] * 3
    with pytest.raises(ValueError, match="verifiable constraints only"):
        judge.verdicts(PROMPT, "text", ["Always answer politely."])


def requests(n_samples=200, n_responses=4):
    rng = random.Random(0)
    texts = ["a b c d e", "x, y", "<<T>> one two three four five", ""]
    return [
        VerdictRequest(PROMPT, rng.choice(texts), CONSTRAINTS, f"conv{s}/t1", r)
        for s in range(n_samples)
        for r in range(n_responses)
    ]


def test_noise_rate_is_p_and_true_verdicts_are_the_rule_judges():
    reqs = requests(500, 4)  # 6000 verdicts
    truth = RuleJudge().judge_many(reqs)
    for p in (0.0, 0.1, 0.3, 1.0):
        judged = NoisyJudge(RuleJudge(), p, seed=3).judge_with_truth(reqs)
        assert [t for _, t in judged] == truth
        flips = sum(a != b for noisy, true in judged for a, b in zip(noisy, true, strict=True))
        rate = flips / 6000
        assert abs(rate - p) < 0.02, (p, rate)  # about 3.5 standard deviations at p = 0.3


def test_noise_depends_only_on_sample_response_and_constraint_index():
    reqs = requests(50, 3)
    judge = NoisyJudge(RuleJudge(), 0.25, seed=1)
    forward = judge.judge_many(reqs)
    order = list(range(len(reqs)))
    random.Random(5).shuffle(order)
    shuffled = judge.judge_many([reqs[i] for i in order])
    assert [shuffled[order.index(i)] for i in range(len(reqs))] == forward
    single = [judge.judge_many([r])[0] for r in reqs]
    assert single == forward
    other_seed = NoisyJudge(RuleJudge(), 0.25, seed=2).judge_many(reqs)
    assert other_seed != forward


def test_noise_levels_are_nested_for_one_seed():
    reqs = requests(100, 4)
    low = NoisyJudge(RuleJudge(), 0.1, seed=0).judge_with_truth(reqs)
    high = NoisyJudge(RuleJudge(), 0.2, seed=0).judge_with_truth(reqs)
    for (nl, t), (nh, _) in zip(low, high, strict=True):
        for j in range(len(t)):
            if nl[j] != t[j]:
                assert nh[j] != t[j]  # every flip at p=0.1 is also a flip at p=0.2


def test_add_noise_by_hand():
    draws = [uniform(7, "s/t1", 2, j) for j in range(3)]
    assert all(0 <= u < 1 for u in draws)
    p = sorted(draws)[1] + 1e-12  # flips exactly the two smallest draws
    expected = [not v if u < p else v for v, u in zip([True, False, True], draws, strict=True)]
    assert add_noise([True, False, True], p, 7, "s/t1", 2) == expected
    assert sum(a != b for a, b in zip(expected, [True, False, True], strict=True)) == 2
    with pytest.raises(ValueError, match="noise p"):
        NoisyJudge(RuleJudge(), 1.5)


def test_llm_adapter_builds_a_checklist_from_constraint_texts():
    messages = [
        {"role": "system", "content": "You are a travel agent. [trip]"},
        {"role": "user", "content": "Plan a day in Rome."},
        {"role": "assistant", "content": "Colosseum, then pasta."},
        {"role": "user", "content": "And Milan?"},
    ]
    rules = ["Only talk about travel.", NO_COMMA, "Answer in one sentence."]
    ask = judge_request(VerdictRequest(messages, "Duomo then risotto.", rules))
    assert ask.system == "You are a travel agent. [trip]"
    assert list(ask.history) == [("Plan a day in Rome.", "Colosseum, then pasta.")]
    assert ask.user == "And Milan?" and ask.answer == "Duomo then risotto."
    assert [c["criteria_content"] for c in ask.checklist] == [
        "Only talk about travel.",
        NO_COMMA.describe(),
        "Answer in one sentence.",
    ]
    script = {
        "[trip]": [Reply(content=official_json({"1": "是", "2": "否", "3": "是"}))],
        "[broken]": [Reply(content="not json")],
    }
    with FakeJudgeServer(script) as server:
        judge = LLMConstraintJudge(
            OpenAIJudge(model="fake-judge", base_url=server.url, max_attempts=1, backoff=0)
        )
        assert judge.verdicts(messages, "Duomo then risotto.", rules) == [True, False, True]
        assert "Only talk about travel." in server.requests[0]["prompt"]
        broken = [{"role": "system", "content": "[broken]"}, *messages[1:]]
        with pytest.raises(RuntimeError, match="could not judge s1"):
            judge.judge_many([VerdictRequest(broken, "x", rules, "s1", 0)])
