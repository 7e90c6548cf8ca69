"""What a SysBench judge takes and gives: a request per turn, a judgement per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Criterion = dict[str, Any]  # {"criteria_id": int, "criteria_content": str, "criteria_type": str}


@dataclass
class JudgeRequest:
    """One turn to judge. `history` holds (user, answer) pairs with the model's OWN answers."""

    system: str
    history: Sequence[tuple[str, str]]
    user: str
    answer: str
    checklist: Sequence[Criterion]
    key: tuple[int, int] | None = None  # (system_id, round_index): replay needs it

    @property
    def ids(self) -> list[str]:
        """The checklist's criterion ids as strings, the keys a verdict map must have."""
        return [str(c["criteria_id"]) for c in self.checklist]


@dataclass
class Judgement:
    """The judge's answer for one turn.

    `verdicts` maps str(criteria_id) to True (是) / False (否); a replayed label the
    original judge left undecided (不适用 ...) is None. `raw` keeps the judge's original
    verdict strings. `error` is set (and `verdicts` empty) when every attempt failed.
    """

    verdicts: dict[str, bool | None]
    reasoning: str = ""
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    outputs: list[str] = field(default_factory=list)  # raw completions of failed attempts
    cached: bool = False
    answer: str = ""  # the raw completion that parsed
    failure: str | None = None  # why it failed: one of FAILURES

    @property
    def all_pass(self) -> bool | None:
        """No criterion judged 否 (the reference rule: undecided does not fail); None on error."""
        if self.error is not None:
            return None
        return not any(v is False for v in self.verdicts.values())


# Why a turn went unjudged: every answer unparseable, the judge's reply cut off at a token
# limit, the request rejected or failing, the prompt too long for the judge to be asked, or
# (replay) no stored label for the turn.
FAILURES = ("unparseable", "cut_off", "request", "too_long", "no_label")


def failed(
    message: str, attempts: int, outputs: list[str], failure: str = "unparseable"
) -> Judgement:
    """The judgement of a turn the judge could not judge."""
    if failure not in FAILURES:
        raise ValueError(f"failure must be one of {FAILURES}, got {failure!r}")
    return Judgement(
        verdicts={}, error=message, attempts=attempts, outputs=outputs, failure=failure
    )


class ParseError(ValueError):
    """The judge's completion is not a valid judgement for the checklist."""


class JudgeUnavailable(ConnectionError):
    """The judge cannot work at all (bad key, unknown model, wrong URL): stop, do not retry."""


class NothingJudged(RuntimeError):
    """Not one response or turn could be judged: there is nothing to score or pair, and a
    result made of none would only look like one."""
