"""SysBench judges: one interface (`Judge`), three kinds (openai, hf, replay), a cache.

judge = make_judge("openai", model="gpt-4o-2024-05-13", cache="judge.sqlite")
rows = judge_sessions(judge, sessions, answers, model_name="my-model")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpo_bench.judge.base import (
    Judge,
    Judgement,
    JudgeRequest,
    JudgeUnavailable,
    judge_sessions,
    judgement_row,
    session_requests,
    write_rows,
)
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.hf import HFJudge
from rpo_bench.judge.openai import OpenAIJudge
from rpo_bench.judge.prompt import ParseError, parse_judgement, render_prompt
from rpo_bench.judge.replay import ReplayJudge

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


__all__ = [
    "JUDGES",
    "HFJudge",
    "Judge",
    "JudgeCache",
    "JudgeRequest",
    "JudgeUnavailable",
    "Judgement",
    "OpenAIJudge",
    "ParseError",
    "ReplayJudge",
    "judge_sessions",
    "judgement_row",
    "make_judge",
    "parse_judgement",
    "render_prompt",
    "session_requests",
    "write_rows",
]
