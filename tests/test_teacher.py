"""Teacher history (the authors' golden history): the teacher's best of n, refined by
self-critique up to a threshold share of the turn's constraints, joins the history; a
conversation whose teacher never reaches it ends at that turn. Policy and teacher are
OpenAI-compatible models on a fake server on 127.0.0.1; the rule judge judges."""

from __future__ import annotations

import pytest
from fake_judge_server import FakeJudgeServer, Reply

from rpo_bench.data.conversations import TrainingConversation
from rpo_bench.data.sample import sample
from rpo_bench.data.teacher import Teacher
from rpo_bench.rollout.openai import OpenAIBackend
from rpo_bench.rollout.settings import GenerationSettings

NO_COMMA = {"id": "punctuation:no_comma", "kwargs": {}}
SEA = {"id": "keywords:existence", "kwargs": {"keywords": ["sea"]}}


def conversation(cid: str, first: str) -> TrainingConversation:
    return TrainingConversation.from_dict(
        {
            "id": cid,
            "seed_id": cid,
            "split": "train",
            "constraint_slot": "user",
            "system": None,
            "turns": [
                {"task": first, "constraints": [NO_COMMA, SEA]},
                {"task": f"Say more [{cid}2].", "constraints": [NO_COMMA, SEA]},
            ],
        },
        "test",
    )


def test_teacher_history_best_of_n_critique_and_end(monkeypatch):
    monkeypatch.setenv("RPO_TEST_KEY", "sk-x")
    # The fake server answers the first marker found in a prompt, in this order.
    script = {
        # c's critique fails again: c never reaches the threshold and ends after turn 1
        "No, Never.": [Reply(content="Still, No.")],
        # any other critique fixes the reply
        "Rewrite your reply": [Reply(content="fixed sea reply without commas")],
        "TEACHER Say more": [Reply(content="a good second sea reply")],
        # a: of the teacher's two samples the second passes both rules
        "TEACHER Describe the sea [a1]": [
            Reply(content="Bad, Reply."),
            Reply(content="the sea is calm and blue and the small waves roll in slowly"),
        ],
        # b: both samples fail; the critique round fixes it
        "TEACHER Describe the sea [b1]": [Reply(content="Still, Wrong.")],
        "TEACHER Describe the sea [c1]": [Reply(content="No, Never.")],
        "[a1]": [Reply(content="Policy, with a comma.")],
        "[b1]": [Reply(content="policy reply")],
        "[c1]": [Reply(content="policy")],
    }
    convs = [conversation(c, f"Describe the sea [{c}1].") for c in "abc"]
    with FakeJudgeServer(script) as server:
        policy = OpenAIBackend("policy", server.url, api_key_env="RPO_TEST_KEY", backoff=0)
        # n requests per chat, so the fake server can answer each sample differently
        teacher_backend = OpenAIBackend(
            "teacher", server.url, api_key_env="RPO_TEST_KEY", backoff=0, use_n=False
        )

        class Marked:  # the teacher's chats carry a marker, so the fake server can tell them
            def generate(self, chats, settings):
                marked = [
                    [*c[:-1], {**c[-1], "content": "TEACHER " + c[-1]["content"]}] for c in chats
                ]
                return teacher_backend.generate(marked, settings)

        teacher = Teacher(
            Marked(), GenerationSettings(1.0, 1.0, 32, 0, n=2), threshold=1.0, critique_rounds=1
        )
        rows = sample(
            convs,
            policy,
            GenerationSettings(1.0, 1.0, 32, 0, n=1),
            history="teacher",
            teacher=teacher,
        )
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["a/t1", "a/t2", "b/t1", "b/t2", "c/t1"]  # c ended after turn 1
    a, b, c = by_id["a/t1"]["teacher"], by_id["b/t1"]["teacher"], by_id["c/t1"]["teacher"]
    assert (a["passed"], a["rounds"], a["reply"], a["samples"]) == (
        True,
        0,
        "the sea is calm and blue and the small waves roll in slowly",
        2,
    )
    assert (b["passed"], b["rounds"], b["reply"]) == (True, 1, "fixed sea reply without commas")
    assert (c["passed"], c["rounds"], c["reply"], c["share"]) == (False, 1, None, 0.0)
    assert by_id["a/t2"]["history"][-1] == {"role": "assistant", "content": a["reply"]}
    assert by_id["b/t2"]["history"][-1]["content"] == "fixed sea reply without commas"
    assert by_id["a/t2"]["teacher"]["reply"] == "a good second sea reply"
    assert all(r["kept"] == 0 for r in rows)  # the policy's best is still recorded


def test_teacher_needs_its_history_choice():
    with pytest.raises(ValueError, match="teacher"):
        sample([], None, GenerationSettings(), history="teacher")
