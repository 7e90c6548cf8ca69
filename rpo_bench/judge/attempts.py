"""The retry policy every judge client follows (SysBench's reference loop): up to 10
attempts, the first five greedy, the rest at temperature 0.5 for a different answer."""

from __future__ import annotations

import logging

from rpo_bench.judge.prompt import JudgePrompt
from rpo_bench.judge.types import Judgement, JudgeRequest, ParseError

MAX_ATTEMPTS = 10  # as in the reference judge
GREEDY_ATTEMPTS = 5  # the first five at temperature 0, the rest at 0.5
RETRY_TEMPERATURE = 0.5

log = logging.getLogger("rpo_bench.judge")


def temperature_for(attempt: int) -> float:
    """The reference schedule: attempts 0-4 greedy, later ones at 0.5 for a different answer."""
    return 0.0 if attempt < GREEDY_ATTEMPTS else RETRY_TEMPERATURE


def try_parse(
    prompt: JudgePrompt, text: str, request: JudgeRequest, attempt: int
) -> tuple[Judgement | None, str]:
    """(judgement, "") when the completion parses for the request's checklist, else (None, why)."""
    try:
        verdicts, raw, reasoning = prompt.parse(text, request.ids)
    except ParseError as err:
        return None, f"unparseable judgement: {err}"
    return Judgement(dict(verdicts), reasoning, raw, attempts=attempt + 1, answer=text), ""
