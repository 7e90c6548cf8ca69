"""Constraint judges: one verdict per constraint for a response to a rendered prompt.

Three implementations share `ConstraintJudge`: the exact rule judge (`judge.rule`), the
noise wrapper (`judge.noise`) and `LLMConstraintJudge` below, a thin adapter that asks a
SysBench `Judge` about free-text constraints (a checklist made from the constraint texts).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from rpo_bench.constraints.text import Describable
from rpo_bench.judge.base import Judge
from rpo_bench.judge.types import JudgeRequest

Message = dict[str, str]


ConstraintLike = Describable | str  # a verifiable Constraint, or a free-text rule


@dataclass(frozen=True)
class VerdictRequest:
    """One response to judge. `sample_id` and `response_index` name it (the noise wrapper
    draws its flips from them, so verdicts do not depend on the order of judging)."""

    messages: Sequence[Message]  # the prompt exactly as the model saw it
    response: str
    constraints: Sequence[ConstraintLike]
    sample_id: str = ""
    response_index: int = 0


class ConstraintJudge(abc.ABC):
    """verdicts(messages, response, constraints) -> one bool per constraint, in order."""

    name = "base"

    def verdicts(
        self, messages: Sequence[Message], response: str, constraints: Sequence[ConstraintLike]
    ) -> list[bool]:
        return self.judge_many([VerdictRequest(messages, response, constraints)])[0]

    @abc.abstractmethod
    def judge_many(self, requests: Sequence[VerdictRequest]) -> list[list[bool] | None]:
        """Verdict vectors for many responses, in order (a batch, for judges that batch);
        None for a response an LLM judge could not judge (`LLMConstraintJudge`)."""


def text_of(constraint: ConstraintLike) -> str:
    return constraint if isinstance(constraint, str) else constraint.describe()


def judge_request(request: VerdictRequest) -> JudgeRequest:
    """The SysBench-judge view of a response: system, (user, answer) rounds, checklist."""
    system = "".join(m["content"] for m in request.messages if m["role"] == "system")
    turns = [m for m in request.messages if m["role"] != "system"]
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user message")
    users = [m["content"] for m in turns[:-1] if m["role"] == "user"]
    answers = [m["content"] for m in turns[:-1] if m["role"] == "assistant"]
    if len(users) != len(answers):
        raise ValueError("the history must alternate user and assistant messages")
    checklist = [
        {"criteria_id": i, "criteria_content": text_of(c), "criteria_type": "rule"}
        for i, c in enumerate(request.constraints, 1)
    ]
    return JudgeRequest(
        system=system,
        history=list(zip(users, answers, strict=True)),
        user=turns[-1]["content"],
        answer=request.response,
        checklist=checklist,
    )


class LLMConstraintJudge(ConstraintJudge):
    """Free-text constraints judged by an LLM judge. A verdict the judge left undecided
    counts as satisfied (SysBench's rule). A response it could not judge at all (every
    attempt failed or unparseable) raises, since a silent default would be a fabricated
    verdict; with `keep_unjudged` it gets None instead, and the caller leaves it out.

    `counts`: responses asked about, judged, unjudged, judged only after a retry, and the
    judge's attempts in all (calls made now or earlier, as the cache recorded them)."""

    def __init__(self, judge: Judge, keep_unjudged: bool = False) -> None:
        self.judge, self.keep_unjudged = judge, keep_unjudged
        self.name = f"llm:{judge.name}"
        self.counts = dict.fromkeys(("responses", "judged", "unjudged", "retried", "attempts"), 0)

    def judge_many(self, requests: Sequence[VerdictRequest]) -> list[list[bool] | None]:
        asks = [judge_request(r) for r in requests]
        out: list[list[bool] | None] = []
        for request, ask, judgement in zip(
            requests, asks, self.judge.judge_many(asks), strict=True
        ):
            self.counts["responses"] += 1
            self.counts["attempts"] += judgement.attempts
            if judgement.error is not None:
                if not self.keep_unjudged:
                    raise RuntimeError(
                        f"judge {self.judge.name} could not judge "
                        f"{request.sample_id or 'a response'} (response "
                        f"{request.response_index}): {judgement.error}"
                    )
                self.counts["unjudged"] += 1
                out.append(None)
                continue
            self.counts["judged"] += 1
            self.counts["retried"] += judgement.attempts > 1
            out.append([judgement.verdicts.get(i) is not False for i in ask.ids])
        return out
