"""Judges. `Judge` answers SysBench turns (kinds openai, hf, replay, with a cache);
`ConstraintJudge` gives one verdict per constraint of a sampled response (kind rule, or
any `Judge` kind through `LLMConstraintJudge`). One registry builds both.

judge = make_judge("openai", model="gpt-4o-2024-05-13", cache="judge.sqlite")
verdicts = make_constraint_judge("rule").judge_many(requests)
SysBench sessions -> requests -> rows: rpo_bench.evaluate.sysbench.judging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpo_bench.judge.base import Judge
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.hf import HFJudge
from rpo_bench.judge.openai import OpenAIJudge
from rpo_bench.judge.prompt import (
    PROMPTS,
    JudgePrompt,
    judge_prompt,
    parse_judgement,
    render_prompt,
)
from rpo_bench.judge.replay import ReplayJudge
from rpo_bench.judge.rule import RuleJudge
from rpo_bench.judge.types import (
    Judgement,
    JudgeRequest,
    JudgeUnavailable,
    NothingJudged,
    ParseError,
)
from rpo_bench.judge.verdicts import ConstraintJudge, LLMConstraintJudge

JUDGES: dict[str, Callable[..., Judge]] = {
    "openai": OpenAIJudge,
    "hf": HFJudge,
    "replay": ReplayJudge,
}


def make_judge(kind: str, **options: Any) -> Judge:
    """A judge of the given kind; options go to its constructor (see each class)."""
    if kind not in JUDGES:
        raise ValueError(f"unknown judge kind {kind!r}; known: {', '.join(JUDGES)}")
    return JUDGES[kind](**options)


def make_constraint_judge(kind: str, **options: Any) -> ConstraintJudge:
    """A per-constraint judge: "rule" checks each constraint in code; any other kind is
    that `Judge` (options to its constructor) asked about each constraint."""
    if kind == "rule":
        if options:
            raise ValueError(f"the rule judge takes no options, got {', '.join(options)}")
        return RuleJudge()
    return LLMConstraintJudge(make_judge(kind, **options))


__all__ = [
    "JUDGES",
    "PROMPTS",
    "JudgePrompt",
    "ConstraintJudge",
    "LLMConstraintJudge",
    "RuleJudge",
    "HFJudge",
    "Judge",
    "JudgeCache",
    "JudgeRequest",
    "JudgeUnavailable",
    "NothingJudged",
    "Judgement",
    "OpenAIJudge",
    "ParseError",
    "ReplayJudge",
    "judge_prompt",
    "make_constraint_judge",
    "make_judge",
    "parse_judgement",
    "render_prompt",
]
