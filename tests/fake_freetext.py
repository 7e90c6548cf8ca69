"""A deterministic fake of the free-text pipeline's LLMs, for FakeJudgeServer(respond=...):
a judge (the project's `rpo_bench` prompt) whose verdict on a rule depends only on the
answer and the rule's text, a reverser that answers "NOT: <rule>", so a reversed rule is
judged exactly opposite to its original, and a teacher whose replies follow every rule.
The triggered filter names every constraint but the last. Malformed on purpose: the judge
answers nonsense for every turn whose user message carries UNJUDGED_TURN or
UNJUDGED_HELDOUT, the filter for
UNPARSED_TRIGGER, and the reverser repeats DROPPED_RULE unchanged (failing validation).
No policy reply follows a rule of UNMET_RULES, so the turns that carry both fall short of
the critic pool's threshold whatever the model samples (its text differs across CPUs)."""

from __future__ import annotations

import hashlib
import re

from fake_judge_server import Reply, verdict_json

UNJUDGED_TURN = "My knee hurts"
UNJUDGED_HELDOUT = "When do you open on Saturday?"  # a held-out turn the judge cannot judge
UNPARSED_TRIGGER = "Can I make it spicier?"  # the triggered filter answers nonsense: all kept
DROPPED_RULE = "Sound encouraging."
NOT = "NOT: "
# two of the travel prompt's five triggered rules: its best policy reply satisfies 3/5 < 0.7
UNMET_RULES = ("Recommend only places in Lisbon.", "Answer in at most three sentences.")
TEACHER = "TEACHER"  # how the fake teacher's replies begin
_CRITERION = re.compile(r"^(\d+)\. (.*) \| \S+$", flags=re.M)


def satisfied(answer: str, rule: str) -> bool:
    """The fake judge's verdict: a teacher's reply follows every rule; of a policy reply two
    rules in three pass, by a hash of answer and rule, and none of UNMET_RULES."""
    if rule.startswith(NOT):
        return not satisfied(answer, rule[len(NOT) :])
    if answer.startswith(TEACHER):
        return True
    if rule in UNMET_RULES:
        return False
    digest = hashlib.sha256(f"{answer}\x1f{rule}".encode()).digest()
    return digest[0] % 3 != 0


def respond(prompt: str) -> Reply | None:
    """The reverser's, the triggered filter's, the judge's or the teacher's answer (the
    teacher: anything else)."""
    if "Say which constraints the message brings into play" in prompt:
        if UNPARSED_TRIGGER in prompt.rsplit("User message:", 1)[1]:
            return Reply(content="Hard to say.")
        numbered = prompt.split("Constraints:\n", 1)[1].split("\n\nUser message:", 1)[0]
        n = len(numbered.splitlines())
        return Reply(content=str(list(range(1, n))))  # all but the last
    if "You turn an instruction into its exact opposite" in prompt:
        rule = prompt.rsplit("Instruction: ", 1)[1].strip()
        return Reply(content=rule if rule == DROPPED_RULE else NOT + rule)
    if "【评判细则】" in prompt:
        turn = prompt.split("【当前轮次】\n", 1)[1].split("\n\n【评判细则】", 1)[0]
        user, answer = turn.split("\n助手：", 1)
        if UNJUDGED_TURN in user or UNJUDGED_HELDOUT in user:
            return Reply(content="I cannot say.")
        rules = _CRITERION.findall(prompt.split("【评判细则】", 1)[1])
        verdicts = {i: "是" if satisfied(answer, rule) else "否" for i, rule in rules}
        return Reply(content=verdict_json(verdicts))
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    return Reply(content=f"{TEACHER} reply {{choice}} ({digest})")  # "{choice}": per sample
